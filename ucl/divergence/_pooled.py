"""The pooled sample's pair distances above the diagonal, computed once, in row bands.

P (n-by-d) and Q (m-by-d) are stacked into z = P u Q (N = n + m points). Every quantity
of a Gaussian MMD needs only the squared distances ||z_i - z_j||^2 for i < j: the median
heuristic takes their median, a Gaussian kernel their exponentials, and the kernel's
sums over the P-P, Q-Q and P-Q parts give MMD^2 (its diagonal is 1). So the product of
the augmented factors (see ``_distances``) is taken over the upper triangle only, band
by band, rows r0:r1 against columns r0:N: half the arithmetic of the full N-by-N Gram
matrix, plus the bands' small diagonal squares. Inside each band the entries on and below
the diagonal are set to +inf, so they fall outside every bracket of the median search
and give exp(-inf) = 0 in every kernel.

Elementwise work runs in torch: its float64 exp is about three times numpy's here.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ._distances import pooled_center, right_factor

# Rows per band: large enough for an efficient matrix product, small enough that the
# wasted lower halves of the diagonal squares stay a few percent of the work.
BAND_ROWS = 256
# Median search: a strided subsample of about this many pooled points guesses a bracket
# [lo, hi] of pair distances around the median, at its quantiles 0.5 -+ BRACKET_HALF_WIDTH;
# the exact median is then selected among the pairs inside. If the guess misses, the full
# selection runs instead, so these only affect speed.
BRACKET_POINTS = 256
BRACKET_HALF_WIDTH = 0.05
_LARGEST = float(np.finfo(np.float64).max)  # an upper bracket that leaves +inf out


@functools.lru_cache(maxsize=8)
def _on_or_below_diagonal(b: int) -> torch.Tensor:
    return torch.ones(b, b, dtype=torch.bool).tril()


class PooledBands:
    """Squared pair distances of the pooled sample, i < j, as row bands of torch tensors.

    ``bands`` holds (kind, D, split): kind "P" for rows of P (columns < split are P-P
    pairs, the rest P-Q pairs), "Q" for rows of Q (all Q-Q pairs).
    """

    def __init__(self, P: np.ndarray, Q: np.ndarray, band_rows: int = BAND_ROWS):
        n, m, d = len(P), len(Q), P.shape[1]
        N = n + m
        center = pooled_center(P, Q)
        left = np.empty((N, d + 2))  # rows [z - center, ||z - center||^2, 1]
        np.subtract(P, center, out=left[:n, :d])
        np.subtract(Q, center, out=left[n:, :d])
        left[:, d] = np.einsum("ij,ij->i", left[:, :d], left[:, :d])
        left[:, d + 1] = 1.0
        self.n, self.m = n, m
        self.left, self.right = torch.from_numpy(left), torch.from_numpy(right_factor(left))
        self.bands: list[tuple[str, torch.Tensor, int]] = []
        for kind, start, stop in (("P", 0, n), ("Q", n, N)):
            for r0 in range(start, stop, band_rows):
                r1 = min(r0 + band_rows, stop)
                D = torch.mm(self.left[r0:r1], self.right[r0:].T)
                D.clamp_(min=0.0)  # round-off of the distance trick
                D[:, : r1 - r0].masked_fill_(_on_or_below_diagonal(r1 - r0), math.inf)
                self.bands.append((kind, D, n - r0))

    @property
    def pairs(self) -> int:
        N = self.n + self.m
        return N * (N - 1) // 2

    def _pair_values(self, lo: float, hi: float) -> tuple[int, np.ndarray]:
        """How many pair values lie below lo, and those in [lo, hi] (hi finite)."""
        below, inside = 0, []
        for _, D, _ in self.bands:
            below += int(torch.count_nonzero(D < lo))
            inside.append(D[(D >= lo) & (D <= hi)].numpy())
        return below, np.concatenate(inside)

    def median_distance(self) -> float:
        """Median Euclidean distance over the pooled pairs i < j, exact (for an even
        number of pairs the mean of the two middle distances)."""
        N = self.n + self.m
        ranks = ((self.pairs - 1) // 2, self.pairs // 2)  # middle order statistics, 0-based
        if N > 2 * BRACKET_POINTS:
            s = -(-N // BRACKET_POINTS)  # ceil: stride of the pooled subsample
            small = torch.mm(self.left[::s], self.right[::s].T).clamp_(min=0.0).numpy()
            guess = small[np.triu_indices(len(small), 1)]
            lo, hi = np.quantile(guess, [0.5 - BRACKET_HALF_WIDTH, 0.5 + BRACKET_HALF_WIDTH])
            below, inside = self._pair_values(lo, hi)
            if below <= ranks[0] and ranks[1] < below + len(inside):
                middle = np.partition(inside, (ranks[0] - below, ranks[1] - below))
                return float(np.sqrt(middle[[ranks[0] - below, ranks[1] - below]]).mean())
        _, values = self._pair_values(-math.inf, _LARGEST)
        middle = np.partition(values, ranks)[list(ranks)]
        return float(np.sqrt(middle).mean())

    def gaussian_bands(self, sigmas: tuple[float, ...]):
        """Per band (kind, K, split): the mean of the Gaussian kernels exp(-D / (2 s^2))
        over the bandwidths s in ``sigmas`` (0 on and below the diagonal)."""
        for kind, D, split in self.bands:
            K = torch.mul(D, -0.5 / sigmas[0] ** 2).exp_()
            for s in sigmas[1:]:
                K.add_(torch.mul(D, -0.5 / s**2).exp_())
            if len(sigmas) > 1:
                K.div_(len(sigmas))
            yield kind, K, split

    def gaussian_sums(self, sigmas: tuple[float, ...]) -> tuple[float, float, float]:
        """Kernel sums over the P-P pairs i < j, the Q-Q pairs i < j and all P-Q pairs."""
        pp = qq = pq = 0.0
        for kind, K, split in self.gaussian_bands(sigmas):
            if kind == "P":
                pp += float(K[:, :split].sum())
                pq += float(K[:, split:].sum())
            else:
                qq += float(K.sum())
        return pp, qq, pq

    def gaussian_matrix(self, sigmas: tuple[float, ...]) -> np.ndarray:
        """The full pooled (N, N) kernel matrix, exactly symmetric, unit diagonal."""
        N = self.n + self.m
        K = np.zeros((N, N))
        row = 0
        for _, band, _ in self.gaussian_bands(sigmas):
            K[row : row + len(band), row:] = band.numpy()
            row += len(band)
        K += K.T
        np.fill_diagonal(K, 1.0)
        return K
