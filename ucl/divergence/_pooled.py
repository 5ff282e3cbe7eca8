"""The pooled sample's pair distances above the diagonal, computed once, in one buffer.

P (n-by-d) and Q (m-by-d) are stacked into z = P u Q (N = n + m points). Every quantity
of a Gaussian MMD needs only the squared distances ||z_i - z_j||^2 for i < j: the median
heuristic takes their median, a Gaussian kernel their exponentials, and the kernel's
sums over the P-P, Q-Q and P-Q parts give MMD^2 (its diagonal is 1). So the product of
the augmented factors (see ``_distances``) is taken over the upper triangle only: the
P-Q block whole, and the P-P and Q-Q blocks in row bands, rows r0:r1 against columns
r0 onwards. That is half the arithmetic of the full N-by-N Gram matrix, plus the bands'
small diagonal squares, whose entries on and below the diagonal are set to +inf: they
fall outside every bracket of the median search and give exp(-inf) = 0 in every kernel.

All parts live in one flat float64 buffer, within-sample bands first, then the P-Q block,
so each elementwise step (clamp, compare, exp, sum) is one call over the whole buffer:
exp in torch, whose float64 exp is about three times numpy's here; everything else in
numpy, single-threaded: torch's threaded clamp, comparisons and sums were several times
slower on a 2-core machine shared with other jobs (threads that wait for a core).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ._distances import pooled_center, right_factor

# Bands per sample: with k bands the within-sample products cost (k + 1) / (2k) of full
# blocks (2 bands: 75%, the whole MMD 62.5% of the full Gram matrix). More bands mean more
# products, each waking torch's threads, which costs more than it saves beside other jobs.
BANDS_PER_SAMPLE = 2
# Median search: a strided subsample of about this many pooled points guesses a bracket
# [lo, hi] of pair distances around the median, at its quantiles 0.5 -+ BRACKET_HALF_WIDTH;
# the exact median is then selected among the pairs inside. If the guess misses, the full
# selection runs instead, so these only affect speed.
BRACKET_POINTS = 256
BRACKET_HALF_WIDTH = 0.05
_LARGEST = float(np.finfo(np.float64).max)  # an upper bracket that leaves +inf out


@functools.lru_cache(maxsize=8)
def _on_or_below_diagonal(b: int) -> np.ndarray:
    return np.tri(b, dtype=bool)


class PooledBands:
    """Squared pair distances of the pooled sample, i < j, in one flat buffer ``D``.

    ``bands`` lists (kind, r0, r1, offset): rows r0:r1 of the pooled sample against
    columns r0 up to the end of their own sample (kind "P" or "Q"), stored row-major at
    ``D[offset:]``; the P-Q block (n, m) follows at ``D[within:]``.
    """

    def __init__(self, P: np.ndarray, Q: np.ndarray):
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
        self.bands: list[tuple[str, int, int, int]] = []
        offset = 0
        for kind, start, stop in (("P", 0, n), ("Q", n, N)):
            band_rows = -(-(stop - start) // BANDS_PER_SAMPLE)  # ceil
            for r0 in range(start, stop, band_rows):
                r1 = min(r0 + band_rows, stop)
                self.bands.append((kind, r0, r1, offset))
                offset += (r1 - r0) * (stop - r0)
        self.within = offset
        self.D = torch.empty(offset + n * m, dtype=torch.float64)
        for kind, r0, r1, at in self.bands:
            stop = n if kind == "P" else N
            out = self.D[at : at + (r1 - r0) * (stop - r0)].view(r1 - r0, stop - r0)
            torch.mm(self.left[r0:r1], self.right[r0:stop].T, out=out)
            out.numpy()[:, : r1 - r0][_on_or_below_diagonal(r1 - r0)] = math.inf
        torch.mm(self.left[:n], self.right[n:].T, out=self.D[self.within :].view(n, m))
        flat = self.D.numpy()
        np.maximum(flat, 0.0, out=flat)  # round-off of the distance trick

    @property
    def pairs(self) -> int:
        N = self.n + self.m
        return N * (N - 1) // 2

    def _pair_values(self, lo: float, hi: float) -> tuple[int, np.ndarray]:
        """How many pair values lie below lo, and those in [lo, hi] (hi finite)."""
        D = self.D.numpy()  # numpy's comparisons are the faster ones here
        below = int(np.count_nonzero(D < lo))
        return below, D[(D >= lo) & (D <= hi)]

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
                wanted = (ranks[0] - below, ranks[1] - below)
                middle = np.partition(inside, wanted)[list(wanted)]
                return float(np.sqrt(middle).mean())
        _, values = self._pair_values(-math.inf, _LARGEST)
        middle = np.partition(values, ranks)[list(ranks)]
        return float(np.sqrt(middle).mean())

    def gaussian(self, sigmas: tuple[float, ...]) -> torch.Tensor:
        """The buffer's kernel values: the mean of exp(-D / (2 s^2)) over s in ``sigmas``
        (0 on and below the diagonal)."""
        K = torch.mul(self.D, -0.5 / sigmas[0] ** 2).exp_()
        if len(sigmas) > 1:
            term = torch.empty_like(K)
            for s in sigmas[1:]:
                K.add_(torch.mul(self.D, -0.5 / s**2, out=term).exp_())
            K.div_(len(sigmas))
        return K

    def sums(self, K: torch.Tensor) -> tuple[float, float, float]:
        """Sums of the buffer's kernel values K (from :meth:`gaussian`) over the P-P pairs
        i < j, the Q-Q pairs i < j and all P-Q pairs."""
        K = K.numpy()  # numpy's single-threaded sums: see above
        q0 = next((at for kind, _, _, at in self.bands if kind == "Q"), self.within)
        return float(K[:q0].sum()), float(K[q0 : self.within].sum()), float(K[self.within :].sum())

    def matrix(self, K: torch.Tensor) -> np.ndarray:
        """The full pooled (N, N) kernel matrix from the buffer's kernel values K, exactly
        symmetric, unit diagonal."""
        n, N = self.n, self.n + self.m
        flat = K.numpy()
        K = np.zeros((N, N))
        for kind, r0, r1, at in self.bands:
            stop = n if kind == "P" else N
            K[r0:r1, r0:stop] = flat[at : at + (r1 - r0) * (stop - r0)].reshape(r1 - r0, -1)
        K[:n, n:] = flat[self.within :].reshape(n, self.m)
        K += K.T
        np.fill_diagonal(K, 1.0)
        return K
