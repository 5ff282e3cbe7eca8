"""Retinal bipolar cells of Shekhar et al. 2016: parse, preprocess, split, cache.

Shekhar K. et al., "Comprehensive classification of retinal bipolar neurons by single-cell
transcriptomics", Cell 166(5):1308-1323 (2016). Two input files (their formats:
`ucl.data.retina.files`); `ucl.data.retina.synthetic` writes stand-ins in the same formats,
since the real ones can't be downloaded here. `ucl.data.retina.datasets` registers both as
datasets.

`load_retina` keeps the cells named in both files, drops doublets, keeps the requested
classes, then (`ucl.data.retina.preprocess`):

1. drops genes detected (count > 0) in fewer than `min_cells` of the kept cells;
2. scales each cell to the median library size (count / cell total * median total; the
   total counts every gene, including dropped ones) and takes the square root, which
   roughly stabilises the Poisson-like variance of UMI counts;
3. projects onto the top `pca_dim` principal components, fitted on *all* kept cells
   (unsupervised, labels unused, as is usual for single-cell data; it also keeps the cache
   independent of the split). scikit-learn's ARPACK PCA, which centres implicitly, keeps
   the matrix sparse. The scores are divided by the standard deviation of the first component, so
   the features are O(1) but keep their relative variances (`standardize=True` gives
   every component unit variance instead);
4. splits the cells 80/20 into train and test, stratified by class, seeded.

Steps 1-3 are cached beside the counts file (`ucl.data.retina.cache`), keyed by the
parameters and the two files' sizes and modification times, so only the first load parses
the text.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ucl.data import Splits, combined_fingerprint, file_digest
from ucl.data.retina.cache import CACHE_VERSION, cache_path, read_cache, write_cache
from ucl.data.retina.files import (
    CLUSTERS_FILENAME,
    CLUSTERS_FORMAT,
    COUNTS_FILENAME,
    COUNTS_FORMAT,
    DOUBLET_LABEL,
    SYNTHETIC_GENE_PREFIX,
    RetinaDataError,
    RetinaFileNotFoundError,
    default_paths,
    read_clusters,
    read_counts,
    read_counts_header,
)
from ucl.data.retina.preprocess import (
    normalize_sqrt,
    pca,
    preprocess,
    resolve_classes,
)

__all__ = [
    "CACHE_VERSION",
    "CLUSTERS_FILENAME",
    "COUNTS_FILENAME",
    "DOUBLET_LABEL",
    "SYNTHETIC_GENE_PREFIX",
    "RetinaDataError",
    "RetinaFileNotFoundError",
    "RetinaInfo",
    "default_paths",
    "load_retina",
    "normalize_sqrt",
    "preprocess",
    "pca",
    "read_clusters",
    "read_counts",
    "read_counts_header",
    "resolve_classes",
    "stratified_split",
]


@dataclass
class RetinaInfo:
    """What a load found beside the splits: where the rows came from and how they were made."""

    train_cells: list[str] = field(repr=False)  # cell names of the rows of x_train
    test_cells: list[str] = field(repr=False)  # ... and of x_test
    n_genes_kept: int  # genes left after the min_cells filter
    from_cache: bool  # steps 1-3 were read from the cache instead of the text files
    # fraction of the total variance of the sqrt-normalised data per component, (pca_dim,)
    explained_variance_ratio: np.ndarray = field(repr=False)


def load_retina(
    counts_path: str | os.PathLike,
    clusters_path: str | os.PathLike,
    classes: int | Sequence[str] | None = 15,
    min_cells: int = 10,
    pca_dim: int = 100,
    test_fraction: float = 0.2,
    seed: int = 0,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    standardize: bool = False,
    synthetic: bool | None = None,
    name: str = "retinal_bipolar",
) -> tuple[Splits, RetinaInfo]:
    """Load, preprocess (see the module docstring) and split the bipolar-cell data.

    Returns the splits (rows of x are cells, columns PCs; labels index the cluster labels in
    `class_names`) and what else the load found (`RetinaInfo`).

    classes: an int k keeps the k most frequent labels, most frequent first (15: the 14
        bipolar types and Mueller glia in the real data); a list of labels keeps those, in
        that order (a label may be given by its short name, the part before " (", e.g. "RBC"
        or "MG"); "bipolar" keeps the labels whose short name is RBC, BC<n>... or MG
        whatever their frequency; None or "all" keeps all. Doublets/Contaminants are
        always dropped.
    min_cells: drop genes detected in fewer than this many kept cells (10 removes genes too
        rare to shape any principal component while keeping markers of a 1% class).
    pca_dim: number of principal components, the feature dimension.
    test_fraction, seed: size of the stratified test split and its seed (not cached).
    cache, cache_dir: reuse/write the preprocessed matrix (default: beside the counts file).
    synthetic: None detects the synthetic stand-in from its gene names; a bool overrides.
    name: the dataset's name in the splits.
    """
    counts_path, clusters_path = Path(counts_path), Path(clusters_path)
    if isinstance(classes, numbers.Integral) and not isinstance(classes, bool):
        classes = int(classes)  # e.g. a numpy integer
    _check_params(classes, min_cells, pca_dim, test_fraction)
    for path, fmt in ((counts_path, COUNTS_FORMAT), (clusters_path, CLUSTERS_FORMAT)):
        if not path.is_file():
            raise RetinaFileNotFoundError(
                f"{path}: no such file. {fmt} Get the real files from GEO (GSE81904) and the "
                f"Single Cell Portal (SCP3) and pass dataset.counts=... dataset.clusters=...; "
                f"offline, train on the synthetic stand-in with dataset=retina_synthetic "
                f"(or write its files with `python -m ucl.data.retina.synthetic {path.parent}`)."
            )

    cached = cache_path(
        counts_path, clusters_path, cache_dir, classes, min_cells, pca_dim, standardize
    )
    pre = read_cache(cached) if cache else None
    from_cache = pre is not None
    if pre is None:
        pre = preprocess(counts_path, clusters_path, classes, min_cells, pca_dim, standardize)
        if cache:
            write_cache(cached, pre)

    train, test = stratified_split(pre["labels"], test_fraction, seed)
    x = torch.from_numpy(pre["features"].astype(np.float32, copy=False))
    y = torch.from_numpy(pre["labels"].astype(np.int64, copy=False))
    cells = pre["cells"]
    splits = Splits(
        x[train].contiguous(),
        y[train].contiguous(),
        x[test].contiguous(),
        y[test].contiguous(),
        class_names=[str(c) for c in pre["class_names"]],
        name=name,
        image_shape=None,
        synthetic=bool(pre["synthetic"]) if synthetic is None else bool(synthetic),
        fingerprint=combined_fingerprint(
            {p.name: file_digest(p) for p in (counts_path, clusters_path)}, counts_path.parent
        ),
    )
    info = RetinaInfo(
        train_cells=[str(cells[i]) for i in train],
        test_cells=[str(cells[i]) for i in test],
        n_genes_kept=int(pre["n_genes_kept"]),
        from_cache=from_cache,
        explained_variance_ratio=np.asarray(pre["explained_variance_ratio"], np.float64),
    )
    return splits, info


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of train and test: round(test_fraction * n) of each class's n cells go to
    test (at least one, and at least one left for train, when the class has two or more)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(np.floor(len(idx) * test_fraction + 0.5))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    # shuffle across classes so that neither split is ordered by class
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _check_params(classes, min_cells: int, pca_dim: int, test_fraction: float) -> None:
    if isinstance(classes, bool) or not (
        classes is None or isinstance(classes, int) or hasattr(classes, "__iter__")
    ):
        raise RetinaDataError(
            f"classes={classes!r}: give an int k (the k most frequent labels), a list of "
            f"labels, or None (all of them)."
        )
    if isinstance(min_cells, bool) or not isinstance(min_cells, int) or min_cells < 0:
        raise RetinaDataError(f"min_cells={min_cells!r}: give an int >= 0.")
    if isinstance(pca_dim, bool) or not isinstance(pca_dim, int) or pca_dim < 1:
        raise RetinaDataError(f"pca_dim={pca_dim!r}: give an int >= 1.")
    if not 0.0 < test_fraction < 1.0:
        raise RetinaDataError(f"test_fraction={test_fraction!r}: give a number in (0, 1).")
