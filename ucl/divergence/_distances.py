"""Pairwise Euclidean distances, vectorised, and k-nearest-neighbour distances.

Squared distances use ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b, computed by one float64
matrix product of augmented rows [a, ||a||^2, 1] . [-2 b, 1, ||b||^2], then clamped.
Within one sample the matrix is symmetric only up to the last bit; code that needs one
value per pair reads the upper triangle (i < j).

Threads: every matrix product goes through torch (MKL), so the whole package obeys
``torch.set_num_threads`` (the project's ``threads`` knob), and elementwise work stays
in numpy, single-threaded. numpy's own BLAS (a second OpenBLAS thread pool) is kept out:
on a busy 2-core machine the two pools' spinning threads starve each other, measured
2-3x slower; torch's threaded elementwise kernels stall the same way on small arrays.

The cancellation in the formula grows with the norms, so both samples are first
centred at a common point (their pooled mean), and the round-off that makes a few
entries slightly negative is clamped to 0. Where a distance is used on its own (nearest
neighbours, matched costs) it is recomputed from the coordinates.
"""

from __future__ import annotations

import numpy as np
import torch

# Row chunks of at most this many entries (2**22 float64 = 32 MiB): the kNN search and the
# permutation test work through their matrices in such chunks, so memory stays bounded.
CHUNK_ELEMENTS = 2**22

# kNN search: a k-d tree (exact, O(n log n)) up to this dimension, brute force above,
# where k-d trees degrade to scanning every point anyway.
TREE_MAX_DIM = 10


def pooled_center(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Mean of the pooled sample A u B, the common centre for the distance trick."""
    return (A.sum(axis=0) + B.sum(axis=0)) / (len(A) + len(B))


def _mm_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T through torch (MKL), sharing memory with numpy both ways."""
    return torch.mm(torch.from_numpy(a), torch.from_numpy(b).T).numpy()


def left_factor(X: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Rows [x, ||x||^2, 1] of the centred sample x = X - center, shape (n, d + 2)."""
    n, d = X.shape
    left = np.empty((n, d + 2))
    x = np.subtract(X, center, out=left[:, :d])
    left[:, d] = np.einsum("ij,ij->i", x, x)
    left[:, d + 1] = 1.0
    return left


def right_factor(left: np.ndarray) -> np.ndarray:
    """Rows [-2 x, 1, ||x||^2] from a left factor: left_i . right_j = ||x_i - x_j||^2.

    The extra columns let the matrix product add the norm terms itself, sparing full
    passes over the (n, m) result.
    """
    d = left.shape[1] - 2
    right = np.empty_like(left)
    np.multiply(left[:, :d], -2.0, out=right[:, :d])
    right[:, d] = 1.0
    right[:, d + 1] = left[:, d]
    return right


def factor_sq_dists(left: np.ndarray, right: np.ndarray, within: bool = False) -> np.ndarray:
    """Squared distances from factors, clamped at 0; ``within`` zeroes the diagonal.

    D[i, j] and D[j, i] of a within-sample matrix may differ in the last bit (the product
    rounds them separately); callers that need one value per pair read i < j.
    """
    D = _mm_t(left, right)
    np.maximum(D, 0.0, out=D)
    if within:
        np.fill_diagonal(D, 0.0)
    return D


def sq_dists(A: np.ndarray, B: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Squared distances ``D[i, j] = ||A_i - B_j||^2``, float64 array of shape (n, m)."""
    if center is None:
        center = pooled_center(A, B)
    return factor_sq_dists(left_factor(A, center), right_factor(left_factor(B, center)))


def within_sq_dists(A: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Squared distances within one sample, zero diagonal (see :func:`factor_sq_dists`)."""
    left = left_factor(A, A.mean(axis=0) if center is None else center)
    return factor_sq_dists(left, right_factor(left), within=True)


class NeighbourSearch:
    """Sorted distances from query points to their K nearest points of a reference sample.

    ``method`` is "tree" (scipy cKDTree, exact distances), "brute" (the distance trick,
    one BLAS product per row chunk, picks candidates whose exact distances are then
    recomputed from their coordinates) or "auto" (tree for d <= TREE_MAX_DIM, else brute).
    """

    def __init__(self, Y: np.ndarray, method: str = "auto"):
        if method not in ("auto", "tree", "brute"):
            raise ValueError(f"method must be 'auto', 'tree' or 'brute'; got {method!r}")
        if method == "auto":
            method = "tree" if Y.shape[1] <= TREE_MAX_DIM else "brute"
        self.Y, self.method = Y, method
        if method == "tree":
            from scipy.spatial import cKDTree

            self.tree = cKDTree(Y)
        else:  # right factor of the centred reference, reused by every query
            self.center = Y.mean(axis=0)
            self.right = right_factor(left_factor(Y, self.center))

    def query(self, X: np.ndarray, K: int) -> np.ndarray:
        """Distances (len(X), K), each row ascending; K <= len(Y)."""
        if self.method == "tree":
            dist, _ = self.tree.query(X, k=K, workers=torch.get_num_threads())
            return np.asarray(dist, dtype=np.float64).reshape(len(X), K)
        return self._brute(X, K)

    def _brute(self, X: np.ndarray, K: int) -> np.ndarray:
        m, d = self.Y.shape
        out = np.empty((len(X), K))
        # Bound both the (rows, m) distance block and the (rows, K, d) difference array.
        rows = max(1, min(CHUNK_ELEMENTS // m, CHUNK_ELEMENTS // (K * d)))
        for start in range(0, len(X), rows):
            stop = min(start + rows, len(X))
            D = _mm_t(left_factor(X[start:stop], self.center), self.right)
            cand = D.argpartition(K - 1, axis=1)[:, :K] if K < m else np.indices(D.shape)[1]
            # Exact distances of the candidates: duplicates come out as exactly 0 and
            # close pairs keep their digits, which the trick above would lose.
            diff = self.Y[cand]  # (rows, K, d), then differences in place
            np.subtract(diff, X[start:stop, None, :], out=diff)
            exact = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            out[start:stop] = np.sort(exact, axis=1)
        return out
