"""The report's Questions section and the measurements behind its why/when answers.

The answers are read from tests/fixtures/report_runs: the metrics.json, history.csv and
config.yaml files of a `python scripts/reproduce.py --smoke` run (no figures, no models), so
every stage is there without training anything."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from problem_set.report import facts
from problem_set.report.doc import Heading, Text
from problem_set.report.insights import insights
from problem_set.report.questions import QUESTIONS, questions
from problem_set.report.sources import Source
from problem_set.report.words import measure, pm, sig
from ucl.latent import Coder, interpolation_confidence, neighbourhoods, random_code_quality
from ucl.lifecycle import read_metrics
from ucl.sample_quality import saturated_ink

RUNS = Path(__file__).parent / "fixtures" / "report_runs"
NUMBERS = [  # the problem set's numbering
    "2.2.1", "2.3.1", "2.3.2", "2.3.3", "2.3.4", "3.1.1", "3.1.2", "3.2.1", "4.1.1",
    "4.1.2", "4.1.3", "4.2.1", "4.2.2", "5.1.1", "5.3.1", "5.3.2", "5.3.3",
]  # fmt: skip


@pytest.fixture(scope="module")
def answers() -> dict[str, str]:
    blocks = questions(Source(RUNS))
    out, number = {}, None
    for b in blocks:
        if isinstance(b, Heading) and b.level == 3:
            number = b.text.split()[0]
        elif isinstance(b, Text) and number is not None:
            out[number] = b.text
    return out


def test_every_question_has_an_answer_in_sentences(answers):
    assert [n for n, _, _ in QUESTIONS] == NUMBERS
    assert list(answers) == NUMBERS
    for number, text in answers.items():
        assert "not run" not in text and "failed" not in text, (number, text)
        prose = re.sub(r"\d\.\d", "0", text)  # decimal points are not full stops
        sentences = [s for s in re.split(r"[.;:!?](?:\s|$)", prose) if len(s.split()) >= 3]
        assert len(sentences) >= 3, (number, text)  # the answer, then at least two more
        assert re.search(r"\]\(#[a-z0-9-]+\)", text), (number, "links to no table or figure")


def _numbers_of(value, out: list[float]) -> None:
    """Every number inside a metrics.json value (lists, dicts, [mean, low, high] rows)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        out.append(float(value))
    elif isinstance(value, str):
        for token in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", value):
            out.append(float(token))
    elif isinstance(value, dict):
        for v in value.values():
            _numbers_of(v, out)
    elif isinstance(value, list):
        for v in value:
            _numbers_of(v, out)
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            out.append(float(sum(value)))  # a count's total (samples drawn)
        out.append(float(len(value)))  # how many (classes, settings, pairs)


def _runs_numbers() -> list[float]:
    values: list[float] = []
    for path in RUNS.rglob("metrics.json"):
        _numbers_of(read_metrics(path.parent), values)
    for path in RUNS.rglob("history.csv"):
        for token in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", path.read_text()):
            values.append(float(token))
    # the report's own named thresholds (facts.py), and the count of a sweep's settings
    values += [facts.ACCURACY_BAR, facts.NEAR_BEST, facts.SEPARATES_KNN]
    values += [facts.SEPARATES_SILHOUETTE, len(list((RUNS / "optimizer_sweep").glob("*=*")))]
    return values


# Numbers that are definitions, not measurements: a 2-D code, a score's ends (1 perfect,
# 0.5 random), a 95% interval, the 5% level of a test
DEFINITIONS = {0.0, 0.5, 1.0, 2.0, 95.0, 0.95, 5.0, 0.05}


def _matches(token: str, values: list[float]) -> bool:
    """Does the printed number equal some value of the runs, rounded as printed?"""
    text = token.replace("−", "-").replace(",", "")
    percent = text.endswith("%")
    text = text.rstrip("%")
    shown = float(text)
    if shown in DEFINITIONS or (percent and shown / 100 in DEFINITIONS):
        return True
    if "e" in text:
        mantissa = text.split("e")[0]
        digits = len(mantissa.replace("-", "").replace(".", "").lstrip("0"))
        tolerance = abs(shown) * 0.5 * 10 ** (1 - digits)
    else:
        decimals = len(text.split(".")[1]) if "." in text else 0
        tolerance = 0.5 * 10**-decimals
        if decimals == 0 and abs(shown) >= 100:  # '3000', '9100': two significant digits
            tolerance = 0.5 * 10 ** (len(str(int(abs(shown)))) - 2)
    scale = 100 if percent else 1
    return any(
        math.isfinite(v) and abs(v * scale - shown) <= tolerance * (1 + 1e-9) for v in values
    )


def test_every_number_in_an_answer_is_in_the_runs(answers):
    values = _runs_numbers()
    for number, text in answers.items():
        prose = re.sub(r"\]\(#[^)]*\)", "]", text)  # link targets are anchors, not numbers
        prose = re.sub(r"\b\d-D\b", "", prose)  # '2-D code'
        prose = re.sub(r"\b\d\.\d\.\d\b", "", prose)  # a question's number
        tokens = re.findall(r"−?-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?%?", prose)
        unsourced = [t for t in tokens if not _matches(t, values)]
        assert not unsourced, (number, unsourced, text)


def test_a_typed_number_is_caught():
    # the check above can fail: a number the runs do not hold is reported
    assert not _matches("0.4242", _runs_numbers())
    assert _matches("81.4%", [0.8142])


def test_insights_cover_seeds_validation_search_and_test_power():
    text = " ".join(str(b.__dict__) for b in insights(Source(RUNS)))
    for topic in ("Seed intervals", "The validation split", "The search", "Test power"):
        assert topic in text


# -- the measurements ---------------------------------------------------------------------


def test_trustworthiness_and_rank_correlation_of_hand_built_embeddings():
    # 30 points along a line in 10-D, unevenly spaced (no ties between distances); their
    # positions on that line, drawn in 2-D, keep every neighbourhood and every distance's
    # order; the same points in a shuffled order keep none
    t = np.cumsum(np.random.default_rng(1).uniform(1, 2, 30))
    x = np.outer(t, np.linspace(1, 2, 10))
    kept = np.stack([t, np.zeros_like(t)], 1)
    out = neighbourhoods(x, kept, k=3)
    assert out["latent/trustworthiness"] == pytest.approx(1.0)
    assert out["latent/distance_rank_correlation"] == pytest.approx(1.0)
    shuffled = kept[np.random.default_rng(0).permutation(30)]
    worse = neighbourhoods(x, shuffled, k=3)
    assert worse["latent/trustworthiness"] < 0.7
    assert abs(worse["latent/distance_rank_correlation"]) < 0.3
    # one point moved into the middle: it gains neighbours it does not have in the input
    moved = kept.copy()
    moved[0] = [(t[15] + t[16]) / 2, 0.0]
    n, k = 30, 3
    from sklearn.manifold import trustworthiness

    assert neighbourhoods(x, moved, k)["latent/trustworthiness"] == pytest.approx(
        trustworthiness(x, moved, n_neighbors=k)
    )
    assert neighbourhoods(x, moved, k)["latent/trustworthiness"] < 1.0
    with pytest.raises(ValueError, match="k < N/2"):
        neighbourhoods(x, kept, k=n)


class GridClassifier(torch.nn.Module):
    """Ten classes at the points (i, 0), i = 0..9, of a 2-D 'image' space: confident near a
    class's point, unsure half-way between two."""

    def __init__(self):
        super().__init__()
        self.centres = torch.nn.Parameter(
            torch.stack([torch.arange(10.0) * 4, torch.zeros(10)], 1), requires_grad=False
        )

    def forward(self, x):
        return -((x[:, None, :] - self.centres[None]) ** 2).sum(-1)


def test_interpolants_split_between_and_within_classes_on_a_fabricated_grid():
    rng = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 10
    centres = torch.stack([y * 4.0, torch.zeros(200)], 1)
    x = centres + 0.2 * torch.randn(200, 2, generator=rng)  # digits near their class's point
    data = SimpleNamespace(x_test=x, y_test=y)
    identity = Coder(lambda v: v, lambda v: v)  # the code is the image
    lcfg = OmegaConf.create({"interpolation": {"steps": 5, "eval_pairs": 50}})
    out = interpolation_confidence(identity, data, lcfg, 64, 0, GridClassifier())
    # within a class the line stays near the class's point; between two, it crosses others'
    # points (confident) and the gaps half-way between points (about 0.5 at best)
    assert out["interpolation/confidence_within"] > 0.95
    assert out["interpolation/confidence_between"] < out["interpolation/confidence_within"] - 0.1
    assert out["interpolation/confidence_ends"] > 0.95


def test_random_codes_from_a_gaussian_fitted_to_the_codes():
    codes = np.stack([np.arange(10.0) * 4, np.zeros(10)], 1).repeat(20, 0)  # the grid's points
    identity = Coder(lambda v: v, lambda v: v)
    out = random_code_quality(identity, codes, 500, 0, GridClassifier(), 64)
    assert 0.5 < out["random_codes/confidence"] < 0.99  # a Gaussian fills the gaps too
    assert out["random_codes/classes"] == 10.0


def test_saturated_ink_counts_full_strokes_among_ink_pixels():
    images = torch.tensor([[0.0, 0.05, 0.5, 0.95], [1.0, 0.0, 0.0, 0.0]])
    assert saturated_ink(images) == pytest.approx(2 / 3)  # ink: 0.5, 0.95, 1.0
    assert math.isnan(saturated_ink(torch.zeros(2, 4)))


def test_gan_class_shares_over_epochs():
    from ucl.tasks.gan import EPOCH_CLASSES, classes_over_epochs

    shown = {}
    tracker = SimpleNamespace(figure=lambda name, fig, step: shown.setdefault(name, fig))
    y = torch.tensor([0, 1] * 50)
    ctx = SimpleNamespace(
        tracker=tracker, data=SimpleNamespace(num_classes=2, y_train=y, class_names=["a", "b"])
    )
    # the generator swaps its one class every epoch: it oscillates, never covering both
    history = [{"step": 1, "gan/loss_D": 0.5}]
    for epoch in range(1, 5):
        one = epoch % 2
        shares = {f"{EPOCH_CLASSES}0": 1.0 - one, f"{EPOCH_CLASSES}1": float(one)}
        history.append({"step": epoch, **shares, f"{EPOCH_CLASSES}epoch": epoch})
    out = classes_over_epochs(ctx, history, 64, 0, 4)
    assert out["epochs/change_mean"] == pytest.approx(1.0)
    assert out["epochs/classes_last"] == 1
    assert out["epochs/largest_share"] == 1.0 and out["epochs/largest_share_epoch"] == 1
    assert out["epochs/to_real_last"] == pytest.approx(0.5)
    assert 0 < out["epochs/noise"] < 0.2  # 64 draws of a fair coin: about 0.05
    assert "class_epochs" in shown


# -- words and numbers --------------------------------------------------------------------


def test_measures_in_words_and_numbers_rounded():
    assert measure("kl_hist_qp") == "histogram KL (GAN to real)"
    assert measure("unknown_measure") == "unknown_measure"
    assert sig(1140.3) == "1100" and sig(0.02345) == "0.023" and sig(float("inf")) == "∞"
    assert pm(0.98123, 0.0021, percent=True) == "98.1% ± 0.2"
    assert pm(0.98123, None, percent=True) == "98.1%"


@pytest.mark.parametrize(
    "chi2_p, change, to_real, classes_last, verdict",
    [
        (0.0, 0.0, 0.9, 1, "This is complete mode collapse"),
        (1e-4, 0.05, 0.2, 10, "specialises mildly and stays so"),
        (1e-4, 0.3, 0.2, 10, "oscillates between classes"),
        (0.5, 0.05, 0.1, 10, "No mode collapse shows"),
    ],
)
def test_gan_answer_tells_collapse_oscillation_and_preference_apart(
    tmp_path, chi2_p, change, to_real, classes_last, verdict
):
    import json

    from problem_set.report.questions import q422

    metrics = {
        "samples/class_counts": [100] * 10, "samples/chi2": 3.0, "samples/chi2_p": chi2_p,
        "real/chi2": 2.0, "epochs/samples": 64, "epochs/noise": 0.15,
        "epochs/change_mean": change, "epochs/to_real_last": to_real,
        "epochs/classes_last": classes_last, "epochs/largest_share": 0.3,
        "epochs/largest_share_class": "4", "epochs/largest_share_epoch": 7,
    }  # fmt: skip
    (tmp_path / "gan").mkdir()
    record = {"status": "completed", "task": "gan", "metrics": metrics}
    (tmp_path / "gan" / "metrics.json").write_text(json.dumps(record))
    assert verdict in q422(Source(tmp_path))
