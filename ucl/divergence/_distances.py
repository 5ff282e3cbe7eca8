"""Pairwise Euclidean distances, vectorised, and k-nearest-neighbour distances.

Squared distances use ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b: one float64 matrix
product (torch/MKL between two samples; numpy's syrk within one), then in-place numpy
arithmetic. Elementwise work stays in numpy on purpose: on a shared 2-core machine
torch's multi-threaded elementwise kernels stall waiting for a busy core (10-30x slower
than numpy's single thread), while the BLAS products are where threads pay.

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


def _centered(X: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X - center (C order) and its squared row norms."""
    Xc = np.subtract(X, center)
    return Xc, np.einsum("ij,ij->i", Xc, Xc)


def _mm_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T through torch (MKL), sharing memory with numpy both ways."""
    return torch.mm(torch.from_numpy(a), torch.from_numpy(b).T).numpy()


def sq_dists(A: np.ndarray, B: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Squared distances ``D[i, j] = ||A_i - B_j||^2``, float64 array of shape (n, m)."""
    if center is None:
        center = pooled_center(A, B)
    a, na = _centered(A, center)
    b, nb = _centered(B, center)
    D = _mm_t(a, b)
    D *= -2.0
    D += na[:, None]
    D += nb[None, :]
    return np.maximum(D, 0.0, out=D)


def within_sq_dists(A: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Squared distances within one sample: exactly symmetric with a zero diagonal."""
    if center is None:
        center = A.mean(axis=0)
    a, na = _centered(A, center)
    # numpy sends a @ a.T to BLAS syrk: half the flops of a general product, and an
    # exactly symmetric result. (na_i + na_j) - 2 G_ij keeps that symmetry bit for bit.
    G = a @ a.T
    G *= -2.0
    D = np.add.outer(na, na)
    D += G
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, 0.0)
    return D


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
        else:  # centred reference sample and its norms, reused by every query
            self.center = Y.mean(axis=0)
            self.y, self.ny = _centered(Y, self.center)

    def query(self, X: np.ndarray, K: int) -> np.ndarray:
        """Distances (len(X), K), each row ascending; K <= len(Y)."""
        if self.method == "tree":
            dist, _ = self.tree.query(X, k=K, workers=-1)
            return np.asarray(dist, dtype=np.float64).reshape(len(X), K)
        return self._brute(X, K)

    def _brute(self, X: np.ndarray, K: int) -> np.ndarray:
        m, d = self.Y.shape
        out = np.empty((len(X), K))
        # Bound both the (rows, m) distance block and the (rows, K, d) difference array.
        rows = max(1, min(CHUNK_ELEMENTS // m, CHUNK_ELEMENTS // (K * d)))
        for start in range(0, len(X), rows):
            stop = min(start + rows, len(X))
            # ||x - y||^2 up to the row constant ||x||^2, which does not change the ranking.
            D = _mm_t(np.subtract(X[start:stop], self.center), self.y)
            D *= -2.0
            D += self.ny[None, :]
            cand = D.argpartition(K - 1, axis=1)[:, :K] if K < m else np.indices(D.shape)[1]
            # Exact distances of the candidates: duplicates come out as exactly 0 and
            # close pairs keep their digits, which the trick above would lose.
            diff = self.Y[cand]  # (rows, K, d), then differences in place
            np.subtract(diff, X[start:stop, None, :], out=diff)
            exact = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            out[start:stop] = np.sort(exact, axis=1)
        return out
