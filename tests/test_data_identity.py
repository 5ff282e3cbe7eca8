"""The data a run trained on is part of its identity: a run continued (resume=, or the same
job dir run again) on files with other content is refused, naming the files."""

from __future__ import annotations

import gzip
import json

import pytest
from train_process import FIXTURE_MNIST, metrics, output, snapshot, train

from ucl.data import IDX_FILES


def other_mnist(tmp_path):
    """The fixture with its first training image blanked: same names, sizes and headers."""
    folder = tmp_path / "other"
    folder.mkdir()
    for name in IDX_FILES:
        with gzip.open(FIXTURE_MNIST / f"{name}.gz") as f:
            data = bytearray(f.read())
        if name == "train-images-idx3-ubyte":
            data[16 : 16 + 784] = bytes(784)
        (folder / name).write_bytes(bytes(data))
    return folder


@pytest.mark.slow  # four train.py processes
def test_a_run_continued_on_other_data_is_refused_naming_the_files(tmp_path):
    run_dir = tmp_path / "run"
    args = ["model=logreg", "steps=20", "eval_every=10", "checkpoint_every=10", "threads=1",
            "progress=false", f"dataset.root={tmp_path / 'data'}"]  # fmt: skip
    first = train([*args, f"dataset.idx_dir={FIXTURE_MNIST}", f"hydra.run.dir={run_dir}"])
    assert first.returncode == 0, output(first)
    record = metrics(run_dir)
    assert set(record["data"]["fingerprint"]["files"]) == set(IDX_FILES)
    other = other_mnist(tmp_path)
    before = snapshot(run_dir)
    # completed: a re-run would skip it, and so report the old data's numbers as this data's
    skipped = train([*args, f"hydra.run.dir={run_dir}", f"dataset.idx_dir={other}"])
    assert skipped.returncode == 2 and "train-images-idx3-ubyte" in skipped.stderr, output(skipped)
    assert snapshot(run_dir) == before

    record["status"] = "interrupted"  # as a kill before the end leaves it
    (run_dir / "metrics.json").write_text(json.dumps(record))
    before = snapshot(run_dir)
    root = f"dataset.root={tmp_path / 'data'}"
    for how in ([f"resume={run_dir}", "threads=1", root], [*args, f"hydra.run.dir={run_dir}"]):
        again = train([*how, f"dataset.idx_dir={other}"])
        text = output(again)
        assert again.returncode == 2, text
        assert "Traceback" not in text and "train-images-idx3-ubyte" in text, text
        assert "other data" in text and len(again.stderr.strip().splitlines()) == 1, text
        assert snapshot(run_dir) == before
