"""Shared test fixtures: the committed MNIST subset, config composition, train.py runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ucl.lifecycle import sleeping_threads

sleeping_threads()  # runs made in this process wait as train.py's do (before torch loads)

from ucl.config import compose  # noqa: E402, F401  (re-exported for the tests)

REPO = Path(__file__).resolve().parents[1]
FIXTURE_MNIST = REPO / "tests" / "fixtures" / "mnist"


def full_mnist_dir() -> Path | None:
    """The folder of the full MNIST IDX files, when UCL_MNIST_DIR names one."""
    value = os.environ.get("UCL_MNIST_DIR")
    return Path(value) if value and Path(value).is_dir() else None


def shares_a_module_fixture(item) -> bool:
    """Whether the test uses a module-scoped fixture (a run trained once for its module)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info else ()
    return any(d[-1].scope == "module" for d in defs)


# tryfirst: the xdist_group marks must be on the items before pytest-xdist reads them
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if full_mnist_dir() is None:
        skip = pytest.mark.skip(reason="full MNIST not present: set UCL_MNIST_DIR to run")
        for item in items:
            if "full_mnist" in item.keywords:
                item.add_marker(skip)
    # pytest-xdist hands out tests in this order: the full-MNIST trainings and the tests
    # marked long (minutes each) go first, so that neither worker starts one while the other
    # has nothing left to run. The long cluster test goes before them all: it starts the
    # smoke pipeline on SLURM, then makes (or reads) the local run it compares with while
    # the cluster works, so its group (with tests/test_reproduce.py's) is the longest
    items.sort(key=first_to_start)
    # the tests of a module-scoped fixture run on one worker, which builds it once; a test
    # that names its group keeps that one alone (two marks would make a group of their own)
    for item in items:
        if shares_a_module_fixture(item) and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def first_to_start(item) -> int:
    """0 for the long tests on the cluster, 1 for the other long ones, 2 for the rest."""
    keywords = set(item.keywords)
    if not {"full_mnist", "long"} & keywords:
        return 2
    return 0 if "slurm" in keywords else 1


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: two of them share the cores
        import torch

        torch.set_num_threads(1)


SMOKE_TIMEOUT_S = 1200  # generous: the machine running the tests may be shared
# the tests that read the one local smoke reproduction of a session (smoke_reproduction):
# on one pytest-xdist worker, which runs it once
SMOKE_GROUP = pytest.mark.xdist_group("smoke_reproduction")


def reproduce_smoke(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`python scripts/reproduce.py --smoke --root ROOT --no-pdf ARGS`, as a user types it."""
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "reproduce.py"), "--smoke", "--root", str(root),
         "--no-pdf", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "UCL_MNIST_DIR": ""},  # the smoke run needs no full data
        timeout=SMOKE_TIMEOUT_S,
    )  # fmt: skip


@pytest.fixture(scope="session")
def smoke_reproduction(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The smoke reproduction, run here once a session: (its root, the finished command).
    tests/test_reproduce.py checks it; tests/test_slurm_pipeline.py compares the same
    pipeline run on the SLURM cluster with it. Both are marked SMOKE_GROUP."""
    root = tmp_path_factory.mktemp("smoke-reproduction") / "smoke"
    return root, reproduce_smoke(root)


@pytest.fixture
def fixture_overrides(tmp_path) -> list[str]:
    """Overrides that point a run at the committed 2000/500-digit MNIST subset."""
    return [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'data'}"]


def train(
    args: list[str],
    cwd: Path = REPO,
    check: bool = True,
    env: dict | None = None,
    timeout: float = 600,
):
    """Run `python train.py ARGS` in a subprocess; returns the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "UCL_MNIST_DIR": "", **(env or {})},
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc
