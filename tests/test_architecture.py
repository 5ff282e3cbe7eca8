"""The layers of pyproject.toml's import-linter contracts hold, and they catch a break."""

from __future__ import annotations

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
    """torchvision (with torch._dynamo), scikit-learn, scipy.stats and pyplot cost seconds at every
    `python train.py` start, a refused one included; they are imported where they are used."""
    probe = (
        "import sys\n"
        "from ucl.schema import load_all\n"
        "load_all()\n"
        "import ucl.run\n"
        "slow = ('torchvision', 'sklearn', 'scipy.stats', 'torch._dynamo', 'tensorboard',\n"
        "        'matplotlib.pyplot')\n"
        "print(sorted({m for m in sys.modules if m.startswith(slow)}))\n"
    )
    proc = _python(probe)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _python(code: str) -> subprocess.CompletedProcess:
    """`python -c code` in a fresh process on this checkout."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def test_a_refused_command_line_is_refused_before_torch_loads():
    """A typo in `python train.py ...` is answered in about a second: the command line is
    checked before anything imports torch (which alone takes over a second to load)."""
    probe = (
        "import atexit, runpy, sys\n"
        "loaded = lambda: sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "atexit.register(lambda: print(loaded()))\n"
        "sys.argv = ['train.py', 'hiden=64']\n"
        "runpy.run_path('train.py', run_name='__main__')\n"
    )
    proc = _python(probe)
    assert proc.returncode == 2, proc.stderr
    assert "Unknown config key 'hiden'" in proc.stderr
    assert "Did you mean hidden" in proc.stderr
    assert proc.stdout.strip() == "[]"
