"""The VAE: shapes, the reparameterisation, VAE_loss_function against a hand computation,
the closed-form KL against a Monte Carlo estimate, the manifold grid, and a short real run
compared with an autoencoder."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from conftest import FIXTURE_MNIST
from noise_baseline import noise_judged

from ucl.config import compose, run_config
from ucl.models.vae import VAE, VAE_loss_function, kl_to_standard_normal, vae_loss_terms
from ucl.tasks.vae import manifold

QUICK = ["model.widths=[64,32]", "steps=120", "eval_every=40", "threads=1", "progress=false"]


def test_shapes_and_encode_is_the_posterior_mean():
    torch.manual_seed(0)
    model = VAE(784, [32, 16], latent_dim=3)
    x = torch.rand(5, 784)
    recon, mu, logvar = model(x)
    assert recon.shape == (5, 784) and mu.shape == logvar.shape == (5, 3)
    assert 0 <= recon.min() and recon.max() <= 1
    torch.testing.assert_close(model.encode(x), mu)
    assert model.decode(mu).shape == (5, 784)


def test_reparameterisation_is_seeded_and_collapses_with_zero_variance():
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.zeros(1, 2)
    a = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(7))
    b = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, mu)
    tiny = VAE.reparameterize(mu, torch.full((1, 2), -60.0), torch.Generator().manual_seed(7))
    torch.testing.assert_close(tiny, mu)


def test_reparameterisation_has_the_posterior_moments():
    mu, logvar = torch.tensor([0.5, -1.0]), torch.tensor([0.0, math.log(4.0)])
    z = VAE.reparameterize(mu.expand(200_000, 2), logvar.expand(200_000, 2),
                           torch.Generator().manual_seed(0))  # fmt: skip
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 2.0]), atol=0.02, rtol=0)


def test_loss_matches_a_hand_computation():
    x = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]])
    recon = torch.tensor([[0.1, 0.7, 0.5], [0.6, 0.2, 0.0]])
    mu = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]])
    # squared errors summed per sample: (0.01 + 0.09 + 0) and (0.16 + 0.04 + 0) -> mean 0.15
    rec = (0.10 + 0.20) / 2
    # KL per latent dim: (mu^2 + s^2 - 1 - log s^2) / 2
    kl0 = (0 + 1 - 1 - 0) / 2 + (1 + 1 - 1 - 0) / 2  # 0.5
    kl1 = (4 + 2 - 1 - math.log(2)) / 2 + 0  # 2.5 - log(2)/2
    kl = (kl0 + kl1) / 2
    assert VAE_loss_function(recon, x, mu, logvar).item() == pytest.approx(rec + kl, rel=1e-6)
    weighted = VAE_loss_function(recon, x, mu, logvar, kl_weight=0.25).item()
    assert weighted == pytest.approx(rec + 0.25 * kl, rel=1e-6)
    terms = vae_loss_terms(recon, x, mu, logvar)
    assert [t.item() for t in terms] == pytest.approx([rec, kl], rel=1e-6)


def test_bce_option_and_unknown_reconstruction():
    x = torch.tensor([[1.0, 0.0]])
    recon = torch.tensor([[0.8, 0.3]])
    zeros = torch.zeros(1, 2)
    expected = -math.log(0.8) - math.log(0.7)
    rec, kl = vae_loss_terms(recon, x, zeros, zeros, reconstruction="bce")
    assert rec.item() == pytest.approx(expected, rel=1e-6) and kl.item() == 0
    with pytest.raises(ValueError, match=r"use one of \('mse', 'bce'\)"):
        vae_loss_terms(recon, x, zeros, zeros, reconstruction="l1")


def test_closed_form_kl_agrees_with_a_monte_carlo_estimate():
    mu = torch.tensor([[0.3, -1.2, 2.0]])
    logvar = torch.tensor([[0.5, -1.0, 0.1]])
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(0.0, 1.0)
    z = q.sample(torch.Size([400_000]))
    log_ratio = (q.log_prob(z) - p.log_prob(z)).sum(-1).flatten()  # KL = E_q[log q - log p]
    estimate, stderr = log_ratio.mean().item(), log_ratio.std().item() / math.sqrt(len(log_ratio))
    closed = kl_to_standard_normal(mu, logvar).item()
    assert abs(estimate - closed) < 4 * stderr
    assert kl_to_standard_normal(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0  # q = p


def test_manifold_grid_follows_the_inverse_normal_cdf():
    class Probe(VAE):  # decodes z into a 1x2 "image": sigmoid of its own coordinates
        def decode(self, z):
            return torch.sigmoid(z)

    grid = manifold(Probe(4, [3], latent_dim=2), 4, image_shape=(1, 1, 2))
    # make_grid: 3 channels, rows of 4 cells of 1x2 pixels with 2-pixel padding
    assert grid.shape == (3, 4 * 1 + 5 * 2, 4 * 2 + 5 * 2)
    u = (torch.arange(4) + 0.5) / 4  # cell midpoints of the unit square
    g = torch.sigmoid(torch.distributions.Normal(0.0, 1.0).icdf(u))
    cells = grid[0, 2::3, :][:4, 2::4][:, :4]  # top-left pixel of each cell: z_1
    torch.testing.assert_close(cells, g.expand(4, 4))  # z_1 grows to the right
    z2 = grid[0, 2::3, 3::4][:4, :4]  # right pixel: z_2, highest in the top row
    torch.testing.assert_close(z2, g.flip(0)[:, None].expand(4, 4))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """A classifier, an autoencoder and a VAE trained briefly on the fixture."""
    root = tmp_path_factory.mktemp("vae")
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={root / 'data'}"]
    out = {}
    out["clf"] = run_config(["experiment=logreg", "epochs=2", "threads=1", *data], root / "clf")
    out["ae"] = run_config(["experiment=autoencoder_mnist", *QUICK, *data], root / "ae")
    links = [f"classifier={root / 'clf'}", f"autoencoder={root / 'ae'}"]
    out["vae"] = run_config(["experiment=vae", *QUICK, *data, *links], root / "vae")
    return {k: (root / k, v) for k, v in out.items()}


@pytest.mark.slow  # trains on the fixture
def test_short_vae_run_reduces_the_test_loss_and_logs_both_terms(runs):
    run_dir, record = runs["vae"]
    assert record["status"] == "completed" and record["task"] == "vae"
    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["test/loss"]) < 0.9 * float(rows[0]["test/loss"])
    kl_weight = compose(["experiment=vae"]).model.kl_weight  # the preset's
    for row in rows:  # the test loss is split into its two terms at every evaluation
        loss, rec, kl = (float(row[f"test/{k}"]) for k in ("loss", "recon", "kl"))
        assert loss == pytest.approx(rec + kl_weight * kl) and kl > 0
    m = record["metrics"]
    assert 0 < m["test/mse"] < 0.2 and 0 <= m["latent/knn_accuracy"] <= 1


@pytest.mark.slow  # trains on the fixture
def test_vae_run_draws_every_figure(runs):
    run_dir, _ = runs["vae"]
    figures = {p.stem for p in (run_dir / "figures").glob("*.png")}
    assert figures == {
        "loss_curves", "loss_terms", "embedding", "reconstructions", "interpolations",
        "manifold", "samples",
    }  # fmt: skip


@pytest.mark.slow  # trains on the fixture
def test_vae_run_compares_with_the_autoencoder_on_the_same_test_set(runs):
    ae, vae = runs["ae"][1]["metrics"], runs["vae"][1]["metrics"]
    # the VAE run recomputes the autoencoder's numbers: they agree with the AE run's own
    assert vae["autoencoder/test/mse"] == pytest.approx(ae["test/mse"], rel=1e-5)
    assert vae["autoencoder/latent/knn_accuracy"] == pytest.approx(ae["latent/knn_accuracy"])
    for key in ("interpolation/confidence", "autoencoder/interpolation/confidence"):
        assert 0.1 <= vae[key] <= 1
    for prefix in ("", "autoencoder/"):  # as many interpolants between classes as within
        whole = vae[f"{prefix}interpolation/confidence"]
        between = vae[f"{prefix}interpolation/confidence_between"]
        within = vae[f"{prefix}interpolation/confidence_within"]
        assert whole == pytest.approx((between + within) / 2, rel=1e-5)


@pytest.mark.slow  # trains on the fixture
def test_vae_samples_and_real_digits_are_judged_by_the_classifier(runs):
    record = runs["vae"][1]
    m = record["metrics"]
    assert sum(m["samples/class_counts"]) == 1000
    # the fixture's 500 test digits: 250 as the Frechet reference, the other 250 judged
    assert sum(m["real/class_counts"]) == record["data"]["test"] - 250
    # the judge tells digits from noise (real: several classes, confidently; uniform noise:
    # one or two, score near 1), and 120 steps of a VAE are still far from real digits
    noise = noise_judged(runs["clf"][0])
    assert m["real/score"] > 2 * noise["score"], (m["real/score"], noise)
    assert m["real/confidence"] > noise["confidence"], (m["real/confidence"], noise)
    assert m["samples/score"] < m["real/score"]
    # real digits against other real digits: near, but not 0 as a set against itself is
    assert 0 < m["real/frechet"] < m["samples/frechet"]


@pytest.mark.slow  # trains on the fixture
def test_a_larger_latent_is_drawn_through_pca_and_has_no_manifold(tmp_path):
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'data'}"]
    quick = [*QUICK, "steps=40", "model.latent_dim=5", "task_settings.samples=100"]
    record = run_config(["experiment=vae", *quick, *data], tmp_path / "run")
    assert record["status"] == "completed"
    figures = {p.stem for p in (tmp_path / "run" / "figures").glob("*.png")}
    assert {"embedding", "interpolations", "samples"} <= figures and "manifold" not in figures
    tensors = (tmp_path / "run" / "00040" / "latent" / "tensors.tsv").read_text().splitlines()
    assert len(tensors[0].split("\t")) == 5  # the projector gets the full 5-D codes
