"""Retinal bipolar cells of Shekhar et al. 2016: parse, preprocess, split, cache.

Shekhar K. et al., "Comprehensive classification of retinal bipolar neurons by single-cell
transcriptomics", Cell 166(5):1308-1323 (2016). Two input files; `ucl.data.retina_synthetic`
writes stand-ins in the same formats, since the real ones can't be downloaded here.

``GSE81904_BipolarUMICounts_Cell2016.txt.gz`` (GEO GSE81904), the counts file
    gzip (plain text is accepted too), tab-separated UMI counts, genes as rows and cells as
    columns. The header line holds only the N cell names -- no corner field, so it has one
    field fewer than the data rows. Each data row is a gene symbol followed by N
    non-negative integer counts. Real size: ~24,904 genes x ~44,994 cells (~2 GB of text).

``clust_retinal_bipolar.txt`` (Single Cell Portal, study SCP3), the clusters file
    tab-separated. Header ``NAME<TAB>CLUSTER<TAB>SUB-CLUSTER``, then a metadata row that
    starts with ``TYPE`` (``TYPE<TAB>group<TAB>group``), then one row per cell: cell name,
    cluster label (``RBC (Rod Bipolar cell)``, ``MG (Mueller Glia)``, ``BC1A``, ...,
    ``Doublets/Contaminants``) and sub-cluster (read but not used).

`load_retina` keeps the cells named in both files, drops doublets, keeps the requested
classes, then:

1. drops genes detected (count > 0) in fewer than `min_cells` of the kept cells;
2. scales each cell to the median library size (count / cell total * median total; the
   total counts every gene, including dropped ones) and takes the square root, which
   roughly stabilises the Poisson-like variance of UMI counts;
3. projects onto the top `pca_dim` principal components, fitted on *all* kept cells
   (unsupervised, labels unused, as is usual for single-cell data; it also keeps the cache
   independent of the split). A randomized SVD with implicit centring keeps the matrix
   sparse. The scores are divided by the standard deviation of the first component, so
   the features are O(1) but keep their relative variances (`standardize=True` gives
   every component unit variance instead);
4. splits the cells 80/20 into train and test, stratified by class, seeded.

Steps 1-3 are cached beside the counts file, keyed by the parameters and the two files'
sizes and modification times, so only the first load parses the text.
"""

from __future__ import annotations

import contextlib
import difflib
import gzip
import hashlib
import json
import numbers
import os
import re
import tempfile
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from scipy import sparse

from ucl.errors import UclError

COUNTS_FILENAME = "GSE81904_BipolarUMICounts_Cell2016.txt.gz"
CLUSTERS_FILENAME = "clust_retinal_bipolar.txt"
DOUBLET_LABEL = "Doublets/Contaminants"
# classes="bipolar": short names (before " (") of the 14 bipolar types and Mueller glia
BIPOLAR_AND_GLIA = re.compile(r"(RBC|BC\d.*|MG)")  # matched in full, case-sensitive
# Gene symbols of the synthetic stand-in start with this; no real gene symbol does.
SYNTHETIC_GENE_PREFIX = "SYNTHETIC_"
# Bump when the preprocessing changes, so caches written by older code are not reused.
CACHE_VERSION = 1

COUNTS_FORMAT = (
    "Expected format (GEO GSE81904 " + COUNTS_FILENAME + "): gzip or plain text, "
    "tab-separated, genes as rows and cells as columns; the first line holds only the N "
    "cell names (no corner field), each following line a gene symbol and N non-negative "
    "integer UMI counts."
)
CLUSTERS_FORMAT = (
    "Expected format (Single Cell Portal SCP3 " + CLUSTERS_FILENAME + "): tab-separated; "
    "line 1 'NAME<TAB>CLUSTER<TAB>SUB-CLUSTER', line 2 'TYPE<TAB>group<TAB>group', then "
    "one line per cell: cell name, cluster label, sub-cluster."
)


class RetinaDataError(UclError, ValueError):
    """A retina data file that is missing, malformed, or inconsistent with the other."""


class RetinaFileNotFoundError(RetinaDataError, FileNotFoundError):
    """A retina data file that does not exist (also a FileNotFoundError)."""


@dataclass
class RetinaData:
    """Preprocessed cells, split into train and test. Rows of x are cells, columns PCs."""

    x_train: torch.Tensor = field(repr=False)  # (n_train, pca_dim) float32
    y_train: torch.Tensor = field(repr=False)  # (n_train,) int64, index into class_names
    x_test: torch.Tensor = field(repr=False)  # (n_test, pca_dim) float32
    y_test: torch.Tensor = field(repr=False)  # (n_test,) int64
    class_names: list[str]  # cluster labels as in the clusters file
    n_genes_kept: int  # genes left after the min_cells filter
    n_cells: int  # labelled cells kept, n_train + n_test
    synthetic: bool  # the files came from ucl.data.retina_synthetic (or the caller said so)
    from_cache: bool  # steps 1-3 were read from the cache instead of the text files
    # fraction of the total variance of the sqrt-normalised data per component, (pca_dim,)
    explained_variance_ratio: np.ndarray = field(repr=False)
    train_cells: list[str] = field(repr=False)  # cell names of the rows of x_train
    test_cells: list[str] = field(repr=False)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def default_paths(data_dir: str | os.PathLike) -> tuple[Path, Path]:
    """The counts and clusters files under their published names in `data_dir`."""
    data_dir = Path(data_dir)
    return data_dir / COUNTS_FILENAME, data_dir / CLUSTERS_FILENAME


# ----------------------------------------------------------------------------- the loader


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
) -> RetinaData:
    """Load, preprocess (see the module docstring) and split the bipolar-cell data.

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
                f"(or write its files with `python -m ucl.data.retina_synthetic {path.parent}`)."
            )

    cache_path = _cache_path(
        counts_path, clusters_path, cache_dir, classes, min_cells, pca_dim, standardize
    )
    pre = _read_cache(cache_path) if cache else None
    from_cache = pre is not None
    if pre is None:
        pre = preprocess(counts_path, clusters_path, classes, min_cells, pca_dim, standardize)
        if cache:
            _write_cache(cache_path, pre)

    train, test = stratified_split(pre["labels"], test_fraction, seed)
    x = torch.from_numpy(pre["features"].astype(np.float32, copy=False))
    y = torch.from_numpy(pre["labels"].astype(np.int64, copy=False))
    cells = pre["cells"]
    return RetinaData(
        x_train=x[train].contiguous(),
        y_train=y[train].contiguous(),
        x_test=x[test].contiguous(),
        y_test=y[test].contiguous(),
        class_names=[str(c) for c in pre["class_names"]],
        n_genes_kept=int(pre["n_genes_kept"]),
        n_cells=len(y),
        synthetic=bool(pre["synthetic"]) if synthetic is None else bool(synthetic),
        from_cache=from_cache,
        explained_variance_ratio=np.asarray(pre["explained_variance_ratio"], np.float64),
        train_cells=[str(cells[i]) for i in train],
        test_cells=[str(cells[i]) for i in test],
    )


def preprocess(
    counts_path: Path,
    clusters_path: Path,
    classes: int | Sequence[str] | None,
    min_cells: int,
    pca_dim: int,
    standardize: bool,
) -> dict[str, np.ndarray]:
    """Steps 1-3 of the module docstring: the arrays the cache holds."""
    labels_of = read_clusters(clusters_path)
    header = read_counts_header(counts_path)
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

    x, genes, totals, all_synthetic = read_counts(
        counts_path, np.array([column[c] for c in kept], dtype=np.int64), min_cells
    )
    if pca_dim > min(x.shape[0] - 1, x.shape[1]):
        raise RetinaDataError(
            f"pca_dim={pca_dim} is more than the data allows: {x.shape[0]} cells and "
            f"{x.shape[1]} genes kept from {counts_path} (at most min(cells - 1, genes)). "
            f"Lower pca_dim, lower min_cells, or keep more classes."
        )
    x = normalize_sqrt(x, totals)
    features, evr = randomized_pca(x, pca_dim)
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
        chosen = [lab for lab in available if BIPOLAR_AND_GLIA.fullmatch(_short(lab))]
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
    short = {_short(lab).lower(): lab for lab in available}
    chosen: list[str] = []
    for name in classes:
        name = str(name)
        label = name if name in label_counts else short.get(name.strip().lower())
        if label is None or _is_doublet(label):
            close = difflib.get_close_matches(name, available + list(short), n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RetinaDataError(
                f"Unknown class {name!r} for {clusters_path}.{hint} Valid labels (cells): "
                f"{listing}; the short name before ' (' works too (e.g. 'RBC')."
            )
        if label in chosen:
            raise RetinaDataError(f"classes lists {label!r} twice; give each label once.")
        chosen.append(label)
    return chosen


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


# ---------------------------------------------------------------------------- file parsers


def read_clusters(path: Path) -> dict[str, str]:
    """Cell name -> cluster label from the clusters file (format: CLUSTERS_FORMAT)."""
    labels: dict[str, str] = {}
    with _lines(path, CLUSTERS_FORMAT) as f:
        lines = (_decode(b, path, i, CLUSTERS_FORMAT) for i, b in enumerate(f, start=1))
        header = _fields(next(lines, ""))
        if len(header) < 2 or [h.strip().upper() for h in header[:2]] != ["NAME", "CLUSTER"]:
            raise RetinaDataError(
                f"{path}: line 1 should be the header 'NAME<TAB>CLUSTER<TAB>SUB-CLUSTER', "
                f"found {_clip(header)}. {CLUSTERS_FORMAT} Fix: put that header line first."
            )
        type_row = _fields(next(lines, ""))
        if type_row[0].strip().upper() != "TYPE":
            raise RetinaDataError(
                f"{path}: line 2 should be the metadata row starting with 'TYPE' "
                f"(e.g. 'TYPE<TAB>group<TAB>group'), found {_clip(type_row)}. "
                f"{CLUSTERS_FORMAT} Fix: insert that row after the header."
            )
        for lineno, line in enumerate(lines, start=3):
            if not line.strip():
                continue
            row = _fields(line)
            if len(row) != len(header) or not row[0] or not row[1]:
                raise RetinaDataError(
                    f"{path}: line {lineno} has {len(row)} fields {_clip(row)}, expected "
                    f"{len(header)} like the header {header}, with a cell name and a cluster "
                    f"label. {CLUSTERS_FORMAT}"
                )
            name = _unquote(row[0])
            if name in labels:
                raise RetinaDataError(
                    f"{path}: line {lineno} names cell {name!r} a second time; each cell must "
                    f"have one row. {CLUSTERS_FORMAT}"
                )
            labels[name] = _unquote(row[1])
    if not labels:
        raise RetinaDataError(
            f"{path}: no cell rows after the header and TYPE row. {CLUSTERS_FORMAT}"
        )
    return labels


def read_counts_header(path: Path) -> list[str]:
    """The cell names on the first line of the counts file (format: COUNTS_FORMAT)."""
    with _lines(path, COUNTS_FORMAT) as f:
        line = f.readline()
    names = [_unquote(n) for n in _decode(line, path, 1).rstrip("\r\n").split("\t")]
    if not line or not any(names):
        raise RetinaDataError(f"{path}: the file is empty. {COUNTS_FORMAT}")
    if len(set(names)) != len(names):
        dup = next(n for n, k in Counter(names).items() if k > 1)
        raise RetinaDataError(
            f"{path}: the header names cell {dup!r} more than once; cell names must be "
            f"unique. {COUNTS_FORMAT}"
        )
    return names


def read_counts(
    path: Path, columns: np.ndarray, min_cells: int
) -> tuple[sparse.csc_matrix, list[str], np.ndarray, bool]:
    """Parse the counts file, one gene row at a time, keeping only what is needed.

    columns: which cells (column indices into the header's names) to keep, in output order.
    Returns (x, genes, totals, all_synthetic): x is a sparse CSC (cells, genes kept) matrix of
    the counts of genes detected in >= min_cells of those cells; totals the cells' counts
    summed over all genes (library sizes); all_synthetic whether every gene symbol carries
    SYNTHETIC_GENE_PREFIX. Every row is checked, kept or not.
    """
    n_cells = len(read_counts_header(path))
    totals = np.zeros(len(columns), dtype=np.int64)
    genes: list[str] = []
    rows_idx: list[np.ndarray] = []  # per kept gene: positions of the cells with counts > 0
    rows_val: list[np.ndarray] = []  # ... and those counts
    all_synthetic = True
    with _lines(path, COUNTS_FORMAT) as f:
        f.readline()
        lineno = 1
        for lineno, line in enumerate(f, start=2):
            gene_b, tab, rest = line.partition(b"\t")
            if not tab:
                if not line.strip():
                    continue  # a trailing blank line
                raise _row_error(path, lineno, line, n_cells)
            try:
                # np.fromstring is ~5x faster than str.split + int(); it raises on a
                # non-integer field but silently skips empty ones, hence the length check
                values = np.fromstring(rest, dtype=np.int64, sep="\t")
            except ValueError:
                raise _row_error(path, lineno, line, n_cells) from None
            if len(values) != n_cells or values.min(initial=0) < 0:
                raise _row_error(path, lineno, line, n_cells, first_row=lineno == 2)
            gene = _unquote(_decode(gene_b, path, lineno))
            all_synthetic &= gene.startswith(SYNTHETIC_GENE_PREFIX)
            kept = values[columns]
            totals += kept
            nonzero = np.flatnonzero(kept)
            if len(nonzero) >= min_cells and len(nonzero) > 0:
                genes.append(gene)
                rows_idx.append(nonzero.astype(np.int32))
                rows_val.append(kept[nonzero].astype(np.int32))
    if lineno == 1:
        raise RetinaDataError(
            f"{path}: the header is not followed by any gene rows. {COUNTS_FORMAT}"
        )
    if not genes:
        raise RetinaDataError(
            f"{path}: no gene is detected in min_cells={min_cells} of the {len(columns)} kept "
            f"cells. Lower min_cells."
        )
    # gene rows are the columns of a CSC (cells, genes) matrix: no transpose copy needed
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows_idx])])
    data, indices = np.concatenate(rows_val), np.concatenate(rows_idx)
    del rows_val, rows_idx
    x = sparse.csc_matrix((data, indices, indptr), shape=(len(columns), len(genes)))
    return x, genes, totals, all_synthetic


def _row_error(
    path: Path, lineno: int, line: bytes, n_cells: int, first_row: bool = False
) -> RetinaDataError:
    """Say exactly what is wrong with a data row of the counts file (error path only)."""
    fields = line.rstrip(b"\r\n").split(b"\t")
    if first_row and len(fields) == n_cells:
        corner = read_counts_header(path)[0]
        return RetinaDataError(
            f"{path}: the header has as many fields ({n_cells}) as the first data row, so its "
            f"first field {corner!r} is a corner field, which this format does not have. "
            f"{COUNTS_FORMAT} Fix: remove the first field of the header, e.g. "
            f"zcat in.txt.gz | sed '1s/^[^\\t]*\\t//' | gzip > out.txt.gz"
        )
    bad = next((f for f in fields[1:] if not f.strip().isdigit()), None)
    found = "" if bad is None else f", including {bad.decode('utf-8', 'replace')!r}"
    return RetinaDataError(
        f"{path}: line {lineno} has {len(fields)} fields{found}; expected {n_cells + 1}: a gene "
        f"symbol and a non-negative integer count for each of the {n_cells} cells named in "
        f"the header. {COUNTS_FORMAT} Fix: re-export the file, or check it is not truncated."
    )


# --------------------------------------------------------------------------- preprocessing


def normalize_sqrt(x: sparse.spmatrix, totals: np.ndarray) -> sparse.csc_matrix:
    """sqrt(count / total * median(total)) per cell (rows of x), as float64; zeros stay zeros.

    The result shares x's index arrays (for a CSC x), so only the values are a new copy.
    """
    x = sparse.csc_matrix(x)
    totals = np.asarray(totals, dtype=np.float64)
    scale = np.median(totals) / np.maximum(totals, 1.0)  # an empty cell stays all zeros
    data = np.sqrt(x.data * scale[x.indices])  # CSC: indices are the rows, i.e. cells
    return sparse.csc_matrix((data, x.indices, x.indptr), shape=x.shape)


def randomized_pca(
    x: sparse.spmatrix, k: int, n_oversamples: int = 10, n_iter: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k principal component scores of the rows of x, and their explained variance ratio.

    Randomized SVD (Halko, Martinsson & Tropp 2011, Algorithms 4.4 and 5.1) of the centred
    matrix x - 1 mean^T, applied as two products so that x stays sparse: the centred matrix
    of ~28k cells x ~13k genes would take ~3 GB dense. Power iterations (n_iter) sharpen the
    spectrum; the fixed seed makes the result repeatable. Signs follow sklearn's svd_flip
    (the largest |score| of each component is positive).
    """
    with _single_threaded_blas():
        return _randomized_pca(x, k, n_oversamples, n_iter, seed)


def _randomized_pca(
    x: sparse.spmatrix, k: int, n_oversamples: int, n_iter: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if x.format not in ("csr", "csc"):
        x = x.tocsc()
    x.sum_duplicates()  # canonical: x.data holds each nonzero once
    n, g = x.shape
    mean = np.asarray(x.mean(axis=0)).ravel()  # (g,)

    def centred_matmul(m: np.ndarray) -> np.ndarray:  # (x - 1 mean^T) @ m, m: (g, l)
        return x @ m - mean @ m

    def centred_rmatmul(m: np.ndarray) -> np.ndarray:  # (x - 1 mean^T)^T @ m, m: (n, l)
        return x.T @ m - np.outer(mean, m.sum(axis=0))

    rng = np.random.default_rng(seed)
    width = min(k + n_oversamples, n, g)
    q, _ = np.linalg.qr(centred_matmul(rng.standard_normal((g, width))))  # (n, width)
    for _ in range(n_iter):  # QR between products keeps the small singular values accurate
        z, _ = np.linalg.qr(centred_rmatmul(q))
        q, _ = np.linalg.qr(centred_matmul(z))
    u_small, s, _ = np.linalg.svd(centred_rmatmul(q).T, full_matrices=False)  # of q^T (x - ..)
    u = (q @ u_small)[:, :k]
    s = s[:k]
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(k)])
    scores = u * (s * np.where(signs == 0, 1.0, signs))  # (n, k)
    total_ss = float(x.data @ x.data - n * mean @ mean)  # sum of squares about the mean
    return scores, s**2 / max(total_ss, np.finfo(np.float64).tiny)


def _single_threaded_blas():
    """Limit BLAS to one thread: OpenBLAS's threaded QR of these tall, thin matrices runs
    ~20x slower than one thread when other processes share the cores (measured on 2 cores),
    and one thread takes well under a second even at the real data's size."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# ----------------------------------------------------------------------------------- cache


def _cache_path(
    counts_path: Path,
    clusters_path: Path,
    cache_dir: str | os.PathLike | None,
    classes: int | Sequence[str] | None,
    min_cells: int,
    pca_dim: int,
    standardize: bool,
) -> Path:
    """<counts file>.ucl-cache-<hash>.npz; the hash covers everything the cache depends on."""
    if classes is not None and not isinstance(classes, int | str):
        classes = [str(c) for c in classes]  # e.g. an omegaconf ListConfig
    stats = {}
    for role, p in (("counts", counts_path), ("clusters", clusters_path)):
        st = p.stat()
        stats[role] = [p.name, st.st_size, st.st_mtime_ns]
    key = {
        "version": CACHE_VERSION,
        "files": stats,
        "classes": classes,
        "min_cells": min_cells,
        "pca_dim": pca_dim,
        "standardize": standardize,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else counts_path.parent
    return folder / f"{counts_path.name}.ucl-cache-{digest}.npz"


_CACHE_KEYS = (
    "features", "labels", "class_names", "cells", "n_genes_kept", "synthetic",
    "explained_variance_ratio",
)  # fmt: skip


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when there is no cache or it is unreadable (warned)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            pre = {k: z[k] for k in _CACHE_KEYS}
        n = len(pre["labels"])
        if pre["features"].ndim != 2 or pre["features"].shape[0] != n or len(pre["cells"]) != n:
            raise ValueError("arrays of inconsistent shapes")
        if n and not 0 <= pre["labels"].min() <= pre["labels"].max() < len(pre["class_names"]):
            raise ValueError("labels out of range")
        return pre
    except Exception as e:  # any damage at all means: rebuild from the text files
        warnings.warn(
            f"Ignoring the unreadable cache {path} ({type(e).__name__}: {e}); "
            f"rebuilding it from the data files.",
            stacklevel=3,
        )
        return None


def _write_cache(path: Path, pre: dict[str, np.ndarray]) -> None:
    """Write atomically (temp file + rename), so a crash never leaves a half-written cache."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **pre)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # e.g. a read-only data folder: the load still works, just slower
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        warnings.warn(
            f"Could not write the cache {path} ({e}); pass cache_dir= a writable folder to cache.",
            stacklevel=3,
        )


# --------------------------------------------------------------------------------- helpers


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


@contextlib.contextmanager
def _lines(path: Path, fmt: str) -> Iterator[BinaryIO]:
    """The file as binary lines, gunzipped on the fly when it starts with the gzip magic.

    A missing, truncated or corrupt file, found here or while reading in the with-block,
    raises RetinaDataError naming the file and the expected format `fmt`.
    """
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if gz else contextlib.nullcontext(raw) as f:
                yield f
    except RetinaDataError:
        raise
    except FileNotFoundError:
        raise RetinaFileNotFoundError(f"{path}: no such file. {fmt}") from None
    except (EOFError, OSError, zlib.error) as e:
        raise RetinaDataError(
            f"{path}: cannot be read to the end ({type(e).__name__}: {e}). A truncated or "
            f"corrupt copy? Download it again. {fmt}"
        ) from e


def _decode(line: bytes, path: Path, lineno: int, fmt: str = COUNTS_FORMAT) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise RetinaDataError(f"{path}: line {lineno} is not utf-8 text. {fmt}") from None


def _fields(line: str) -> list[str]:
    return line.rstrip("\r\n").split("\t")


def _unquote(name: str) -> str:
    # R's write.table quotes names by default; a quoted copy of the file should still load
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def _is_doublet(label: str) -> bool:
    return label == DOUBLET_LABEL or "doublet" in label.lower()


def _short(label: str) -> str:
    """'RBC (Rod Bipolar cell)' -> 'RBC'."""
    return label.split(" (", 1)[0].strip()


def _clip(fields: list[str], n: int = 4) -> str:
    return repr(fields[:n])[:-1] + (", ...]" if len(fields) > n else "]")


def _examples(names: Sequence[str], n: int = 3) -> str:
    return ", ".join(repr(x) for x in list(names)[:n])
