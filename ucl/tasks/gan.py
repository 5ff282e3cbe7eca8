"""GAN training on images: alternate (1) update D and (2) update G on every batch, log both
losses and the discriminator's outputs against the iteration, save a grid from fixed noise
after every epoch, and at the end draw samples and judge them with a trained classifier.

With `model.average_decay` the grids, the samples and model.pt come from a running average
of the generator's weights (ucl.models.gan.averaged) instead of its last weights.

Run dir additions: figures/samples_epoch_XXX.png (fixed noise, one per epoch; TensorBoard
image `samples/fixed_noise`), samples.pt ({"samples": (N, D) in [0, 1], "image_shape"}),
figures/samples.png (all N), figures/class_histogram.png, loss and D-output curves,
with a classifier also the classes of the fixed-noise samples after every epoch (history.csv
and TensorBoard `epoch_classes/<class>`, figures/class_epochs.png, metrics `epochs/...`),
model.pt (both networks; `ucl.earlier_runs.load_model(run_dir)` gives a GAN whose .sample(n)
draws digits).
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import torch

from ucl.context import Context
from ucl.earlier_runs import load_classifier
from ucl.errors import ConfigError
from ucl.keys import TASKS
from ucl.loop import SAMPLES, save_model, save_pt
from ucl.models.gan import GAN, averaged, train_discriminator, train_generator
from ucl.plots.training import class_histogram, class_shares_over_epochs, curves
from ucl.sample_quality import class_frequencies, classifier_features, judge_with_real

log = logging.getLogger(__name__)


@TASKS.register("gan")
def gan(ctx: Context) -> dict:
    cfg, data, device = ctx.cfg, ctx.data, ctx.device
    m, t = cfg.model, cfg.task_settings  # the networks; the grids, samples and judging
    if data.image_shape is None:
        raise ConfigError(
            f"the gan task draws images, but dataset {data.name!r} holds feature vectors; "
            f"use an image dataset, e.g. dataset=mnist"
        )
    classifier = load_classifier(t.classifier, data, device)  # fails before training
    if classifier is None:
        log.warning(
            "classifier=null: the samples will not be judged; give classifier=runs/<a "
            "classification run> (e.g. one of python train.py model=mlp epochs=10)"
        )
    seed = int(cfg.seed)
    decay = m.get("average_decay")  # in [0, 1) or None: ucl.schema
    model: GAN = ctx.build_model()
    G, D = model.generator, model.discriminator
    # the generator that draws the grids and the samples: a running average of G, or G
    G_avg = averaged(G, float(decay)) if decay is not None else G
    noise = stream(seed, "noise")  # every training z; in the checkpoint, so resume is exact
    modules = {"generator": G, "discriminator": D}
    if G_avg is not G:
        modules["generator_average"] = G_avg  # in the checkpoint too
    optimizers, loop = ctx.training(modules, {"D": D, "G": G}, {"noise": noise})
    opt_d, opt_g = optimizers["D"], optimizers["G"]
    # fixed noise: the per-epoch grids show the same z, so they show G changing
    z_fixed = torch.randn(int(t.grid_samples), G.latent_dim, generator=stream(seed, "fixed"))
    z_fixed = z_fixed.to(device)  # (n_grid, latent_dim)
    x_held_out = data.x_test[: int(t.judge_reference)]  # real digits D never trains on

    def train_step(x, _y):  # x: (B, 784) real images in [0, 1]
        z = torch.randn(len(x), G.latent_dim, generator=noise).to(device)  # (B, latent_dim)
        # one autocast context per pass (precision=bf16): D's weights change in between
        with ctx.autocast():
            fake = G(z)  # (B, 784); one pass of G serves both updates
        # (1) update D: raise log D(x) + log(1 - D(G(z))); fake detached, G untouched
        with ctx.autocast():
            d = train_discriminator(D, opt_d, x, fake.detach())
        # (2) update G: raise log D(G(z)) as judged by the D just updated
        with ctx.autocast():
            g = train_generator(D, opt_g, fake)
        if G_avg is not G:
            G_avg.update_parameters(G)
        return {
            "gan/loss_D": d["loss"],
            "gan/loss_G": g["loss"],
            "gan/D(x)": d["D(x)"],
            "gan/D(G(z))": d["D(G(z))"],
        }

    def evaluate(step):  # D in eval mode (no dropout), under no_grad
        return {
            "test/D(x)": torch.sigmoid(D(x_held_out)).mean().item(),
            "test/D(G(z))": torch.sigmoid(D(G_avg(z_fixed))).mean().item(),
        }

    def on_epoch_end(epoch, step):
        G_avg.eval()  # batch norm, if any, from its running statistics: they stay untouched
        with torch.no_grad():
            drawn = G_avg(z_fixed)
            grid = image_grid(drawn, data.image_shape, int(t.grid_nrow))
            if classifier is not None:  # which classes G draws now: a row of history.csv
                labels = classifier(drawn).argmax(1)
                shares = class_frequencies(labels, data.num_classes).tolist()
                ctx.tracker.log(step, {f"{EPOCH_CLASSES}{c}": v for c, v in enumerate(shares)}
                                | {f"{EPOCH_CLASSES}epoch": epoch})  # fmt: skip
        G_avg.train()
        ctx.tracker.image(f"samples_epoch_{epoch:03d}", grid, step, tag="samples/fixed_noise")

    loop.run(train_step, evaluate, on_epoch_end=on_epoch_end)

    # -- the end: curves, the samples, the saved model, the classifier's judgement ------
    history, tracker = ctx.tracker.history, ctx.tracker
    title = f"GAN on {data.name}"
    tracker.figure("loss_curves", curves(history, ["gan/loss_D", "gan/loss_G"], title, "loss"),
                   loop.step)  # fmt: skip
    tracker.figure(
        "discriminator_curves",
        curves(history, ["gan/D(x)", "gan/D(G(z))", "test/D(x)", "test/D(G(z))"], title,
               "mean D output"),
        loop.step,
    )  # fmt: skip
    if G_avg is not G:  # model.pt and the samples: the averaged generator
        G.load_state_dict(G_avg.module.state_dict())
    G.eval()
    with torch.no_grad():
        samples = G.sample(int(t.num_samples), stream(seed, "samples")).cpu()  # (N, 784)
    save_pt(
        ctx.run_dir / SAMPLES,
        {"samples": samples, "image_shape": list(data.image_shape)},
    )
    tracker.image("samples", image_grid(samples, data.image_shape, int(t.samples_nrow)), loop.step)
    save_model(ctx.run_dir, model, cfg, data)

    final = [row for row in history if "gan/loss_D" in row][-1]  # not an epoch_classes row
    metrics = {k: final[k] for k in ("gan/loss_D", "gan/loss_G", "gan/D(x)", "gan/D(G(z))")}
    metrics["steps"] = loop.step
    if classifier is not None:
        metrics.update(judge(ctx, classifier, samples, loop.step))
        metrics.update(classes_over_epochs(ctx, history, len(z_fixed), seed, loop.step))
    return metrics


EPOCH_CLASSES = "epoch_classes/"  # history.csv columns: class shares of the fixed-noise grid
NOISE_DRAWS = 2000  # simulated draws of real digits that give the sampling-noise reference


def classes_over_epochs(ctx: Context, history: list[dict], n: int, seed: int, step: int) -> dict:
    """The classes of the fixed-noise samples after every epoch: the figure, and metrics
    epochs/... that say whether G specialises, oscillates or covers the classes:
    classes_last (classes drawn after the last epoch), largest_share (the largest share one
    class ever took) and largest_share_epoch, change_mean (mean total-variation distance
    between consecutive epochs' shares: how much G's choice of classes moves), to_real_last
    (that distance from the training set's shares after the last epoch), and noise (that
    distance between the training set's shares and n real digits drawn at random: what a
    perfect generator scores from the grid's size alone)."""
    data = ctx.data
    rows = [r for r in history if f"{EPOCH_CLASSES}0" in r]
    if not rows:
        return {}
    k = data.num_classes
    shares = np.array([[r[f"{EPOCH_CLASSES}{c}"] for c in range(k)] for r in rows])
    epochs = [int(r[f"{EPOCH_CLASSES}epoch"]) for r in rows]
    real = class_frequencies(data.y_train, k).numpy()
    rng = np.random.default_rng(seed)
    noise = np.abs(rng.multinomial(n, real, size=NOISE_DRAWS) / n - real).sum(1) / 2
    tv_steps = np.abs(np.diff(shares, axis=0)).sum(1) / 2
    fig = class_shares_over_epochs(
        epochs, shares, real.tolist(), list(data.class_names),
        f"classes of {n} samples from fixed noise, after each epoch",
    )  # fmt: skip
    ctx.tracker.figure("class_epochs", fig, step)
    largest = np.unravel_index(shares.argmax(), shares.shape)
    return {
        "epochs/classes_last": int((shares[-1] > 0).sum()),
        "epochs/largest_share": float(shares.max()),
        "epochs/largest_share_epoch": epochs[largest[0]],
        "epochs/largest_share_class": str(data.class_names[largest[1]]),
        "epochs/change_mean": float(tv_steps.mean()) if len(tv_steps) else float("nan"),
        "epochs/to_real_last": float(np.abs(shares[-1] - real).sum() / 2),
        "epochs/noise": float(noise.mean()),
        "epochs/samples": n,
    }


def judge(ctx: Context, classifier, samples: torch.Tensor, step: int) -> dict:
    """The classifier's verdict on the samples and, for comparison, on real test digits:
    `samples/...` and `real/...`, both against the same reference set of real digits."""
    data, t = ctx.data, ctx.cfg.task_settings
    out, n_ref, n_real = judge_with_real(
        classifier, samples, data, int(t.judge_reference), int(t.judge_real)
    )
    freq = class_frequencies(data.y_train, data.num_classes)  # for the histogram
    with torch.no_grad():  # the reference set starts at the first test digit
        _, kind = classifier_features(classifier, data.x_test[:2])
    ctx.record["judge"] = {
        "classifier": str(t.classifier),
        "features": kind,  # what the Frechet distance compares: "hidden" or "logits"
        "samples": len(samples),
        "reference": n_ref,
        "real": n_real,
    }
    fig = class_histogram(
        {"GAN samples": out["samples/class_counts"], "real test digits": out["real/class_counts"]},
        freq.tolist(),
        data.class_names,
        f"classes of {len(samples)} GAN samples (classifier: {t.classifier})",
    )
    ctx.tracker.figure("class_histogram", fig, step)
    log.info(
        "samples: classes %s, score %.3f (real %.3f), frechet %.3f (real %.3f), confidence %.3f",
        out["samples/class_counts"], out["samples/score"], out["real/score"],
        out["samples/frechet"], out["real/frechet"], out["samples/confidence"],
    )  # fmt: skip
    return out


def stream(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one purpose: independent streams from one seed (numpy's
    SeedSequence mixes the seed with the purpose), so adding a draw for one purpose
    never shifts another's."""
    key = zlib.crc32(purpose.encode())
    state = np.random.SeedSequence(seed, spawn_key=(key,)).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


def image_grid(x: torch.Tensor, image_shape, nrow: int) -> torch.Tensor:
    """Flat images (N, D) in [0, 1] -> one (C, H', W') grid image, `nrow` per row."""
    from torchvision.utils import make_grid  # here: importing torchvision costs seconds

    return make_grid(x.detach().cpu().view(-1, *image_shape), nrow=nrow, padding=2, pad_value=0.5)
