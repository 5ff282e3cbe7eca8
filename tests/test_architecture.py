"""The architecture holds: the import-linter contracts of pyproject.toml (and they catch a
break), the slow imports left for when they are used, a command line refused before torch
loads, and one run in at most twelve files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the ucl package under `root`, with `root`'s pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
         "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
    )  # fmt: skip


def test_the_import_contracts_are_kept():
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.fixture(scope="module")
def copy_of_ucl(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    for package in ("ucl", "problem_set"):
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__*")
        )
    shutil.copy(REPO / "pyproject.toml", root)
    return root


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("models/logreg.py", "import ucl.run", "ucl's layers"),  # a building block imports the run
        ("keys.py", "import ucl.models", "the registry holds only"),
        ("loop.py", "import problem_set.report.build", "the framework never imports"),
        ("run.py", "import ucl.pipeline.runner", "the core never imports the pipelines"),
        ("tasks/gan.py", "import ucl.schema", "every component is loaded in one place"),
        ("lifecycle.py", "import ucl.rundir", "no import cycle"),  # rundir imports lifecycle
    ],
)
def test_an_upward_import_breaks_a_contract(copy_of_ucl, module, line, contract):
    path = copy_of_ucl / "ucl" / module
    original = path.read_text()
    path.write_text(original + f"\n{line}  # noqa\n")
    try:
        proc = lint_imports(copy_of_ucl)
    finally:
        path.write_text(original)
    assert proc.returncode != 0
    report = " ".join(proc.stdout.split())  # contract names are wrapped at 80 columns
    broken = report.partition("Broken contracts")[2]
    assert contract in broken, proc.stdout
    assert "is not allowed to import" in broken or "cycle" in broken


def test_loading_every_component_leaves_the_slow_imports_for_when_they_are_used():
    """torchvision (with torch._dynamo), scikit-learn, scipy.stats, scipy.sparse and pyplot
    cost seconds at every `python train.py` start, a refused one included; they are
    imported where they are used."""
    probe = (
        "import sys\n"
        "from ucl.schema import load_all\n"
        "load_all()\n"
        "import ucl.run\n"
        "slow = ('torchvision', 'sklearn', 'scipy.stats', 'scipy.sparse', 'torch._dynamo',\n"
        "        'tensorboard', 'matplotlib.pyplot')\n"
        "print(sorted({m for m in sys.modules if m.startswith(slow)}))\n"
    )
    proc = _python(probe)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    """`python -c code args...` in a fresh process on this checkout."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


@pytest.mark.parametrize(
    "argv,said",
    [
        (["hiden=64"], "Unknown config key 'hiden' in override 'hiden=64'. Did you mean hidden"),
        (["lr=0"], "lr=0.0 must be > 0"),
        (["hidden=-3"], "hidden=-3 must be an integer >= 1"),
        (["model=logreg", "hidden=64"], "model=logreg has no hidden width"),
        (["eval_every=0"], "eval_every=0 must be an integer >= 1"),
        (["hydra.run.dir=README.md/run"], "hydra.run.dir=README.md/run: README.md is a file, not"),
        (["-m", "hydra.sweep.dir=README.md"], "hydra.sweep.dir=README.md: README.md is a file"),
        (["model=null"], "model=null: the command line can choose another model, not unset it"),
        (["~optimizer"], "~optimizer: the command line can choose another optimizer, not unset it"),
        (
            ["pipeline=problem_set"],
            "pipeline=problem_set: a pipeline runs as python scripts/pipeline.py pipeline=",
        ),
        (["-m", "seed=0,1,1"], "seed=0,1,1 lists 1 twice: one job dir, run once; drop the repeat"),
        (["-m", "lr=0.1,0.10"], "lr=0.1,0.10 lists 0.1 twice: one job dir, run once; drop the"),
        (["-m", "seed=0,1", "--cfg", "job"], "-m and --cfg: Hydra takes one of them; drop one"),
        (["experiment=null"], "experiment=null: no experiment is the default already; drop"),
        (["task=reconstruct"], "task=reconstruct: the model chooses the task; model=autoencoder"),
        (["model=mlp", "model.task=reconstruct"], "model.task=reconstruct: the model chooses the"),
        (
            ["model=mlp", "model.task=null"],
            "model.task=null: the model chooses the task, so choose",
        ),
        (["task_settings=gan"], "task_settings=gan: set the task's settings one by one"),
        (["divergence=simpel"], "Unknown divergence 'simpel'. Did you mean divergence=simple?"),
        (["activation=elu"], "activation=elu: model=logreg does not read the activation group"),
        (
            ["-m", "model=mlp", "lr=interval(0.1,1)"],
            "lr=interval(0.1,1): the basic sweeper runs a list of values (e.g. lr=0.1,1.0); an",
        ),
    ],
)
def test_a_refused_command_line_is_refused_before_torch_loads(argv, said):
    """A typo or a value out of range in `python train.py ...` is answered in about a
    second: the command line and the plain numbers are checked before anything imports
    torch (which alone takes over a second to load)."""
    probe = (
        "import atexit, runpy, sys\n"
        "loaded = lambda: sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "atexit.register(lambda: print(loaded()))\n"
        f"sys.argv = ['train.py', *{argv!r}]\n"
        "runpy.run_path('train.py', run_name='__main__')\n"
    )
    proc = _python(probe)
    assert proc.returncode == 2, proc.stderr
    assert said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout.strip() == "[]"


# `python -c LOADED_PROBE MODULE train.py ARGS...`: runs train.py in this process and prints,
# as the process exits, whether MODULE was imported
LOADED_PROBE = """
import atexit, runpy, sys
module, sys.argv = sys.argv[1], sys.argv[2:]
atexit.register(lambda: print(module in sys.modules))
runpy.run_path("train.py", run_name="__main__")
"""


@pytest.mark.slow  # trains two steps on the fixture
def test_a_run_on_mnist_files_at_hand_does_not_load_torchvision(tmp_path, fixture_overrides):
    """Importing torchvision adds a third of a second to every run's start (its models
    import more of torch); ucl reads the IDX files itself and imports torchvision only to
    download them, or for the DataLoader path (dataset.loader=dataloader)."""
    run_dir = tmp_path / "run"
    argv = ["train.py", "model=mlp", "steps=2", "eval_every=2", "progress=false",
            *fixture_overrides, f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = _python(LOADED_PROBE, "torchvision", *argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run_dir / "figures" / "confusion_matrix.png").is_file()
    assert proc.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.slow  # one job of two steps on the fixture
def test_a_sweep_sent_to_a_launcher_is_sent_without_loading_torch(tmp_path, fixture_overrides):
    """The process that sends a sweep's jobs to submitit (SLURM, or local processes) trains
    nothing, so it does not load torch: on a cluster's login node that is over a second of
    CPU and some hundreds of MB per sweep, and the first job is sent that much sooner."""
    sweep = tmp_path / "sweep"
    argv = ["train.py", "-m", "hydra/launcher=submitit_local", "model=logreg", "steps=2",
            "eval_every=2", "progress=false", *fixture_overrides, f"hydra.sweep.dir={sweep}",
            "seed=0"]  # fmt: skip
    proc = _python(LOADED_PROBE, "torch", *argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [record] = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert record["status"] == "completed"
    assert proc.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    "wrong,unloaded,said",
    [
        ("classifier={tmp}/nowhere", "torch", "run dir {tmp}/nowhere does not exist"),
        ("optimizer.schedule=linear", "torch._dynamo", "optimizer.schedule='linear' is unknown"),
    ],
    ids=["a link", "a schedule"],
)
def test_a_wrong_name_is_answered_before_what_it_does_not_need_loads(
    tmp_path, fixture_overrides, wrong, unloaded, said
):
    """A mistyped path is refused before torch loads (over a second), a mistyped schedule
    before an optimizer is built (torch's optimizers load torch._dynamo: another second)."""
    model = "experiment=gan" if wrong.startswith("classifier") else "model=mlp"
    argv = ["train.py", model, wrong.format(tmp=tmp_path), *fixture_overrides,
            f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = _python(LOADED_PROBE, unloaded, *argv)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert said.format(tmp=tmp_path) in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_the_pipeline_command_plans_and_checks_without_loading_torch(tmp_path):
    """The pipeline command trains nothing (its stages are train.py processes), so it does
    not load torch: over a second of CPU at each `pipeline.py` or `reproduce.py`, --list
    included, and the stages start that much sooner."""
    probe = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('torch' in sys.modules))\n"
        f"sys.argv = ['reproduce.py', '--list', '--root', {str(tmp_path / 'runs')!r}]\n"
        "runpy.run_path('scripts/reproduce.py', run_name='__main__')\n"
    )
    proc = _python(probe)
    assert "13 of 13 stages to run" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"


# `python -c PATH_PROBE OUT REPO train.py ARGS...`: runs train.py in this process under
# cProfile and writes to OUT the repository's Python files whose functions were called
PATH_PROBE = """
import atexit, cProfile, json, linecache, os, pstats, runpy, sys


def is_class_body(path, line):
    text = linecache.getline(path, line).lstrip()
    while text.startswith("@") or text and not text.startswith(("def ", "async def ", "class ")):
        line += 1  # past the decorators above a def or a class
        text = linecache.getline(path, line).lstrip()
    return text.startswith("class ")


def called(out, repo):
    profile.disable()
    files = set()
    for where, line, name in pstats.Stats(profile).stats:
        path = os.path.abspath(where)
        if not (where.endswith(".py") and path.startswith(repo + os.sep)) or name == "<module>":
            continue  # another package's code, or a module's own lines (imports, constants)
        if name.startswith("<") or not is_class_body(where, line):  # <lambda>, <listcomp>
            files.add(os.path.relpath(path, repo))
    with open(out, "w") as f:
        json.dump(sorted(files), f)


out, repo, sys.argv = sys.argv[1], sys.argv[2], sys.argv[3:]
profile = cProfile.Profile()
atexit.register(called, out, repo)
profile.enable()
runpy.run_path("train.py", run_name="__main__")
"""


@pytest.mark.slow  # trains five steps on the fixture
def test_one_run_reads_in_at_most_twelve_files(tmp_path, fixture_overrides):
    """`python train.py model=mlp`, followed from train.py to the files on disk, runs code
    in at most twelve of the repository's Python files (docs/development.md lists them in
    reading order): the files whose functions it calls, not those it only imports."""
    out = tmp_path / "files.json"
    argv = ["train.py", "model=mlp", "steps=5", "eval_every=5", "progress=false",
            *fixture_overrides, f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = _python(PATH_PROBE, str(out), str(REPO), *argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = json.loads(out.read_text())
    assert "train.py" in files and "ucl/tasks/classify.py" in files, files
    assert len(files) <= 12, files
