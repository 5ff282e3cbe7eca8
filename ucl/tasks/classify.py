"""Classification: softmax cross-entropy, train/test error against the iteration, and a
confusion matrix at the end."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from ucl.context import Context
from ucl.errors import ConfigError
from ucl.keys import TASKS
from ucl.loop import chunks, map_chunks, save_model
from ucl.plots.training import confusion_figure, curves

log = logging.getLogger(__name__)


@TASKS.register("classify")
def classify(ctx: Context) -> dict[str, float]:
    cfg, data = ctx.cfg, ctx.data
    model, opt, loop = ctx.model_and_loop()
    chunk = int(cfg.eval_batch_size)
    x_train_eval, y_train_eval = ctx.train_eval()  # a fixed subset: the curves' train points

    # a model that writes its own gradient in closed form (logreg), when asked to
    closed_form = cfg.model.get("analytic_grad", False) and ctx.precision == "fp32"
    if closed_form and not hasattr(model, "loss_and_grad"):
        raise ConfigError(
            f"model.analytic_grad=true, but the {cfg.model.name} model has no closed-form "
            f"gradient (only logreg has); drop the override"
        )

    def train_step(x, y):  # x: (B, 784), y: (B,)
        if closed_form:
            loss = model.loss_and_grad(x, y)  # sets the parameters' .grad
        else:
            with ctx.autocast():  # precision=bf16: the products in bfloat16, the loss in fp32
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()
        return {"batch/loss": loss.detach()}

    def evaluate(step):
        metrics = {}
        for split, x, y in (
            ("train", x_train_eval, y_train_eval),
            ("val", data.x_val, data.y_val),  # dataset.validation=N; absent when N is 0
            ("test", data.x_test, data.y_test),
        ):
            if x is None:
                continue
            loss, correct = evaluate_split(model, x, y, chunk)
            metrics[f"{split}/loss"] = loss
            metrics[f"{split}/error"] = 1 - correct / len(y)
            if split != "train":
                metrics[f"{split}/accuracy"] = 1 - metrics[f"{split}/error"]
        return metrics

    loop.run(train_step, evaluate)

    # -- the end: curves, confusion matrix, the saved model -----------------------------
    history = ctx.tracker.history
    title = f"{cfg.model.name} on {data.name}"
    for what, ylabel in (("error", "error"), ("loss", "cross-entropy")):
        tags = [f"train/{what}", f"test/{what}"]
        fig = curves(history, tags, title, ylabel, train_label=ctx.train_label)
        ctx.tracker.figure(f"{what}_curves", fig, loop.step)
    model.eval()
    with torch.no_grad():
        predicted = predict(model, data.x_test, chunk)
        # the final train figures over the whole split (the curves' points: the subset)
        train_loss, train_correct = evaluate_split(model, data.x_train, data.y_train, chunk)
    counts = confusion_matrix(data.y_test.cpu(), predicted.cpu(), data.num_classes)
    ctx.tracker.figure(
        "confusion_matrix", confusion_figure(counts, data.class_names, f"{title}: test"), loop.step
    )
    pairs = most_confused(counts, data.class_names)
    log.info("confusion matrix (rows: true, columns: predicted):\n%s", format_matrix(counts))
    log.info("most confused (true -> predicted): %s", pairs[:5])
    ctx.record["confusion_matrix"] = counts.tolist()
    ctx.record["most_confused"] = pairs
    save_model(ctx.run_dir, model, cfg, data)

    final = history[-1]
    best = max(history, key=lambda row: row.get("test/accuracy", -1.0))
    result = {
        "test/accuracy": final["test/accuracy"],
        "test/error": final["test/error"],
        "test/loss": final["test/loss"],
        "train/error": 1 - train_correct / len(data.y_train),
        "train/loss": train_loss,
        "test/best_accuracy": best["test/accuracy"],
        "test/best_step": best["step"],
        "steps": loop.step,
    }
    if data.x_val is not None:  # what sweeps and searches choose by, so test stays unseen
        result.update({k: final[k] for k in ("val/accuracy", "val/error", "val/loss")})
    return result


def evaluate_split(model, x: torch.Tensor, y: torch.Tensor, chunk: int) -> tuple[float, int]:
    """(mean cross-entropy, number correct) over a whole split, in chunks."""
    loss_sum, correct = 0.0, 0
    for xb, yb in zip(chunks(x, chunk), chunks(y, chunk), strict=True):
        logits = model(xb)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return loss_sum / len(x), correct


def predict(model, x: torch.Tensor, chunk: int) -> torch.Tensor:
    return map_chunks(lambda xb: model(xb).argmax(1), x, chunk)


def confusion_matrix(true: torch.Tensor, predicted: torch.Tensor, k: int) -> np.ndarray:
    """counts[i, j]: test samples of class i predicted as j."""
    flat = torch.bincount(true * k + predicted, minlength=k * k)
    return flat.reshape(k, k).numpy()


def most_confused(counts: np.ndarray, names: list[str], top: int = 10) -> list[dict]:
    off = counts.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    pairs = []
    for flat in order:
        i, j = divmod(int(flat), counts.shape[0])
        if off[i, j] == 0:
            break
        pairs.append({"true": names[i], "predicted": names[j], "count": int(off[i, j])})
    return pairs


def format_matrix(counts: np.ndarray) -> str:
    width = len(str(counts.max()))
    return "\n".join(" ".join(f"{v:>{width}d}" for v in row) for row in counts)
