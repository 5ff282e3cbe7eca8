"""What bounds the reproduction's two big parts, timed in one process at the presets' shapes:

- the GAN's step (conf/model/gan.yaml, conf/experiment/gan.yaml, fp32) against the matrix
  products it must do. Their work is counted from the layer widths: G's forward, D's
  forward and backward on the real and generated batch, then D's forward again and the
  backward through D into G. A bare product of G's widest layer gives this machine's
  product rate; at that rate the products alone take a time no change to the rest of the
  step can go below.
- a table run's step (experiment=optimizer_sweep with Adam: 784-256-10, batch 128) through
  ucl's run against the same network trained by a bare torch loop.

    python scripts/bench.py --only floors
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from ucl.config import CONF_DIR, run_config
from ucl.context import build_optimizer
from ucl.models.gan import averaged, build_gan, train_discriminator, train_generator

STEPS = 60  # steps per timing
TRAIN_DIGITS = 60_000  # the GAN trains on the whole MNIST training split
TABLE_RUN = ["experiment=optimizer_sweep", "optimizer=adam", "lr=0.01", "seed=0"]
TABLE_EPOCHS = 2
NO_EVAL = ["eval_every=1000000", "checkpoint_every=0", "skip_completed=false"]


def run(repeats: int = 3, workdir: Path | None = None) -> list[dict]:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ucl-bench-"))
    return [*gan_rows(repeats), *table_rows(repeats, workdir)]


def gan_rows(repeats: int) -> list[dict]:
    model = OmegaConf.load(CONF_DIR / "model" / "gan.yaml")
    preset = OmegaConf.load(CONF_DIR / "experiment" / "gan.yaml")
    batch, epochs = int(preset.batch_size), int(preset.epochs)
    g_sizes = [int(model.latent_dim), *model.generator_widths, 784]
    d_sizes = [784, *model.discriminator_widths, 1]
    gan = build_gan(OmegaConf.create({"model": model}), SimpleNamespace(in_features=784))
    G, D = gan.generator, gan.discriminator
    G_avg = averaged(G, float(model.average_decay))
    adam = OmegaConf.create({"name": "adam", "lr": float(preset.lr), "fused": True,
                             "betas": list(preset.optimizer.betas)})  # fmt: skip
    opt_g, _ = build_optimizer(adam, G.parameters(), 1)
    opt_d, _ = build_optimizer(adam, D.parameters(), 1)
    real = torch.rand(batch, 784)

    def step():  # as ucl/tasks/gan.py's train_step
        fake = G(torch.randn(batch, g_sizes[0]))
        train_discriminator(D, opt_d, real, fake.detach())
        train_generator(D, opt_g, fake)
        G_avg.update_parameters(G)

    wide = torch.randn(batch, g_sizes[-2]), torch.randn(g_sizes[-2], 784)
    step_s, product_s = [], []
    for _ in range(repeats):  # alternated, so drift hits both
        step_s.append(_seconds(step, STEPS) / STEPS)
        product_s.append(_seconds(lambda: wide[0] @ wide[1], 200) / 200)
    step_s, product_s = statistics.median(step_s), statistics.median(product_s)
    rate = 2 * batch * g_sizes[-2] * 784 / product_s  # flop/s of a bare product
    products_s = step_flops(g_sizes, d_sizes, batch) / rate
    steps_per_run = epochs * -(-TRAIN_DIGITS // batch)
    threads = torch.get_num_threads()
    return [
        {
            "benchmark": f"GAN step, fp32, batch {batch}: its products at a bare product's "
            f"rate / the whole step",
            "value": products_s / step_s,
            "unit": "x",
            "target": None,
            "note": f"{products_s * 1e3:.1f} of {step_s * 1e3:.1f} ms; a bare product "
            f"{rate / 1e9:.0f} GFLOP/s; {threads} threads",
        },
        {
            "benchmark": f"GAN, {epochs} epochs at this step's time (the products alone at "
            f"the bare rate: the floor)",
            "value": steps_per_run * step_s / 60,
            "unit": "min",
            "target": None,
            "sense": "<=",
            "note": f"floor {steps_per_run * products_s / 60:.1f} min; {threads} threads",
        },
    ]


def table_rows(repeats: int, workdir: Path, extra: tuple[str, ...] = ()) -> list[dict]:
    """A table run's seconds per step in ucl (run in this process, no evaluation) against
    a bare loop of the same network, optimizer and batch on data of the same shape.
    `extra`: more overrides (another dataset)."""
    threads = torch.get_num_threads()
    ours, bare = [], []
    for i in range(repeats):  # alternated, so drift hits both
        overrides = [*TABLE_RUN, *NO_EVAL, f"epochs={TABLE_EPOCHS}", f"threads={threads}", *extra]
        record = run_config(overrides, workdir / f"table{i}")
        steps = int(record["metrics"]["steps"])
        ours.append(record["seconds"]["train"] / steps)
        bare.append(_bare_loop_seconds(steps, int(record["data"]["train"])))
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    return [
        {
            "benchmark": "a table run's step (784-256-10, Adam, batch 128): ucl's run / a "
            "bare torch loop",
            "value": ours_s / bare_s,
            "unit": "x",
            "target": None,
            "note": f"{ours_s * 1e3:.2f} vs {bare_s * 1e3:.2f} ms; {threads} threads",
        }
    ]


def _bare_loop_seconds(steps: int, rows: int) -> float:
    """Seconds per step of nn.Linear-ReLU-nn.Linear, cross-entropy and fused Adam on
    shuffled batches of 128 random images: the least a step of that network costs."""
    x, y = torch.rand(rows, 784), torch.randint(0, 10, (rows,))
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01, fused=True)
    batches = itertools.cycle(torch.randperm(rows)[: rows // 128 * 128].view(-1, 128))

    def step():
        batch = next(batches)
        loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _seconds(step, steps) / steps


def step_flops(g_sizes: list[int], d_sizes: list[int], batch: int) -> int:
    """Floating-point operations of the products in one step (2 per multiply-add)."""
    g = [a * b for a, b in zip(g_sizes, g_sizes[1:], strict=False)]  # per sample, per layer
    d = [a * b for a, b in zip(d_sizes, d_sizes[1:], strict=False)]
    macs = batch * sum(g)  # G(z)
    macs += 2 * batch * (sum(d) + sum(d) + sum(d[1:]))  # D on both: forward, weights, inputs
    macs += batch * (sum(d) + sum(d))  # D on the fakes again: forward, inputs (D frozen)
    macs += batch * (sum(g) + sum(g[1:]))  # back through G: weights, inputs but z's
    return 2 * macs


def _seconds(fn, calls: int) -> float:
    fn()  # warm-up
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - started
