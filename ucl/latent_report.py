"""The end-of-run look at a trained encoder/decoder (autoencoder or VAE): embedding quality
as numbers, and the figures that show it.

Numbers (`latent_metrics`): kNN accuracy in the code space (fitted on the training codes,
scored on the test codes, also per class), silhouette (also per class), the nearest pairs
of class centroids, and -- with a classifier -- how realistic decoded interpolants are:
the classifier's mean top-class probability on points along lines between test codes.

Figures (`latent_figures`): the embedding of the first `latent.points` test samples with
the configured interpolation paths drawn on it, each class's first test sample beside its
reconstruction, the decoded interpolation strips, and the codes in TensorBoard's
projector. Feature data (no image shape, e.g. the retina) gets feature-profile
reconstructions and the decoded paths drawn in the plane of the first two features
instead of image strips.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ucl import latent
from ucl.plots.grids import pairs_grid, rows_grid
from ucl.plots.latent import embedding_figure, feature_reconstructions_figure

log = logging.getLogger(__name__)


@dataclass
class Coder:
    """What the report needs of a model: encode (B, D) -> (B, d) and decode (B, d) -> (B, D)
    (for a VAE, encode gives the posterior mean)."""

    encode: Callable[[torch.Tensor], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]

    @classmethod
    def of(cls, model: torch.nn.Module) -> Coder:
        return cls(model.encode, model.decode)


def title_of(cfg, data, what: str) -> str:
    """'<model> on <data>[ (synthetic)]: <what>' -- synthetic data is named in every title."""
    synthetic = " (synthetic)" if getattr(data, "synthetic", False) else ""
    return f"{cfg.model.name} on {data.name}{synthetic}: {what}"


def mse_per_element(model_out: Callable, x: torch.Tensor, chunk: int) -> float:
    """Mean squared error per pixel/feature of model_out(x) against x, in chunks."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            xb = x[i : i + chunk]
            total += torch.sum((model_out(xb) - xb.flatten(1)) ** 2).item()
    return total / x[0].numel() / len(x)


# -- numbers ----------------------------------------------------------------------------


def latent_metrics(coder: Coder, data, lcfg, chunk: int, seed: int, classifier=None) -> dict:
    """Embedding-quality metrics of `coder` on `data` (see the module docstring).

    lcfg: the `model.latent` config node. Keys: latent/knn_accuracy,
    latent/knn_accuracy_per_class, latent/silhouette, latent/silhouette_per_class,
    latent/closest_pairs; with a classifier, interpolation/confidence (all interior points),
    interpolation/confidence_between, interpolation/confidence_within and
    interpolation/confidence_ends (the decoded end points themselves, for reference).
    """
    names = list(data.class_names)
    z_train = latent.codes_of(coder.encode, data.x_train, chunk).numpy()
    z_test = latent.codes_of(coder.encode, data.x_test, chunk).numpy()
    y_train, y_test = data.y_train.cpu().numpy(), data.y_test.cpu().numpy()

    predicted = latent.knn_predict(z_train, y_train, z_test, int(lcfg.knn_k))
    sil, sil_per_class = latent.silhouette(z_test, y_test, lcfg.get("silhouette_size"), seed=seed)
    centres = latent.centroids(z_train, y_train, len(names))
    metrics = {
        "latent/knn_accuracy": float((predicted == y_test).mean()),
        "latent/silhouette": sil,
        "latent/knn_accuracy_per_class": latent.per_class_accuracy(y_test, predicted, names),
        "latent/silhouette_per_class": {names[c]: v for c, v in sil_per_class.items()},
        "latent/closest_pairs": latent.closest_pairs(centres, names, int(lcfg.closest_pairs)),
    }
    if classifier is not None:
        metrics.update(interpolation_confidence(coder, data, lcfg, chunk, seed, classifier))
    return metrics


def interpolation_confidence(coder: Coder, data, lcfg, chunk: int, seed: int, classifier):
    """The classifier's mean confidence on decoded interpolants between random test pairs.

    The pairs come from the labels alone (`latent.random_pairs`), so two models scored on
    the same test set with the same seed are judged on the same pairs of digits.
    """
    icfg = lcfg.interpolation
    steps, n = int(icfg.steps), int(icfg.eval_pairs)
    y = data.y_test.cpu().numpy()
    out = {}
    interior, ends = [], []
    for kind, same in (("between", False), ("within", True)):
        pairs = latent.random_pairs(y, n, same_class=same, seed=seed)
        idx = torch.from_numpy(pairs).flatten().to(data.x_test.device)
        z = latent.codes_of(coder.encode, data.x_test[idx], chunk)
        z = z.reshape(n, 2, -1)
        paths = torch.stack([latent.interpolate(a, b, steps) for a, b in z])  # (n, steps, d)
        decoded = latent.decode_all(coder.decode, paths.flatten(0, 1).to(data.x_test.device), chunk)
        decoded = decoded.reshape(n, steps, -1)
        interior.append(decoded[:, 1:-1].flatten(0, 1))
        ends.append(decoded[:, [0, -1]].flatten(0, 1))
        out[f"interpolation/confidence_{kind}"] = latent.mean_confidence(
            classifier, interior[-1], chunk
        )
    judge = latent.mean_confidence
    out["interpolation/confidence"] = judge(classifier, torch.cat(interior), chunk)
    out["interpolation/confidence_ends"] = judge(classifier, torch.cat(ends), chunk)
    return out


def load_classifier(cfg, data, device):
    """The classifier of `classifier=<run dir>` (None when not given), checked against the
    data it will judge."""
    if not cfg.get("classifier"):
        return None
    from ucl.checkpoint import load_model

    model, saved = load_model(cfg.classifier, device)
    have = saved["data"]["in_features"]
    if have != data.in_features:
        raise ValueError(
            f"classifier={cfg.classifier} was trained on {saved['data']['name']} with {have} "
            f"input features, but this run's data {data.name} has {data.in_features}; give "
            f"the run dir of a classifier trained on {data.name}, or classifier=null"
        )
    return model


# -- figures ----------------------------------------------------------------------------


def _short(name: str) -> str:
    """'RBC (Rod Bipolar cell)' -> 'RBC': path labels stay short."""
    return name.split(" (", 1)[0]


def latent_figures(ctx, coder: Coder, step: int) -> None:
    """Every latent-space figure of the module docstring, into figures/ and TensorBoard."""
    cfg, data, tracker = ctx.cfg, ctx.data, ctx.tracker
    lcfg, chunk = cfg.model.latent, int(cfg.eval_batch_size)
    names = list(data.class_names)
    n = min(int(lcfg.points), len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n].cpu().numpy()
    z = latent.codes_of(coder.encode, x, chunk)  # (n, d)
    z2, basis = latent.to_2d(z.numpy())
    pca = z.shape[1] > 2
    axes = ("PC1 of z", "PC2 of z") if pca else ("$z_1$", "$z_2$")
    dims = f"{z.shape[1]}-D code" + (", top 2 principal components" if pca else "")

    # -- interpolation paths between typical members of the configured class pairs
    icfg = lcfg.interpolation
    pairs = [tuple(latent.resolve_class(c, names) for c in pair) for pair in icfg.pairs]
    ends = latent.pair_endpoints(z.numpy(), y, pairs, seed=int(cfg.seed))
    paths = torch.stack([latent.interpolate(z[i], z[j], int(icfg.steps)) for i, j in ends])
    decoded = latent.decode_all(coder.decode, paths.flatten(0, 1).to(x.device), chunk)
    decoded = decoded.reshape(len(pairs), int(icfg.steps), -1).cpu()
    drawn = [
        {
            "points": latent.to_2d(p.numpy(), basis)[0],
            "label": f"{_short(names[a])}-{_short(names[b])}",
            "classes": (a, b),
        }
        for p, (a, b) in zip(paths, pairs, strict=True)
    ]
    fig = embedding_figure(
        z2, y, names, title_of(cfg, data, f"{n} test points ({dims})"), drawn, axes
    )
    ctx.record["interpolation_rows"] = [path["label"] for path in drawn]  # strip row order
    tracker.figure("embedding", fig, step)

    # -- one reconstruction per class, and the decoded interpolation strips
    firsts = [int(np.flatnonzero(y == c)[0]) for c in range(len(names)) if (y == c).any()]
    recon = latent.decode_all(coder.decode, z[firsts].to(x.device), chunk).cpu()
    if data.image_shape:
        tracker.image("reconstructions", pairs_grid(x[firsts], recon, data.image_shape), step)
        tracker.image("interpolations", rows_grid(decoded, data.image_shape), step)
    else:  # feature vectors: no images to show, so draw profiles and the decoded paths
        fig = feature_reconstructions_figure(
            x[firsts].cpu().numpy(),
            recon.numpy(),
            [names[int(y[i])] for i in firsts],
            title_of(cfg, data, "test samples and reconstructions"),
        )
        tracker.figure("reconstructions", fig, step)
        decoded_paths = [
            {**path, "points": d[:, :2].numpy()} for d, path in zip(decoded, drawn, strict=True)
        ]
        fig = embedding_figure(
            x[:, :2].cpu().numpy(),
            y,
            names,
            title_of(cfg, data, "decoded interpolants in the data's first two features"),
            decoded_paths,
            ("feature 1 (PC1 of the data)", "feature 2 (PC2 of the data)"),
        )
        tracker.figure("interpolations", fig, step)

    # -- TensorBoard's projector: the codes, labelled, with thumbnails for images
    thumbnails = None
    if data.image_shape:
        thumbnails = x.detach().cpu().reshape(n, *data.image_shape).clamp(0, 1)
    tracker.writer.add_embedding(
        z, metadata=[names[int(c)] for c in y], label_img=thumbnails, global_step=step,
        tag="latent",
    )  # fmt: skip
