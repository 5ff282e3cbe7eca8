"""Pairwise Euclidean distances, vectorised, and k-nearest-neighbour distances.

Squared distances use ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b, computed by one float64
matrix product of augmented rows [a, ||a||^2, 1] . [-2 b, 1, ||b||^2], then clamped.

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


def _centered(X: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X - center (C order) and its squared row norms."""
    Xc = np.subtract(X, center)
    return Xc, np.einsum("ij,ij->i", Xc, Xc)


def _mm_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T through torch (MKL), sharing memory with numpy both ways."""
    return torch.mm(torch.from_numpy(a), torch.from_numpy(b).T).numpy()


def _augment(X: np.ndarray, scale: float, *columns: np.ndarray | float) -> np.ndarray:
    """[scale * X, c1, c2, ...] as one C-ordered array: extra columns let the matrix
    product add the norm terms itself, sparing full passes over the (n, m) result."""
    out = np.empty((len(X), X.shape[1] + len(columns)))
    np.multiply(X, scale, out=out[:, : X.shape[1]])
    for j, column in enumerate(columns, start=X.shape[1]):
        out[:, j] = column
    return out


def sq_dists(A: np.ndarray, B: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Squared distances ``D[i, j] = ||A_i - B_j||^2``, float64 array of shape (n, m)."""
    if center is None:
        center = pooled_center(A, B)
    a, na = _centered(A, center)
    b, nb = _centered(B, center)
    # [a_i, ||a_i||^2, 1] . [-2 b_j, 1, ||b_j||^2] = ||a_i - b_j||^2 in one product.
    D = _mm_t(_augment(a, 1.0, na, 1.0), _augment(b, -2.0, 1.0, nb))
    return np.maximum(D, 0.0, out=D)


def within_sq_dists(A: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Squared distances within one sample: exactly symmetric with a zero diagonal."""
    if center is None:
        center = A.mean(axis=0)
    a, na = _centered(A, center)
    D = _mm_t(_augment(a, 1.0, na, 1.0), _augment(a, -2.0, 1.0, na))
    # The product rounds D[i, j] and D[j, i] differently; their mean is exactly symmetric
    # (numpy buffers the overlapping transpose).
    D += D.T
    D *= 0.5
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
        else:  # [-2 y_j, ||y_j||^2] for the centred reference, reused by every query
            self.center = Y.mean(axis=0)
            y, ny = _centered(Y, self.center)
            self.right = _augment(y, -2.0, ny)

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
            # [x, 1] . [-2 y, ||y||^2] = ||x - y||^2 - ||x||^2: the row constant ||x||^2
            # does not change the ranking.
            x = np.subtract(X[start:stop], self.center)
            D = _mm_t(_augment(x, 1.0, 1.0), self.right)
            cand = D.argpartition(K - 1, axis=1)[:, :K] if K < m else np.indices(D.shape)[1]
            # Exact distances of the candidates: duplicates come out as exactly 0 and
            # close pairs keep their digits, which the trick above would lose.
            diff = self.Y[cand]  # (rows, K, d), then differences in place
            np.subtract(diff, X[start:stop, None, :], out=diff)
            exact = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            out[start:stop] = np.sort(exact, axis=1)
        return out
