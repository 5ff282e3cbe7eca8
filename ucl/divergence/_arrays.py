"""Input conversion and validation shared by the divergence measures.

Every public measure takes samples as n-by-d arrays (one sample per row), either numpy
arrays or torch tensors. They are converted once, here, to C-contiguous float64 numpy
arrays; the measures hand them to torch (zero-copy) where a matrix product pays off.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

FLATTEN_HINT = "flatten each sample first, e.g. X.reshape(len(X), -1)"


def as_samples(X, name: str) -> np.ndarray:
    """Return ``X`` as a C-contiguous float64 array of shape (n, d).

    A 1-D array is read as n samples of dimension 1. Raises ValueError for anything
    else that is not a finite, non-empty matrix, saying what was given and how to fix it.
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a numeric n-by-d array or tensor; got {type(X).__name__} "
            f"that numpy cannot convert to float64 ({err})"
        ) from err
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be an n-by-d array (one sample per row) or a 1-D array of scalar "
            f"samples; got {arr.ndim}-D with shape {arr.shape}: {FLATTEN_HINT}"
        )
    n, d = arr.shape
    if n == 0 or d == 0:
        raise ValueError(
            f"{name} is empty (shape {arr.shape}); pass at least one sample with at least "
            "one coordinate"
        )
    # A finite sum proves every entry finite in one allocation-free pass; only otherwise
    # (a NaN/inf, or finite entries whose sum overflows) look at the entries themselves.
    with np.errstate(over="ignore"):
        total = arr.sum()
    if not math.isfinite(total):
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            i, j = bad[0]
            raise ValueError(
                f"{name} has {len(bad)} non-finite entries (NaN or inf), the first at row "
                f"{i}, column {j} (value {arr[i, j]}); drop or impute those samples first"
            )
    return np.ascontiguousarray(arr)


def as_pair(P, Q, names: tuple[str, str] = ("P", "Q")) -> tuple[np.ndarray, np.ndarray]:
    """Convert two samples with :func:`as_samples` and check they share the dimension d."""
    A = as_samples(P, names[0])
    B = as_samples(Q, names[1])
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same dimension d (number of columns); "
            f"got {names[0]} {A.shape} and {names[1]} {B.shape}. Samples are rows: pass "
            f"n-by-d and m-by-d arrays ({FLATTEN_HINT})"
        )
    return A, B


def same_sample(A: np.ndarray, B: np.ndarray) -> bool:
    """True when two converted samples are equal element for element.

    Used to share one distance block between them, so that a measure of a sample
    against itself is exactly zero rather than round-off.
    """
    if A is B:
        return True
    # Compare one row first: different samples almost always differ there already.
    return A.shape == B.shape and np.array_equal(A[0], B[0]) and np.array_equal(A, B)


def check_int(value, name: str, low: int, high: int | None = None, why: str = "") -> int:
    """Return ``value`` as an int after checking ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bounds}{why}; got {value}")
    return value


def check_positive(value, name: str, allow_zero: bool = False) -> float:
    """Return ``value`` as a float after checking it is finite and positive."""
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number; got {value!r}") from err
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        sign = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {sign} number; got {value}")
    return value
