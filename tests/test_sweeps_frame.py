"""ucl.sweeps: a sweep as a DataFrame, one row per job (the same jobs and order as
summary.find_jobs, typed config columns, metrics, seconds, run dir), and cells() giving
aggregate's numbers and marks to the last bit, on a real train.py sweep, on the fabricated
sweep of tests/test_summary.py (failed seeds, Welch marks) and on committed sweeps; and the
five lines README.md shows under "Scripting sweep summaries", run as they stand there."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from test_summary import CELLS, fabricate
from train_process import REPO, data_args, output, train

from ucl import aggregate, stats, summary, sweeps
from ucl.lifecycle import is_number
from ucl.rundir import read_config_record

FIXTURES = REPO / "tests" / "fixtures" / "report_runs"
SWEEP = ["-m", "model=mlp", "hidden=8", "steps=20", "eval_every=10", "threads=1",
         "dataset.validation=300", "activation=relu,tanh", "seed=0,1"]  # fmt: skip


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """Four train.py jobs on the committed MNIST subset: 2 activations x 2 seeds."""
    tmp = tmp_path_factory.mktemp("frame")
    proc = train([*SWEEP, *data_args(tmp), f"hydra.sweep.dir={tmp / 'sweep'}"])
    assert proc.returncode == 0, output(proc)
    return tmp / "sweep"


def plain(v):
    """A frame's value as the Job holds it: pandas' missing value as None, numbers as floats."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


@pytest.mark.slow  # a 4-job sweep in a subprocess
def test_load_gives_one_row_per_job(real_sweep):
    frame = sweeps.load(real_sweep)
    jobs = summary.find_jobs(real_sweep)
    assert list(frame["job"]) == [j.path.name for j in jobs] == [
        "activation=relu,seed=0", "activation=relu,seed=1",
        "activation=tanh,seed=0", "activation=tanh,seed=1",
    ]  # fmt: skip
    assert frame.attrs["swept"] == ["activation", "seed"]
    columns = list(frame.columns)
    assert columns[:3] == ["job", "activation", "seed"]
    order = ["threads", "model.hidden", "data", "status", "reason", "test/accuracy",
             "seconds/train", "run_dir", "overrides"]  # fmt: skip
    assert {"val/accuracy", "metrics/steps", "seconds/total", "lr"} <= set(columns)
    assert [columns.index(c) for c in order] == sorted(columns.index(c) for c in order)
    # typed as the config holds them: the swept seed an int, lr a float
    assert pd.api.types.is_integer_dtype(frame["seed"]) and list(frame["seed"]) == [0, 1, 0, 1]
    assert pd.api.types.is_float_dtype(frame["lr"])
    assert list(frame["activation"]) == ["relu", "relu", "tanh", "tanh"]
    for i, job in enumerate(jobs):
        row = frame.iloc[i]
        assert row["run_dir"] == job.path and row["overrides"] == job.params
        assert (row["status"], row["reason"], row["data"]) == ("completed", "", job.data)
        for name, value in job.metrics.items():
            column = frame.attrs["metrics"][name]
            assert plain(row[column]) == value, name
        assert frame.attrs["metrics"]["steps"] == "metrics/steps"  # the config has steps too
        assert row["seconds/train"] == job.seconds["train"]
        record = read_config_record(job.path)
        assert row["model.hidden"] == record["model"]["hidden"] == 8
        assert row["threads"] == record["threads"] == 1  # a runtime key is a column too
        assert row["optimizer.lr"] == record["optimizer"]["lr"]


def metric_columns(jobs):
    """The default metrics, worked out from the Job objects instead of the frame."""
    present = list(dict.fromkeys(k for j in jobs for k, v in j.metrics.items() if is_number(v)))
    if "test/accuracy" in present:
        return [c for c in sweeps.CLASSIFY_COLUMNS if c in present]
    return present[: sweeps.MAX_DEFAULT_METRICS]


def same_as_aggregate(sweep_dir, metrics=None):
    """sweeps.cells() against aggregate's cells, numbers and marks for one sweep dir."""
    jobs = summary.find_jobs(sweep_dir)
    found = aggregate.cells(jobs)
    choose = aggregate.choose_metric(jobs)
    marked = aggregate.marks(found, choose) if choose else {}
    frame = sweeps.load(sweep_dir)
    metrics = metrics or metric_columns(jobs)
    assert sweeps.default_metrics(frame) == metric_columns(jobs)
    assert sweeps.seeds_per_cell(frame) == aggregate.seeds_per_cell(found)
    written = sweeps.cells(frame, metric=metrics, as_written=True)
    typed = sweeps.cells(frame, metric=metrics)
    assert len(written) == len(typed) == len(found)
    for i, cell in enumerate(found):
        row, typed_row = written.iloc[i], typed.iloc[i]
        assert {k: row[k] for k in cell.params} == cell.params
        assert row["n"] == len(cell.completed)
        assert row["status"] == cell.status
        assert row["mark"] == marked.get(id(cell), "")
        assert [frame.loc[k, "job"] for k in row["jobs"]] == [j.path.name for j in cell.jobs]
        assert row["seeds"] == [j.seed for j in cell.jobs if j.seed is not None]
        for m in {*metrics, choose} - {None}:
            a = cell.agg(m)
            want = [a.mean, a.std, a.low, a.high, a.half_width]
            for got in (row, typed_row):  # exactly: the same floats, not approximately
                assert [plain(got[f"{m} {s}"]) for s in sweeps.STATS] == want, (m, cell.params)
        train_s = stats.aggregate([j.seconds["train"] for j in cell.completed]).mean
        assert plain(row.get("seconds/train mean")) == train_s
    return frame, written, typed


@pytest.mark.slow  # a 4-job sweep in a subprocess
def test_cells_give_aggregates_numbers_on_a_real_sweep(real_sweep):
    frame, written, typed = same_as_aggregate(real_sweep)
    assert list(written["activation"]) == ["relu", "tanh"] and list(written["n"]) == [2, 2]
    assert list(typed["seeds"]) == [[0, 1], [0, 1]]  # typed: the config's ints
    assert set(written["mark"]) & {sweeps.BEST}


def test_cells_give_aggregates_numbers_and_marks_with_failed_seeds(tmp_path):
    sweep = fabricate(tmp_path / "sweep")
    frame, written, _ = same_as_aggregate(sweep)
    assert frame.attrs["swept"] == ["activation", "seed", "threads"]
    assert list(frame["threads"]) == [1, 2, 3] * 4  # the config's ints
    assert list(frame["status"]).count("failed") == 1
    assert list(written["mark"]) == ["best", "≈ best", "", ""]  # by val/accuracy, Welch
    assert written.loc[3, "status"] == "2 of 3 completed (seed=2 failed)"
    vals = CELLS["relu"][0]
    assert written.loc[0, "val/accuracy mean"] == math.fsum(vals) / 3
    # chosen by test accuracy instead: sigmoid is best there
    by_test = sweeps.cells(frame, metric="test/accuracy", choose="test/accuracy")
    assert list(by_test["mark"]) == ["", "", "best", ""]


@pytest.mark.parametrize("name", ["activation_sweep", "optimizer_sweep", "lr_sweep", "gan"])
def test_cells_give_aggregates_numbers_on_committed_sweeps(name):
    same_as_aggregate(FIXTURES / name)


def readme_example() -> str:
    """The ```python block under README's "### Scripting sweep summaries" heading."""
    text = (REPO / "README.md").read_text()
    assert "### Scripting sweep summaries" in text
    section = text.split("### Scripting sweep summaries", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow  # a 4-job sweep in a subprocess
def test_the_readme_lines_run_on_a_real_sweep(real_sweep, capsys):
    code = readme_example()
    assert len(code.strip().splitlines()) == 5
    # only the sweep dir string is replaced: the lines run as README shows them
    code, replaced = re.subn(
        r"""sweeps\.load\((["'])[^"']*\1\)""", f"sweeps.load({str(real_sweep)!r})", code
    )
    assert replaced == 1
    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)
    printed = capsys.readouterr().out
    lines = printed.strip().splitlines()
    assert lines[0].startswith("| activation ") and "test/accuracy mean" in lines[0]
    assert lines[1].startswith("|:") and len(lines) == 2 + 2  # header, rule, two cells
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["relu", "tanh"]
    table = names["table"]
    jobs = summary.find_jobs(real_sweep)
    found = aggregate.cells(jobs)
    for line, cell, mean in zip(lines[2:], found, table["test/accuracy mean"], strict=True):
        assert mean == cell.agg("test/accuracy").mean
        assert f" {mean:g} " in line  # to_markdown's default number format
    marked = aggregate.marks(found, aggregate.choose_metric(jobs))
    assert [marked.get(id(c), "") for c in found] == list(table["mark"])
