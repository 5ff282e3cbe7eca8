"""The preprocessed arrays (steps 1-3 of `ucl.data.retina`) in an npz file beside the
counts file, keyed by the parameters and the two files' sizes and modification times."""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ucl.lifecycle import atomic_write

# Bump when the preprocessing changes, so caches written by older code are not reused.
CACHE_VERSION = 2


def cache_path(
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


CACHE_KEYS = (
    "features", "labels", "class_names", "cells", "n_genes_kept", "synthetic",
    "explained_variance_ratio",
)  # fmt: skip


def read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when there is no cache or it is unreadable (warned)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            pre = {k: z[k] for k in CACHE_KEYS}
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


def write_cache(path: Path, pre: dict[str, np.ndarray]) -> None:
    """Write atomically, so a crash never leaves a half-written cache."""
    buffer = io.BytesIO()  # a few MB even for the real data: 100 float32 features per cell
    np.savez(buffer, **pre)
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as e:  # e.g. a read-only data folder: the load still works, just slower
        warnings.warn(
            f"Could not write the cache {path} ({e}); pass cache_dir= a writable folder to cache.",
            stacklevel=3,
        )
