"""Pairwise Euclidean distances, vectorised, and k-nearest-neighbour distances.

Squared distances use ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b, one float64 matrix
product (torch/MKL between two samples; numpy's syrk within one). The cancellation in
that formula grows with the norms, so both samples are first centred at a common point
(their pooled mean), and the round-off that makes a few entries slightly negative is
clamped to 0. Where a distance is used on its own (nearest neighbours, matched costs)
it is recomputed from the coordinates.
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


def _centered(X: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """X - center (numpy, C order) and its squared row norms (torch)."""
    Xc = np.subtract(X, center)
    return Xc, torch.from_numpy(np.einsum("ij,ij->i", Xc, Xc))


def sq_dists(A: np.ndarray, B: np.ndarray, center: np.ndarray | None = None) -> torch.Tensor:
    """Squared distances ``D[i, j] = ||A_i - B_j||^2``, float64 tensor of shape (n, m)."""
    if center is None:
        center = pooled_center(A, B)
    a, na = _centered(A, center)
    b, nb = _centered(B, center)
    # addmm: na_i - 2 a_i.b_j in one BLAS call, then + nb_j in place.
    D = torch.addmm(na[:, None], torch.from_numpy(a), torch.from_numpy(b).T, alpha=-2.0)
    return D.add_(nb[None, :]).clamp_(min=0.0)


def within_sq_dists(A: np.ndarray, center: np.ndarray | None = None) -> torch.Tensor:
    """Squared distances within one sample: exactly symmetric with a zero diagonal."""
    if center is None:
        center = A.mean(axis=0)
    a, na = _centered(A, center)
    # numpy sends a @ a.T to BLAS syrk: half the flops of a general product, and an
    # exactly symmetric result. (na_i + na_j) - 2 G_ij keeps that symmetry bit for bit.
    G = torch.from_numpy(a @ a.T)
    D = (na[:, None] + na[None, :]).add_(G, alpha=-2.0).clamp_(min=0.0)
    D.fill_diagonal_(0.0)
    return D


class NeighbourSearch:
    """Sorted distances from query points to their K nearest points of a reference sample.

    ``method`` is "tree" (scipy cKDTree, exact distances), "brute" (the distance trick in
    torch to pick candidates, then exact distances recomputed from the coordinates of
    those candidates) or "auto" (tree for d <= TREE_MAX_DIM, else brute).
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
        else:  # centred reference sample, its norms and its transpose, reused by every query
            self.center = Y.mean(axis=0)
            y, self.ny = _centered(Y, self.center)
            self.yt = torch.from_numpy(np.ascontiguousarray(y.T))

    def query(self, X: np.ndarray, K: int) -> np.ndarray:
        """Distances (len(X), K), each row ascending; K <= len(Y)."""
        if self.method == "tree":
            dist, _ = self.tree.query(X, k=K, workers=-1)
            return np.asarray(dist, dtype=np.float64).reshape(len(X), K)
        return self._brute(X, K)

    def _brute(self, X: np.ndarray, K: int) -> np.ndarray:
        m, d = self.Y.shape
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(self.Y)
        out = np.empty((len(X), K))
        # Bound both the (rows, m) distance block and the (rows, K, d) difference tensor.
        rows = max(1, min(CHUNK_ELEMENTS // m, CHUNK_ELEMENTS // (K * d)))
        for start in range(0, len(X), rows):
            stop = min(start + rows, len(X))
            x = torch.from_numpy(np.subtract(X[start:stop], self.center))
            # ||x - y||^2 up to the row constant ||x||^2, which does not change the ranking.
            D = torch.addmm(self.ny[None, :], x, self.yt, alpha=-2.0)
            cand = torch.topk(D, K, dim=1, largest=False, sorted=False).indices
            # Exact distances of the candidates: duplicates come out as exactly 0 and
            # close pairs keep their digits, which the trick above would lose.
            exact = torch.linalg.vector_norm(Xt[start:stop, None, :] - Yt[cand], dim=2)
            out[start:stop] = torch.sort(exact, dim=1).values.numpy()
        return out
