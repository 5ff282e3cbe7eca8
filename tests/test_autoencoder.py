"""The autoencoder: the problem set's architecture, encode/decode, and short real runs of
the reconstruct task on the MNIST fixture and on the synthetic retina (metrics, figures,
TensorBoard images and projector, saved model)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import FIXTURE_MNIST, compose
from torch import nn

from ucl.config import run_config
from ucl.earlier_runs import load_model
from ucl.errors import ConfigError
from ucl.keys import MODELS
from ucl.models.autoencoder import Autoencoder
from ucl.plots.latent import title_of
from ucl.schema import load_all

# small widths and few steps: these runs test the pipeline, not the architecture
QUICK = ["model.widths=[64,32]", "steps=120", "eval_every=40", "threads=1", "progress=false"]


def image_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    acc.Reload()
    return set(acc.Tags()["images"])


def test_problem_set_architecture():
    model = Autoencoder(784, [1000, 500, 250], 2, act="tanh", latent_act="linear")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    widths = [linears[0].in_features] + [m.out_features for m in linears]
    assert widths == [784, 1000, 500, 250, 2, 250, 500, 1000, 784]
    # tanh between layers, nothing on the code, a sigmoid on the output
    assert [type(m) for m in model.encoder] == [nn.Linear, nn.Tanh] * 3 + [nn.Linear]
    assert [type(m) for m in model.decoder] == [nn.Linear, nn.Tanh] * 3 + [nn.Linear, nn.Sigmoid]


def test_encode_decode_shapes_and_ranges():
    torch.manual_seed(0)
    model = Autoencoder(784, [32, 16], latent_dim=3)
    x = torch.rand(5, 1, 28, 28)  # images are flattened
    z = model.encode(x)
    assert z.shape == (5, 3)
    out = model.decode(z)
    assert out.shape == (5, 784) and 0 <= out.min() and out.max() <= 1
    torch.testing.assert_close(model(x), out)
    linear = Autoencoder(20, [8], latent_dim=2, output_act="linear")
    with torch.no_grad():
        linear.decoder[-1].bias.fill_(-5.0)  # a linear output can leave [0, 1]
    assert linear(torch.rand(4, 20)).max() < 0


def test_bad_widths_say_what_to_give():
    with pytest.raises(ValueError, match=r"model.widths=\[1000,500,250\]"):
        Autoencoder(784, [100, 0], 2)


def test_registered_builder_takes_the_input_width_from_the_data():
    load_all()
    cfg = compose(["experiment=autoencoder_retina"])
    model = MODELS.create("autoencoder", cfg, SimpleNamespace(in_features=37))
    assert model.encoder[0].in_features == 37 and model.decoder[-1].out_features == 37
    assert not isinstance(model.decoder[-1], nn.Sigmoid)  # the retina preset: linear output
    assert isinstance(model.encoder[1], nn.Tanh)


def test_titles_say_synthetic():
    cfg = SimpleNamespace(model=SimpleNamespace(name="autoencoder"))
    data = SimpleNamespace(name="retina_synthetic", synthetic=True)
    assert "(synthetic)" in title_of(cfg, data, "embedding")
    assert "synthetic" not in title_of(cfg, SimpleNamespace(name="mnist"), "embedding")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    """A logistic regression trained briefly on the fixture, to judge interpolants."""
    root = tmp_path_factory.mktemp("clf")
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={root / 'data'}"]
    run_config(["experiment=logreg", "epochs=2", "threads=1", *data], root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory, classifier_dir) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ae")
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={root / 'data'}"]
    overrides = ["experiment=autoencoder_mnist", *QUICK, *data, f"classifier={classifier_dir}"]
    return root / "run", run_config(overrides, root / "run")


@pytest.mark.slow  # trains on the fixture
def test_short_mnist_run_reduces_the_test_loss(mnist_run):
    run_dir, record = mnist_run
    assert record["status"] == "completed" and record["task"] == "reconstruct"
    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    first, last = rows[0], rows[-1]
    assert float(last["test/loss"]) < 0.9 * float(first["test/loss"])
    assert record["metrics"]["test/mse"] == pytest.approx(float(last["test/loss"]))


@pytest.mark.slow  # trains on the fixture
def test_mnist_run_records_latent_metrics(mnist_run):
    m = mnist_run[1]["metrics"]
    assert 0 <= m["latent/knn_accuracy"] <= 1 and -1 <= m["latent/silhouette"] <= 1
    assert set(m["latent/knn_accuracy_per_class"]) == {str(d) for d in range(10)}
    assert len(m["latent/closest_pairs"]) == 5
    distances = [p["distance"] for p in m["latent/closest_pairs"]]
    assert distances == sorted(distances)
    for key in ("", "_between", "_within", "_ends"):
        assert 0.1 <= m[f"interpolation/confidence{key}"] <= 1  # 10 classes: >= 1/10
    # the same number of interpolants between and within classes: the whole is their mean
    both = (m["interpolation/confidence_between"] + m["interpolation/confidence_within"]) / 2
    assert m["interpolation/confidence"] == pytest.approx(both, rel=1e-5)


@pytest.mark.slow  # trains on the fixture
def test_mnist_run_writes_every_figure_and_the_projector(mnist_run):
    run_dir, record = mnist_run
    names = {"loss_curves", "embedding", "reconstructions", "interpolations"}
    assert {p.stem for p in (run_dir / "figures").glob("*.png")} == names
    assert names <= image_tags(run_dir)
    projector = (run_dir / "projector_config.pbtxt").read_text()
    assert "metadata.tsv" in projector and "sprite.png" in projector  # labels and thumbnails
    step_dir = run_dir / "00120" / "latent"
    labels = (step_dir / "metadata.tsv").read_text().split()
    assert len(labels) == 500 and set(labels) == {
        str(d) for d in range(10)
    }  # the fixture's test set
    assert len(record["interpolation_rows"]) == 6


@pytest.mark.slow  # trains on the fixture
def test_a_pairs_class_missing_from_the_points_shown_is_drawn_from_the_whole_test_set(tmp_path):
    # the fixture's first 20 test digits hold one 2: the pair [2, 2] needs two
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'data'}"]
    shown = ["task_settings.latent.points=20", "steps=2", "threads=1", "progress=false"]
    record = run_config(["experiment=autoencoder_mnist", *shown, *data], tmp_path / "run")
    assert record["status"] == "completed", record.get("reason")
    assert record["interpolation_rows"] == ["4-9", "3-5", "1-7", "0-6", "7-7", "2-2"]
    assert (tmp_path / "run" / "figures" / "interpolations.png").is_file()


@pytest.mark.slow  # trains on the fixture
def test_no_pairs_draws_no_strip_and_completes(tmp_path):
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'data'}"]
    none = ["task_settings.latent.interpolation.pairs=[]", "steps=2", "threads=1"]
    record = run_config(["experiment=autoencoder_mnist", *none, *data], tmp_path / "run")
    assert record["status"] == "completed", record.get("reason")
    assert record["interpolation_rows"] == []
    figures = {p.stem for p in (tmp_path / "run" / "figures").glob("*.png")}
    assert figures == {"loss_curves", "embedding", "reconstructions"}


def test_a_pair_the_test_split_cannot_draw_is_refused_before_the_first_write(tmp_path):
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'data'}"]
    one = ["dataset.test_subset=1", "steps=2", "threads=1"]  # MNIST's first test digit: a 7
    with pytest.raises(ConfigError) as refused:
        run_config(["experiment=autoencoder_mnist", *one, *data], tmp_path / "run")
    said = str(refused.value)
    assert said.startswith("task_settings.latent.interpolation.pairs: the pair [4, 9] needs a ")
    assert "dataset.test_subset=null" in said and "\n" not in said
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.parametrize(
    "override,said",
    [
        ("task_settings.latent.points=10", "task_settings.latent.points=10: the 10 test codes "
         "shown are too few for"),
        ("dataset.test_subset=8", "task_settings.latent.points=1000: the 8 test codes shown "
         "are too few for"),
    ],
)  # fmt: skip
def test_too_few_codes_for_the_neighbourhood_measures_are_refused_first(tmp_path, override, said):
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'data'}"]
    few = [override, "task_settings.latent.interpolation.pairs=[]", "steps=2", "threads=1"]
    with pytest.raises(ConfigError, match=re.escape(said)) as refused:
        run_config(["experiment=autoencoder_mnist", *few, *data], tmp_path / "run")
    assert "knn_k=5" in str(refused.value) and "; e.g. task_settings.latent.points=" in str(
        refused.value
    )
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.slow  # trains on the fixture
def test_saved_model_rebuilds_and_encodes(mnist_run):
    model, saved = load_model(mnist_run[0])
    assert isinstance(model, Autoencoder) and saved["data"]["in_features"] == 784
    assert model.encode(torch.rand(3, 784)).shape == (3, 2)


@pytest.mark.slow  # trains on the fixture
def test_retina_synthetic_end_to_end(tmp_path):
    small = [
        f"dataset.root={tmp_path / 'data'}", "dataset.cells=800", "dataset.genes=400",
        "dataset.pca_dim=20",
    ]  # fmt: skip
    overrides = ["experiment=autoencoder_retina", "dataset=retina_synthetic", *QUICK, *small]
    record = run_config(overrides, tmp_path / "run")
    assert record["status"] == "completed"
    assert record["data"]["synthetic"] is True and record["data"]["name"] == "retina_synthetic"
    m = record["metrics"]
    assert "RBC (Rod Bipolar cell)" in m["latent/knn_accuracy_per_class"]
    assert len(m["latent/silhouette_per_class"]) == 15
    assert m["latent/knn_accuracy"] > 0.3  # 15 classes, RBC 40%: chance is far lower than this
    figures = {p.stem for p in (tmp_path / "run" / "figures").glob("*.png")}
    assert figures == {"loss_curves", "embedding", "reconstructions", "interpolations"}
    # the generated files are kept under the data root and reused by the next run
    generated = list((tmp_path / "data" / "retina_synthetic").iterdir())
    assert [p.name for p in generated] == ["cells800_genes400_seed0"]
