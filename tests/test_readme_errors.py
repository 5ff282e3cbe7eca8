"""README's examples of bad input are what train.py prints: each `$ python train.py ...`
line of README's block is run, and must print the line below it (a trailing `...` stands
for the rest), exit with status 2, and leave nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from train_process import REPO

BLOCK = re.compile(r"\$ python train\.py (?P<args>.*)\n(?P<said>train\.py: .*)")


def examples() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text()
    return [(m["args"], m["said"]) for m in BLOCK.finditer(text)]


# What each of these invocations must print, whatever README's wording: README's examples
# cover them, so that one train.py process checks both
MUST_SAY = {
    "model=mlpx": ["Unknown model 'mlpx'. Did you mean model=mlp?", "logreg, mlp"],
    "lr_rate=0.1": ["Unknown config key 'lr_rate'", "Did you mean", " lr "],
    "lr=abc": ["lr", "abc", "could not be converted to Float"],
    "lr=0": ["lr=0.0 must be > 0 (e.g. lr=0.1)"],
}


def test_readme_has_the_examples():
    assert len(examples()) >= 5
    assert set(MUST_SAY) <= {args for args, _ in examples()}


@pytest.mark.parametrize("args, said", examples(), ids=[a for a, _ in examples()])
def test_readme_error_example_is_what_train_prints(tmp_path, args, said):
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args.split()],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "UCL_MNIST_DIR": ""},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    if said.endswith("..."):
        assert lines[0].startswith(said[:-3].rstrip()), (lines[0], said)
    else:
        assert lines[0] == said
    for text in MUST_SAY.get(args, []):
        assert text in lines[0], (text, lines[0])
    assert list(tmp_path.iterdir()) == []  # no run dir, no log
