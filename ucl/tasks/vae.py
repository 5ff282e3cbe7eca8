"""The variational autoencoder task: train on the negative ELBO, then the autoencoder's
latent figures and metrics (ucl/latent.py, ucl/plots/latent.py), the decoded 2-D manifold,
samples from the prior judged by a classifier, and -- given `autoencoder=<run dir>` -- the
same metrics of that autoencoder on the same test set, for comparison."""

from __future__ import annotations

import logging

import torch

from ucl.context import Context
from ucl.earlier_runs import load_autoencoder, load_classifier
from ucl.keys import TASKS
from ucl.latent import Coder, latent_metrics
from ucl.loop import chunks, mse_per_element, save_model
from ucl.models.vae import vae_loss_terms
from ucl.plots.latent import latent_figures, title_of
from ucl.plots.training import curves, rows_grid
from ucl.sample_quality import judge_with_real

log = logging.getLogger(__name__)


@TASKS.register("vae")
def vae(ctx: Context) -> dict:
    cfg, data = ctx.cfg, ctx.data
    m, t = cfg.model, cfg.task_settings  # the network; samples, judging, figures, links
    classifier = load_classifier(t.classifier, data, ctx.device)  # fails before training
    autoencoder = load_autoencoder(t.autoencoder, data, ctx.device)
    seed = int(cfg.seed)
    noise = torch.Generator(device=ctx.device).manual_seed(seed)  # the reparameterisation's eps
    model, opt, loop = ctx.model_and_loop(noise=noise)
    chunk, kl_weight, rec_kind = int(cfg.eval_batch_size), float(m.kl_weight), m.reconstruction
    x_train_eval, _ = ctx.train_eval()  # a fixed seeded subset, as in reconstruct

    def train_step(x, _y):  # x: (B, D)
        with ctx.autocast():  # precision=bf16: the products in bfloat16, the loss in fp32
            recon, mu, logvar = (t.float() for t in model(x, generator=noise))
            rec, kl = vae_loss_terms(recon, x, mu, logvar, rec_kind)
            loss = rec + kl_weight * kl  # = VAE_loss_function(recon, x, mu, logvar, kl_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"batch/loss": loss.detach(), "batch/recon": rec.detach(), "batch/kl": kl.detach()}

    def terms(split: str, x: torch.Tensor) -> dict:
        rec, kl, mse = elbo_terms(model, x, rec_kind, chunk, seed)
        return {f"{split}/loss": rec + kl_weight * kl, f"{split}/recon": rec,
                f"{split}/kl": kl, f"{split}/mse": mse}  # fmt: skip

    def evaluate(step):
        out = {}
        for split, x in (("train", x_train_eval), ("val", data.x_val), ("test", data.x_test)):
            if x is not None:  # no validation split when dataset.validation=0
                out.update(terms(split, x))
        return out

    loop.run(train_step, evaluate)

    # -- the end: curves, the saved model, the code space, samples ------------------------
    history, tracker, step = ctx.tracker.history, ctx.tracker, loop.step
    title = title_of(cfg, data, "negative ELBO per sample")
    fig = curves(history, ["train/loss", "test/loss"], title, "loss", train_label=ctx.train_label)
    tracker.figure("loss_curves", fig, step)
    title = title_of(cfg, data, "the two terms of the test loss")
    fig = curves(history, ["test/recon", "test/kl"], title, "per sample", log_y=True)
    tracker.figure("loss_terms", fig, step)
    save_model(ctx.run_dir, model, cfg, data)
    model.eval()
    coder = Coder.of(model)
    latent_figures(ctx, coder, step)
    if model.latent_dim == 2 and data.image_shape:
        tracker.image("manifold", manifold(model, int(t.manifold_size), data.image_shape), step)
    else:
        log.info("no manifold figure: it needs a 2-D code and image data")

    final = history[-1]
    metrics = {
        "test/mse": final["test/mse"],
        "test/loss": final["test/loss"],
        "test/recon": final["test/recon"],
        "test/kl": final["test/kl"],
        "train/mse": final["train/mse"],  # on the subset metrics.json's train_eval names
        "train/loss": final["train/loss"],
        **{k: final[k] for k in ("val/loss", "val/mse") if k in final},
        "steps": step,
        **latent_metrics(coder, data, t.latent, chunk, seed, classifier),
    }
    samples = prior_samples(model, int(t.samples), seed, ctx.device)  # (S, D)
    if data.image_shape:
        shown = samples[:100].reshape(10, 10, -1)
        tracker.image("samples", rows_grid(shown, data.image_shape), step)
    if classifier is not None:
        # prior samples and real test digits disjoint from the Frechet reference
        judged, _, _ = judge_with_real(
            classifier, samples, data, int(t.judge_reference), int(t.judge_real)
        )
        metrics.update(judged)
    if autoencoder is not None:
        metrics.update(compare(autoencoder, data, cfg, chunk, seed, classifier))
    return metrics


def elbo_terms(model, x: torch.Tensor, rec_kind: str, chunk: int, seed: int):
    """(reconstruction, KL, mse) over a split: the two ELBO terms per sample, one posterior
    sample each, and the mean squared error per pixel of decoding the posterior mean (the
    autoencoder's measure), from one encoder pass. The noise comes from its own generator
    seeded afresh, so evaluations do not disturb training and two evaluations agree."""
    noise = torch.Generator(device=x.device).manual_seed(seed)
    rec_sum = kl_sum = sq_sum = 0.0
    for xb in chunks(x, chunk):
        mu, logvar = model.encode_distribution(xb)
        recon = model.decode(model.reparameterize(mu, logvar, noise))
        rec, kl = vae_loss_terms(recon, xb, mu, logvar, rec_kind)
        rec_sum += rec.item() * len(xb)
        kl_sum += kl.item() * len(xb)
        sq_sum += torch.sum((model.decode(mu) - xb.flatten(1)) ** 2).item()
    return rec_sum / len(x), kl_sum / len(x), sq_sum / x[0].numel() / len(x)


def manifold(model, n: int, image_shape) -> torch.Tensor:
    """The decoded 2-D latent space: an n x n grid of evenly spaced points of the unit
    square pushed through the inverse normal CDF, so equal areas of the grid hold equal
    prior mass (Kingma & Welling 2013, figure 4). z_1 grows to the right, z_2 upwards."""
    u = (torch.arange(n, dtype=torch.float32) + 0.5) / n  # cell midpoints: no +-inf at 0, 1
    g = torch.distributions.Normal(0.0, 1.0).icdf(u)
    z2, z1 = torch.meshgrid(g.flip(0), g, indexing="ij")  # rows: z_2 from high to low
    z = torch.stack([z1, z2], dim=-1).reshape(n * n, 2)
    device = next(model.parameters()).device
    with torch.no_grad():
        images = model.decode(z.to(device))
    return rows_grid(images.reshape(n, n, -1), image_shape)


def prior_samples(model, n: int, seed: int, device) -> torch.Tensor:
    """n decoded codes z ~ N(0, I), (n, D), from a generator seeded by `seed`."""
    g = torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=g, device=device)
    with torch.no_grad():
        return model.decode(z)


def compare(autoencoder, data, cfg, chunk: int, seed: int, classifier) -> dict:
    """The autoencoder's scalar metrics on this run's test set, under `autoencoder/...`
    (interpolation pairs come from the same seed, so both are judged on the same digits)."""
    ours = {"test/mse": mse_per_element(autoencoder, data.x_test, chunk)}
    lcfg = cfg.task_settings.latent
    ours.update(latent_metrics(Coder.of(autoencoder), data, lcfg, chunk, seed, classifier))
    return {f"autoencoder/{k}": v for k, v in ours.items() if isinstance(v, float)}
