"""README's two fresh-machine commands are the tested ones: CI runs the test command
character for character, each install installs what it says, and `pytest` as typed (not
`python -m pytest`) collects every test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The commands of README's "Two commands on a fresh machine" block, comments cut."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Two commands on a fresh machine", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def ci_commands() -> list[str]:
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_readme_has_the_two_commands():
    train, test = readme_commands()
    assert train.startswith("pip install -r requirements.txt && ") and train.endswith(
        "python train.py"
    )
    assert test.startswith("pip install -r requirements.txt && ") and test.endswith("&& pytest -q")


def test_ci_runs_the_readme_test_command_as_typed():
    _, test = readme_commands()
    assert test in ci_commands(), f".ci/run does not run README's test command: {test}"
    assert ci_commands()[-1] == test, "README's test command is what CI ends with"


def requirement_names(lines) -> dict[str, str]:
    """name -> specifier of each requirement line (comments and blank lines skipped)."""
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", line).groups()
            found[name.lower().replace("_", "-")] = spec.strip()
    return found


def test_requirements_pin_the_runtime_and_the_extras_pin_the_tools():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = requirement_names(project["dependencies"])
    pinned = requirement_names((REPO / "requirements.txt").read_text().splitlines())
    assert set(runtime) <= set(pinned), set(runtime) - set(pinned)
    assert all(spec.startswith("==") for spec in pinned.values()), pinned
    extras = project["optional-dependencies"]
    tools = {**requirement_names(extras["dev"]), **requirement_names(extras["launchers"])}
    wanted = {"pytest", "ruff", "pot", "hydra-joblib-launcher", "hydra-submitit-launcher"}
    assert wanted <= set(tools), wanted - set(tools)
    assert all(spec.startswith("==") for spec in tools.values()), tools
    # the runtime file holds no test or launcher tool: the extras say what they add
    assert not set(tools) & set(pinned), set(tools) & set(pinned)


@pytest.mark.slow  # collects the whole suite in a subprocess (imports every test module)
def test_pytest_as_typed_collects_every_test():
    pytest_script = Path(sys.executable).parent / "pytest"
    if not pytest_script.exists():
        pytest.skip(f"no pytest script beside {sys.executable}")
    proc = subprocess.run(
        [str(pytest_script), "-q", "--collect-only", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"^\d+ tests collected", proc.stdout, re.M), proc.stdout[-1000:]
