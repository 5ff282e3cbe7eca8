"""From the two files to the features: which cells and classes, which genes, the
normalisation and the PCA (steps 1-3 of `ucl.data.retina`, the part the cache holds)."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

from ucl import class_names
from ucl.data.retina import files
from ucl.data.retina.files import DOUBLET_LABEL, RetinaDataError
from ucl.keys import closest

# classes="bipolar": short names (before " (") of the 14 bipolar types and Mueller glia
BIPOLAR_AND_GLIA = re.compile(r"(RBC|BC\d.*|MG)")  # matched in full, case-sensitive


def preprocess(
    counts_path: Path,
    clusters_path: Path,
    classes: int | Sequence[str] | None,
    min_cells: int,
    pca_dim: int,
    standardize: bool,
) -> dict[str, np.ndarray]:
    """Steps 1-3 of `ucl.data.retina`'s docstring: the arrays the cache holds."""
    labels_of = files.read_clusters(clusters_path)
    header = files.read_counts_header(counts_path)
    in_both = [c for c in header if c in labels_of]
    if not in_both:
        raise RetinaDataError(
            f"{counts_path} and {clusters_path} share no cell names: the counts header names "
            f"e.g. {_examples(header)}, the clusters file e.g. {_examples(list(labels_of))}. "
            f"Give the clusters file that belongs to this counts file (names must match "
            f"exactly, including any batch prefix)."
        )
    missing = len(labels_of) - len(in_both)
    if missing:
        warnings.warn(
            f"{clusters_path}: {missing} of {len(labels_of)} labelled cells are not in "
            f"{counts_path}; they are ignored.",
            stacklevel=3,
        )
    label_counts = Counter(labels_of[c] for c in in_both)
    class_names = resolve_classes(label_counts, classes, clusters_path)
    index = {name: i for i, name in enumerate(class_names)}
    kept = [c for c in in_both if labels_of[c] in index]  # counts-file order
    column = {c: i for i, c in enumerate(header)}

    x, genes, totals, all_synthetic = files.read_counts(
        counts_path, np.array([column[c] for c in kept], dtype=np.int64), min_cells
    )
    if pca_dim > min(x.shape[0] - 1, x.shape[1]):
        raise RetinaDataError(
            f"pca_dim={pca_dim} is more than the data allows: {x.shape[0]} cells and "
            f"{x.shape[1]} genes kept from {counts_path} (at most min(cells - 1, genes)). "
            f"Lower pca_dim, lower min_cells, or keep more classes."
        )
    x = normalize_sqrt(x, totals)
    features, evr = pca(x, pca_dim)
    scale = features.std(axis=0) if standardize else features[:, 0].std()
    features = features / np.maximum(scale, np.finfo(np.float64).tiny)
    return {
        "features": features.astype(np.float32),
        "labels": np.array([index[labels_of[c]] for c in kept], dtype=np.int64),
        "class_names": np.array(class_names, dtype=str),
        "cells": np.array(kept, dtype=str),
        "n_genes_kept": np.array(len(genes)),
        "synthetic": np.array(all_synthetic),
        "explained_variance_ratio": evr,
    }


def resolve_classes(
    label_counts: Counter, classes: int | Sequence[str] | None, clusters_path: Path
) -> list[str]:
    """The labels to keep, in class-index order (see `load_retina`'s `classes`)."""
    available = sorted(
        (lab for lab in label_counts if not _is_doublet(lab)), key=lambda s: (-label_counts[s], s)
    )
    listing = ", ".join(f"{lab!r} ({label_counts[lab]})" for lab in available)
    if classes is None or classes == "all":
        return available
    if classes == "bipolar":
        chosen = [lab for lab in available if BIPOLAR_AND_GLIA.fullmatch(class_names.short(lab))]
        if not chosen:
            raise RetinaDataError(
                f"classes='bipolar', but no label of {clusters_path} has the short name RBC, "
                f"BC<n> or MG: {listing}. Give the labels as a list."
            )
        return chosen
    if isinstance(classes, int):
        if not 1 <= classes <= len(available):
            raise RetinaDataError(
                f"classes={classes}, but {clusters_path} has {len(available)} labels besides "
                f"{DOUBLET_LABEL!r} among the cells of the counts file: {listing}. "
                f"Give an int from 1 to {len(available)} or a list of these labels."
            )
        return available[:classes]
    if isinstance(classes, str):  # one name; a str is a Sequence[str] of characters
        classes = [classes]
    short = {class_names.short(lab).lower(): lab for lab in available}
    chosen: list[str] = []
    for name in classes:
        name = str(name)
        label = name if name in label_counts else short.get(name.strip().lower())
        if label is None or _is_doublet(label):
            close = closest(name, [*available, *short], cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RetinaDataError(
                f"Unknown class {name!r} for {clusters_path}.{hint} Valid labels (cells): "
                f"{listing}; the short name before ' (' works too (e.g. 'RBC')."
            )
        if label in chosen:
            raise RetinaDataError(f"classes lists {label!r} twice; give each label once.")
        chosen.append(label)
    return chosen


def normalize_sqrt(x: sparse.spmatrix, totals: np.ndarray) -> sparse.csc_matrix:
    """sqrt(count / total * median(total)) per cell (rows of x), as float64; zeros stay zeros.

    The result shares x's index arrays (for a CSC x), so only the values are a new copy.
    """
    from scipy import sparse  # here: scipy.sparse takes 0.1 s to import

    x = sparse.csc_matrix(x)
    totals = np.asarray(totals, dtype=np.float64)
    scale = np.median(totals) / np.maximum(totals, 1.0)  # an empty cell stays all zeros
    data = np.sqrt(x.data * scale[x.indices])  # CSC: indices are the rows, i.e. cells
    return sparse.csc_matrix((data, x.indices, x.indptr), shape=x.shape)


def pca(x: sparse.spmatrix, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-k principal component scores of the rows of x, and their explained variance ratio.

    scikit-learn's PCA with ARPACK centres a sparse x implicitly (as a linear operator), so x
    stays sparse: the centred matrix of ~28k cells x ~13k genes would take ~3 GB dense. The
    components are exact (to ARPACK's tolerance); the seed fixes ARPACK's start vector, so
    the result is repeatable. Signs: the largest |score| of each component is positive.
    """
    # ARPACK needs k < min(cells, genes); k = genes is only possible for a narrow x, which
    # is small dense
    full = k >= min(x.shape)
    from sklearn.decomposition import PCA  # here: importing scikit-learn costs a second

    fitted = PCA(k, svd_solver="full" if full else "arpack", random_state=seed)
    with single_threaded_blas():
        scores = fitted.fit_transform(x.toarray() if full else x)
    signs = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(k)])
    scores *= np.where(signs == 0, 1.0, signs)
    return scores, fitted.explained_variance_ratio_


def single_threaded_blas():
    """Limit BLAS to one thread: threaded OpenBLAS ran the small dense steps of a PCA like
    this one (on vectors or thin blocks of one cell or gene count) ~20x slower than one
    thread when other processes shared the cores (measured on 2 cores)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _is_doublet(label: str) -> bool:
    return label == DOUBLET_LABEL or "doublet" in label.lower()


def _examples(names: Sequence[str], n: int = 3) -> str:
    return ", ".join(repr(x) for x in list(names)[:n])
