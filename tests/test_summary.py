"""summarize.py over a fabricated sweep dir with known numbers: cells grouped by config
minus seed, mean / std / Student-t interval / n, the best cell by validation accuracy, Welch
marks, failed seeds, --per-seed, --pivot, --plot; one seed per cell stays as before."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats as scipy_stats

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("summarize", REPO / "scripts" / "summarize.py")
summarize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summarize)

# activation -> (val accuracies, test accuracies) over seeds 0, 1, 2; None: that seed failed
CELLS = {
    "relu": ([0.980, 0.982, 0.981], [0.979, 0.981, 0.980]),
    "elu": ([0.981, 0.979, 0.980], [0.982, 0.980, 0.983]),  # within noise of relu
    "sigmoid": ([0.950, 0.951, 0.949], [0.990, 0.991, 0.992]),  # best on test, worse on val
    "tanh": ([0.970, 0.971, None], [0.969, 0.972, None]),
}


def write_job(path: Path, overrides: list[str], config: dict, status: str, metrics: dict):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    record = {"status": status, "overrides": overrides, "metrics": metrics,
              "seconds": {"train": 10.0}}  # fmt: skip
    if status != "completed":
        record["reason"] = "NonFiniteLoss: batch/loss became nan at iteration 2"
    (path / "metrics.json").write_text(json.dumps(record))


def config(activation: str, seed: int, threads: int = 1) -> dict:
    return {"activation": {"name": activation}, "hidden": 128, "lr": 0.1, "seed": seed,
            "threads": threads, "dataset": {"name": "mnist", "root": f"/tmp/{seed}"}}  # fmt: skip


def fabricate(root: Path, cells=CELLS, seeds=(0, 1, 2)) -> Path:
    n = 0
    for activation, (vals, tests) in cells.items():
        for seed in seeds:
            val, test = vals[seed], tests[seed]
            status = "completed" if val is not None else "failed"
            metrics = {} if val is None else {"val/accuracy": val, "test/accuracy": test}
            overrides = [f"activation={activation}", f"seed={seed}", f"threads={1 + seed}"]
            write_job(root / str(n), overrides, config(activation, seed, 1 + seed), status,
                      metrics)  # fmt: skip
            n += 1
    return root


def run(*args) -> str:
    assert summarize.main([str(a) for a in args]) == 0
    return (Path(args[0]) / "summary.md").read_text()


def row(text: str, first: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {first} |"))


def half_width(xs):
    return scipy_stats.t.ppf(0.975, len(xs) - 1) * scipy_stats.sem(xs)


def test_cells_over_seeds_with_intervals_and_marks(tmp_path):
    text = run(fabricate(tmp_path / "sweep"))
    relu = row(text, "relu")
    vals, tests = CELLS["relu"]
    assert f"{np.mean(vals):.4f} ± {half_width(vals):.4f}" in relu
    assert f"{np.mean(tests):.4f} ± {half_width(tests):.4f}" in relu
    assert f"{np.std(tests, ddof=1):.4f}" in relu
    low, high = np.mean(tests) - half_width(tests), np.mean(tests) + half_width(tests)
    assert f"[{low:.4f}, {high:.4f}]" in relu
    assert relu.split("|")[2].strip() == "3"  # n
    assert relu.rstrip(" |").endswith("| best")  # best by validation, not by test
    assert row(text, "elu").rstrip(" |").endswith("≈ best")
    assert row(text, "sigmoid").endswith("| completed |  |")  # worse on val: no mark
    tanh = row(text, "tanh")
    assert "2 of 3 completed (seed=2 failed)" in tanh and tanh.split("|")[2].strip() == "2"
    assert "Best by val/accuracy: activation=relu, test/accuracy 98.00% ± " in text
    assert "Within noise of the best (Welch's t-test on val/accuracy, p >= 0.05): " in text
    assert "activation=elu" in text.split("Within noise")[1].splitlines()[0]
    assert "- 11: failed: NonFiniteLoss" in text  # the failed job is still listed


def test_csv_has_the_aggregate_columns(tmp_path):
    sweep = fabricate(tmp_path / "sweep")
    run(sweep)
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["activation"] for r in rows] == ["relu", "elu", "sigmoid", "tanh"]
    relu = rows[0]
    vals = CELLS["relu"][0]
    assert float(relu["val/accuracy mean"]) == pytest.approx(np.mean(vals))
    assert float(relu["val/accuracy std"]) == pytest.approx(np.std(vals, ddof=1))
    assert float(relu["val/accuracy ci95 high"]) == pytest.approx(np.mean(vals) + half_width(vals))
    assert (relu["n"], relu["seeds"], relu["mark"]) == ("3", "0 1 2", "best")


def test_per_seed_keeps_one_row_per_job(tmp_path):
    text = run(fabricate(tmp_path / "sweep"), "--per-seed")
    assert sum(line.startswith("| ") for line in text.splitlines()) == 1 + 12  # header + jobs
    assert "| failed |" in row(text, "11")


def test_grouping_is_by_config_not_by_dir_or_override_strings(tmp_path):
    # the same overrides, but the recorded configs differ in hidden: two cells, not one
    sweep = tmp_path / "sweep"
    for n, (hidden, seed) in enumerate([(64, 0), (64, 1), (256, 0), (256, 1)]):
        cfg = {**config("relu", seed), "hidden": hidden}
        write_job(sweep / f"job{n}", [f"seed={seed}"], cfg, "completed",
                  {"test/accuracy": 0.9 + n / 100})  # fmt: skip
    from ucl import aggregate, summary

    cells = aggregate.cells(summary.find_jobs(sweep))
    assert [len(c.jobs) for c in cells] == [2, 2]
    assert {tuple(j.path.name for j in c.jobs) for c in cells} == {
        ("job0", "job1"),
        ("job2", "job3"),
    }


def test_the_run_record_wins_over_hydras_copy(tmp_path):
    from ucl import summary

    sweep = fabricate(tmp_path / "sweep", {"relu": CELLS["relu"]}, seeds=(0, 1))
    (sweep / "0" / "config.yaml").write_text(yaml.safe_dump({**config("relu", 0), "lr": 0.5}))
    assert summary.load_config(sweep / "0")["lr"] == 0.5
    assert summary.load_config(sweep / "1")["lr"] == 0.1


def test_one_seed_per_cell_is_todays_table(tmp_path):
    from ucl import sweeps

    sweep = fabricate(tmp_path / "sweep", seeds=(0,))
    text = run(sweep)
    assert text.startswith(sweeps.markdown(sweeps.job_table(sweeps.load(sweep))))
    assert "One seed per cell: no confidence interval or significance test can be given" in text
    assert "Best by val/accuracy: activation=elu, test/accuracy 98.20% (mean over 1 seed)" in text
    assert "| 1 | elu | completed | 0.9810 | 0.9820 |" in text  # val/accuracy beside test


def test_pivot_shows_mean_and_half_width(tmp_path):
    sweep = tmp_path / "sweep"
    n = 0
    for opt in ("sgd", "adam"):
        for lr in ("0.01", "0.1"):
            for seed in (0, 1):
                acc = 0.9 + (0.05 if opt == "adam" else 0) + (0.01 if lr == "0.1" else 0)
                acc += 0.002 * seed
                cfg = {**config("relu", seed), "optimizer": {"name": opt}, "lr": float(lr)}
                write_job(sweep / str(n), [f"optimizer={opt}", f"lr={lr}", f"seed={seed}"], cfg,
                          "completed", {"test/accuracy": acc})  # fmt: skip
                n += 1
    text = run(sweep, "--pivot", "optimizer", "lr", "--plot")
    pivot = text.split("test/accuracy:\n\n")[1]
    hw = half_width([0.96, 0.962])
    assert f"| adam | {0.951:.4f} ± {hw:.4f} | {0.961:.4f} ± {hw:.4f} |" in pivot
    assert (sweep / "test_accuracy_by_optimizer_lr.png").stat().st_size > 10_000
    assert list((sweep / "summary").glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    "args,said",
    [
        (["--metrics", "test/accuracy,test/acuracy"], "--metrics test/acuracy"),
        (["--metrics", "test/accuracy,, test/acuracy"], "--metrics test/acuracy"),  # as typed
        (["--metric", "val/acc"], "--metric val/acc"),
        (["--choose", "val_accuracy"], "--choose val_accuracy"),
        (["--plot", "--metric", "test/loss"], "--metric test/loss"),
    ],
)
def test_a_metric_no_job_reports_is_refused_naming_those_they_do(tmp_path, capsys, args, said):
    sweep = fabricate(tmp_path / "sweep")
    assert summarize.main([str(sweep), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"summarize: {said}: no job reports this metric") and "\n" not in err
    assert err.endswith("the jobs report val/accuracy, test/accuracy")
    assert not (sweep / "summary.md").exists()


def test_a_pivot_key_no_job_sets_is_refused_without_quotes(tmp_path, capsys):
    assert summarize.main([str(fabricate(tmp_path / "sweep")), "--pivot", "activation", "lr"]) == 2
    said = "summarize: --pivot: no job sets 'lr'; the swept parameters are: activation"
    assert capsys.readouterr().err.strip() == said


def test_a_loss_chosen_by_is_best_lowest_and_the_caption_says_so(tmp_path):
    losses = {"relu": [0.10, 0.11, 0.12], "tanh": [0.30, 0.31, 0.29]}
    for n, (activation, seed) in enumerate((a, s) for a in losses for s in range(3)):
        metrics = {"val/loss": losses[activation][seed], "test/accuracy": 0.9}
        overrides = [f"activation={activation}", f"seed={seed}"]
        write_job(tmp_path / str(n), overrides, config(activation, seed), "completed", metrics)
    text = run(tmp_path, "--choose", "val/loss")
    assert row(text, "relu").endswith("| best |") and "best: lowest mean val/loss;" in text
    assert "highest" not in text


def test_a_folder_with_no_job_says_what_a_job_dir_holds(tmp_path, capsys):
    (tmp_path / "sweep" / ".hydra").mkdir(parents=True)  # Hydra's files, no job yet
    assert summarize.main([str(tmp_path / "sweep")]) == 1
    said = capsys.readouterr().err
    assert said.startswith(f"{tmp_path / 'sweep'}: no job dirs: no folder below it holds a ")
    assert "metrics.json" in said and ".hydra" not in said


@pytest.mark.parametrize(
    "pivot,said",
    [
        (["activation", "activation"], "--pivot activation activation: give two different keys"),
        (["activation", "seed"], "--pivot: the cells are means over seed; pivot two swept "
         "parameters (activation), or add --per-seed for a square per job"),
    ],
)  # fmt: skip
def test_a_pivot_on_one_key_or_on_the_seed_is_refused(tmp_path, capsys, pivot, said):
    assert summarize.main([str(fabricate(tmp_path / "sweep")), "--pivot", *pivot]) == 2
    assert said in capsys.readouterr().err


def test_neighbours_the_seeds_do_not_separate_are_named(tmp_path):
    cells = {
        "relu": ([0.980, 0.981, 0.982], [0.98, 0.98, 0.98]),
        "linear": ([0.920, 0.926, 0.923], [0.92, 0.92, 0.92]),
        "sigmoid": ([0.924, 0.921, 0.926], [0.92, 0.92, 0.92]),
    }
    text = run(fabricate(tmp_path / "sweep", cells))
    assert "Every other cell is significantly worse on val/accuracy" in text
    assert (
        "Neighbours in the ranking the seeds do not separate (p >= 0.05): "
        "activation=sigmoid and activation=linear." in text
    )


def test_a_summary_md_of_the_users_in_the_folder_is_refused_untouched(tmp_path, capsys):
    folder = fabricate(tmp_path / "experiments")  # the user's own folder of runs and notes
    (folder / "summary.md").write_text("my notes\n")
    assert summarize.main([str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"summarize: {folder}: summary.md is there, and summarize.py has no ")
    assert "--out" in err and "\n" not in err
    assert (folder / "summary.md").read_text() == "my notes\n"
    assert not (folder / "summary.csv").exists()
    (folder / "summary.csv").write_text("mine,too\n")
    assert summarize.main([str(folder)]) == 2
    assert "summary.md, summary.csv are there, and summarize.py has no record of writing them" in (
        capsys.readouterr().err
    )


def test_its_own_summary_is_rewritten_on_the_next_call(tmp_path):
    sweep = fabricate(tmp_path / "sweep")
    run(sweep)
    assert "| 11 |" in run(sweep, "--per-seed")  # the second call's table, not the first's


def test_out_puts_the_summary_files_in_a_folder_of_their_own(tmp_path):
    sweep = fabricate(tmp_path / "sweep")
    (sweep / "summary.md").write_text("my notes\n")
    out = tmp_path / "tables"
    assert summarize.main([str(sweep), "--out", str(out), "--pivot", "activation", "seed",
                           "--per-seed", "--plot"]) == 0  # fmt: skip
    assert row((out / "summary.md").read_text(), "relu")
    assert (out / "summary.csv").exists() and list((out / "summary").glob("events.out.*"))
    assert (sweep / "summary.md").read_text() == "my notes\n"
    assert not (sweep / "summary.csv").exists()


@pytest.mark.parametrize("mine", ["summary/notes.txt", "test_accuracy_by_optimizer_lr.png"])
def test_a_figure_name_the_user_holds_is_refused_before_anything_is_written(tmp_path, mine):
    sweep = tmp_path / "sweep"
    for n, (opt, lr) in enumerate([("sgd", "0.1"), ("adam", "0.1"), ("sgd", "0.2")]):
        cfg = {**config("relu", 0), "optimizer": {"name": opt}, "lr": float(lr)}
        write_job(sweep / str(n), [f"optimizer={opt}", f"lr={lr}"], cfg, "completed",
                  {"test/accuracy": 0.9 + n / 100})  # fmt: skip
    (sweep / mine).parent.mkdir(exist_ok=True)
    (sweep / mine).write_text("mine\n")
    assert summarize.main([str(sweep), "--pivot", "optimizer", "lr", "--plot"]) == 2
    assert (sweep / mine).read_text() == "mine\n"
    assert not (sweep / "summary.md").exists()


def test_a_job_whose_record_is_corrupt_keeps_the_table_to_the_swept_keys(tmp_path):
    sweep = tmp_path / "sweep"
    for hidden, accuracy in (("8", 0.5), ("16", 0.6), ("32", 0.7)):
        write_job(sweep / f"hidden={hidden}", ["model=mlp", "steps=10", f"hidden={hidden}"],
                  {"hidden": int(hidden), "seed": 0}, "completed",
                  {"test/accuracy": accuracy})  # fmt: skip
    (sweep / "hidden=16" / "metrics.json").write_text("{bad")  # a damaged record
    text = run(sweep)
    assert text.splitlines()[0].startswith("| job | hidden | status |"), text
    assert row(text, "hidden=16").startswith("| hidden=16 | 16 | corrupt |"), text
    assert "Best by test/accuracy: hidden=32, test/accuracy 70.00%" in text, text
