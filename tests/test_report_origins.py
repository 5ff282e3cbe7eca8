"""The report says where each choice came from: the value a table took from an earlier
table, which table, by what rule and with what number, read from stages.json's choices,
else from the runs' metrics.json `consumed`, and nothing when neither records one.

On a copy of tests/fixtures/report_runs (a `python scripts/reproduce.py --smoke` run of the
problem-set pipeline: Table 1 chose tanh, Table 2 64 hidden units), since building the
tables writes their figures into the stage dirs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from problem_set.report import origins
from problem_set.report.build import build_report
from problem_set.report.questions import q232, q233
from problem_set.report.sources import Source
from ucl import aggregate
from ucl.rundir import run_identity

RUNS = Path(__file__).parent / "fixtures" / "report_runs"
T1 = "[Table 1](#table-1-activation-of-the-hidden-layer)"
T2 = "[Table 2](#table-2-hidden-width)"
ACTIVATION = f"Activation tanh: {T1}'s choice, the best of its 2 cells on validation accuracy"
WIDTH = f"64 hidden units: {T2}'s choice, the best of its 2 cells on validation accuracy"


@pytest.fixture
def root(tmp_path) -> Path:
    shutil.copytree(RUNS, tmp_path / "runs")
    return tmp_path / "runs"


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _drop_choices(root: Path) -> None:
    def drop(data):
        for entry in data["stages"].values():
            entry.pop("choices", None)

    _edit_json(root / "stages.json", drop)


def _drop_consumed(root: Path) -> None:
    for path in root.rglob("metrics.json"):
        _edit_json(path, lambda record: record.pop("consumed", None))


def _table1_best(root: Path) -> tuple[str, float]:
    jobs = Source(root).jobs("activation_sweep")
    best = aggregate.best_cell(aggregate.cells(jobs), "val/accuracy")
    return best.params["activation"], best.agg("val/accuracy").mean


def test_the_fixture_records_the_choices_the_tables_show(root):
    # the committed reproduction is what the sentences below rest on: Table 1's best cell on
    # validation accuracy is tanh, and the later tables record taking it
    value, mean = _table1_best(root)
    assert (value, f"{100 * mean:.1f}%") == ("tanh", "75.3%")
    choices = json.loads((root / "stages.json").read_text())["stages"]["width_sweep"]["choices"]
    assert [(c["key"], c["value"], c["from"]) for c in choices] == [
        ("activation", "tanh", "activation_sweep")
    ]


def test_tables_2_to_4_name_the_value_table_rule_and_number(root):
    md = build_report(root, root.parent / "out", make_pdf=False).markdown.read_text()

    def section(title: str) -> str:
        return md.split(f"### {title}\n")[1].split("\n### ")[0]

    table1 = section(origins.TABLES["activation_sweep"])
    table2 = section(origins.TABLES["width_sweep"])
    table3 = section(origins.TABLES["lr_sweep"])
    table4 = section(origins.TABLES["optimizer_sweep"])
    assert "choice" not in table1  # it took nothing
    assert "learning rate 0.5, batch 128" in table1  # the logistic model's settings
    assert f"{ACTIVATION} (75.3%, one seed)." in table2
    assert f"{ACTIVATION} (75.3%, one seed). {WIDTH} (76.7%, one seed)." in table3
    assert f"{ACTIVATION} (75.3%, one seed)." in table4 and WIDTH not in table4
    # Table 4 keeps the preset's width, and says it is not Table 2's choice
    assert f"256 hidden units (not {T2}'s choice, 64)" in table4
    # the questions' answers say it too, in a clause
    assert f"Every setting of the table ran with activation tanh ({T1}'s choice)." in q232(
        Source(root)
    )
    assert f"activation tanh ({T1}'s choice) and 64 hidden units ({T2}'s choice)" in q233(
        Source(root)
    )
    # the runs a later stage read, with their identities
    gan = md.split("## Generative adversarial network")[1]
    assert "The classifier that judged it: `/tmp/rep_smoke/best_mlp` (run identity " in gan


def test_without_stages_json_choices_the_runs_consumed_say_the_same(root):
    before = origins.sentences(Source(root), "lr_sweep")
    _drop_choices(root)
    assert origins.sentences(Source(root), "lr_sweep") == before
    assert f"{ACTIVATION} (75.3%, one seed)." in before


def test_without_any_record_nothing_is_claimed(root):
    _drop_choices(root)
    _drop_consumed(root)
    src = Source(root)
    for stage in origins.TABLES:
        assert origins.taken(src, stage) == []
        assert origins.sentences(src, stage) == ""
        assert "choice" not in origins.fixed(src, stage)
    assert "choice" not in q232(src) and "choice" not in q233(src)
    # what the jobs ran with still shows, from their configs
    assert origins.fixed(src, "width_sweep").startswith(
        "Every job of this table ran with activation tanh, optimizer sgd, learning rate 0.5"
    )
    assert origins.linked(src, src.run("logreg")) == ""  # it read no earlier run


def test_a_recorded_choice_the_runs_did_not_run_with_is_not_claimed(root):
    # stages.json says relu, but every width_sweep job's config holds tanh (and consumed says
    # tanh): the runs win
    def relu(data):
        data["stages"]["width_sweep"]["choices"][0]["value"] = "relu"

    _edit_json(root / "stages.json", relu)
    assert origins.sentences(Source(root), "width_sweep").startswith("Activation tanh:")
    _drop_consumed(root)
    assert origins.sentences(Source(root), "width_sweep") == ""


def test_a_table_run_again_since_is_said_so(root):
    job = root / "activation_sweep" / "activation=relu" / "metrics.json"
    _edit_json(job, lambda record: record["metrics"].update({"val/accuracy": 0.5}))
    text = origins.sentences(Source(root), "width_sweep")
    assert f"{ACTIVATION} (75.3%, one seed); Table 1 has been run again since" in text
    # from consumed alone, the number of the table as it was is not known: not guessed
    _drop_choices(root)
    text = origins.sentences(Source(root), "width_sweep")
    assert text.startswith(f"Activation tanh: {T1}'s choice, its best cell when this table ran")
    assert "%" not in text


def test_the_sentence_over_seeds():
    t = origins.Taken("activation", "relu", "activation_sweep", "0" * 16, "val/accuracy",
                      0.9791, 3, 7, now="0" * 16)  # fmt: skip
    assert origins.sentence(t) == (
        f"Activation relu: {T1}'s choice, the best of its 7 cells on validation accuracy "
        "(97.9%, mean of 3 seeds)."
    )


def test_a_linked_run_is_matched_to_the_run_in_the_root(root):
    (root / "best_mlp" / "model.pt").write_bytes(b"weights")
    identity = run_identity(root / "best_mlp")
    path = root / "gan" / "metrics.json"
    _edit_json(path, lambda r: r["consumed"]["classifier"].update(identity=identity))
    src = Source(root)
    assert origins.linked(src, src.run("gan")).endswith(
        f"(run identity {identity}, the best_mlp run of this reproduction)."
    )
    (root / "best_mlp" / "model.pt").write_bytes(b"other weights")  # best_mlp ran again
    text = origins.linked(Source(root), src.run("gan"))
    assert f"(run identity {identity}; the best_mlp run here now is another, " in text
