"""Latent-space figures of a trained encoder/decoder (autoencoder or VAE).

`latent_figures` draws, at the end of a run: the embedding of the first `latent.points` test
samples with the configured interpolation paths on it, each class's first test sample beside
its reconstruction, the decoded interpolation strips, and the codes in TensorBoard's
projector. Feature data (no image shape, e.g. the retina) gets feature-profile
reconstructions and the decoded paths drawn in the plane of the first two features instead
of image strips. The numbers that go with them are `ucl.latent.latent_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ucl import class_names, latent
from ucl.plots.training import pairs_grid, rows_grid


def class_colours(num_classes: int):
    """One distinct colour per class: tab10 up to 10 classes, tab20 up to 20."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(num_classes)]


def embedding_figure(
    z: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    title: str,
    paths: Sequence[dict] = (),
    axis_labels: tuple[str, str] = ("$z_1$", "$z_2$"),
):
    """Scatter of 2-D codes z (N, 2) coloured by label y (N,), with a legend.

    paths: interpolations to draw on top, each {"points": (n, 2) array, "label": str,
    "classes": (class of the first end, class of the last end)}; the points are joined by
    a black line, the ends marked with squares in their class colours.
    """
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    colours = class_colours(len(names))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    for c, name in enumerate(names):
        mask = y == c
        if mask.any():
            ax.scatter(*z[mask].T, s=6, alpha=0.6, color=colours[c], label=f"{name} ({mask.sum()})")
    for path in paths:
        p = np.asarray(path["points"])
        ax.plot(*p.T, "-o", ms=2.5, lw=1.2, color="k", zorder=3)
        for end, c in zip(p[[0, -1]], path.get("classes", (None, None)), strict=True):
            face = colours[c] if c is not None else "w"
            ax.plot(*end, "s", ms=8, mfc=face, mec="k", mew=1.2, zorder=4)
        ax.annotate(
            path["label"], p[len(p) // 2], xytext=(5, 5), textcoords="offset points",
            fontsize=8, zorder=5, bbox={"boxstyle": "round,pad=0.2", "fc": "w", "alpha": 0.8},
        )  # fmt: skip
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    legend = ax.legend(
        loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, markerscale=2.5, frameon=False
    )
    legend.set_title("class (points)", prop={"size": 8})
    fig.tight_layout()
    return fig


def feature_reconstructions_figure(
    originals: np.ndarray, reconstructions: np.ndarray, names: Sequence[str], title: str
):
    """For feature vectors (no image): one panel per row, the original (N, D) and its
    reconstruction drawn as profiles over the feature index."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    n = len(originals)
    cols = min(5, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        ax.plot(originals[k], lw=0.8, label="original")
        ax.plot(reconstructions[k], lw=0.8, label="reconstruction")
        ax.set_title(str(names[k]), fontsize=8)
        ax.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title)
    fig.supxlabel("feature (principal component)", fontsize=8)
    fig.tight_layout()
    return fig


def title_of(cfg, data, what: str) -> str:
    """'<model> on <data>[ (synthetic)]: <what>' -- synthetic data is named in every title."""
    synthetic = " (synthetic)" if getattr(data, "synthetic", False) else ""
    return f"{cfg.model.name} on {data.name}{synthetic}: {what}"


def _interpolations(coder, data, pairs, z, y, steps: int, chunk: int, seed: int):
    """The paths (pairs, steps, d) between typical members of each pair's classes, and their
    decodings (pairs, steps, D); the ends are among the codes shown when those hold them."""
    if not pairs:  # none asked for
        return torch.empty(0, steps, z.shape[1]), None
    if not latent.has_ends(y, pairs):  # the points shown miss a class: ends from every test code
        z, y = latent.codes_of(coder.encode, data.x_test, chunk), data.y_test.cpu().numpy()
    ends = latent.pair_endpoints(z.numpy(), y, pairs, seed=seed)
    paths = torch.stack([latent.interpolate(z[i], z[j], steps) for i, j in ends])
    decoded = latent.decode_all(coder.decode, paths.flatten(0, 1).to(data.x_test.device), chunk)
    return paths, decoded.reshape(len(pairs), steps, -1).cpu()


def latent_figures(ctx, coder: latent.Coder, step: int) -> None:
    """Every latent-space figure of the module docstring, into figures/ and TensorBoard."""
    cfg, data, tracker = ctx.cfg, ctx.data, ctx.tracker
    lcfg, chunk = cfg.task_settings.latent, int(cfg.eval_batch_size)
    names = list(data.class_names)
    n = min(int(lcfg.points), len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n].cpu().numpy()
    z = latent.codes_of(coder.encode, x, chunk)  # (n, d)
    z2, basis = latent.to_2d(z.numpy())
    pca = z.shape[1] > 2
    axes = ("PC1 of z", "PC2 of z") if pca else ("$z_1$", "$z_2$")
    dims = f"{z.shape[1]}-D code" + (", top 2 principal components" if pca else "")

    # -- interpolation paths between typical members of the configured class pairs
    pairs = latent.interpolation_pairs(lcfg, data)
    steps = int(lcfg.interpolation.steps)
    paths, decoded = _interpolations(coder, data, pairs, z, y, steps, chunk, int(cfg.seed))
    drawn = [
        {
            "points": latent.to_2d(p.numpy(), basis)[0],
            "label": f"{class_names.short(names[a])}-{class_names.short(names[b])}",
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
        if pairs:
            tracker.image("interpolations", rows_grid(decoded, data.image_shape), step)
    else:  # feature vectors: no images to show, so draw profiles and the decoded paths
        fig = feature_reconstructions_figure(
            x[firsts].cpu().numpy(),
            recon.numpy(),
            [names[int(y[i])] for i in firsts],
            title_of(cfg, data, "test samples and reconstructions"),
        )
        tracker.figure("reconstructions", fig, step)
    if pairs and not data.image_shape:
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
