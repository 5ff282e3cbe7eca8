"""Reconstruction: train an autoencoder by mean squared error, then measure and draw its
code space (ucl/latent.py, ucl/plots/latent.py)."""

from __future__ import annotations

import torch.nn.functional as F

from ucl.context import Context
from ucl.earlier_runs import load_classifier
from ucl.keys import TASKS
from ucl.latent import Coder, latent_metrics
from ucl.loop import mse_per_element, save_model
from ucl.plots.latent import latent_figures, title_of
from ucl.plots.training import curves


@TASKS.register("reconstruct")
def reconstruct(ctx: Context) -> dict:
    cfg, data, t = ctx.cfg, ctx.data, ctx.cfg.task_settings  # t: the code-space report, links
    classifier = load_classifier(t.classifier, data, ctx.device)  # fails before training
    model, opt, loop = ctx.model_and_loop()  # minibatches from a fresh permutation each epoch
    chunk = int(cfg.eval_batch_size)
    # The curves' train loss is measured on a fixed seeded subset (train_eval_size rows): a
    # full pass over 60,000 digits at every evaluation would cost as much as ~500 steps.
    x_train_eval, _ = ctx.train_eval()

    def train_step(x, _y):  # x: (B, D)
        with ctx.autocast():  # precision=bf16: the products in bfloat16, the loss in fp32
            loss = F.mse_loss(model(x).float(), x)  # mean over the batch and the D features
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"batch/loss": loss.detach()}

    def evaluate(step):
        out = {"train/loss": mse_per_element(model, x_train_eval, chunk)}
        if data.x_val is not None:  # dataset.validation=N
            out["val/loss"] = mse_per_element(model, data.x_val, chunk)
        out["test/loss"] = mse_per_element(model, data.x_test, chunk)
        return out

    loop.run(train_step, evaluate)

    # -- the end: loss curves, the saved model, the code space ---------------------------
    history = ctx.tracker.history
    fig = curves(
        history, ["batch/loss", "train/loss", "test/loss"], title_of(cfg, data, "loss"),
        "mean squared error per element", log_y=True,
        train_label=ctx.train_label,
    )  # fmt: skip
    ctx.tracker.figure("loss_curves", fig, loop.step)
    save_model(ctx.run_dir, model, cfg, data)
    model.eval()
    coder = Coder.of(model)
    latent_figures(ctx, coder, loop.step)
    final = history[-1]
    return {
        "test/mse": final["test/loss"],
        "train/mse": final["train/loss"],  # on the subset metrics.json's train_eval names
        **({"val/mse": final["val/loss"]} if "val/loss" in final else {}),
        "steps": loop.step,
        **latent_metrics(coder, data, t.latent, chunk, int(cfg.seed), classifier),
    }
