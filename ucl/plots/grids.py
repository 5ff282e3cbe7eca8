"""Image grids (tensors for `Tracker.image`, saved with torchvision's save_image)."""

from __future__ import annotations

import torch

PAD = 2  # pixels between images


def as_images(x: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """Flat rows (N, C*H*W) -> images (N, C, H, W) in [0, 1], on the CPU."""
    return x.detach().cpu().reshape(len(x), *image_shape).clamp(0, 1)


def pairs_grid(
    originals: torch.Tensor, reconstructions: torch.Tensor, image_shape: tuple[int, ...]
) -> torch.Tensor:
    """Each original beside its reconstruction: row k holds (original k, reconstruction k).
    (C, H', W') for save_image."""
    a, b = as_images(originals, image_shape), as_images(reconstructions, image_shape)
    interleaved = torch.stack([a, b], dim=1).flatten(0, 1)  # (2N, C, H, W): o0 r0 o1 r1 ...
    from torchvision.utils import make_grid  # here: importing torchvision costs seconds

    return make_grid(interleaved, nrow=2, padding=PAD)


def rows_grid(rows: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """A (R, K, C*H*W) stack of R strips of K images -> one grid, a strip per row."""
    r, k = rows.shape[:2]
    from torchvision.utils import make_grid  # here: importing torchvision costs seconds

    return make_grid(as_images(rows.reshape(r * k, -1), image_shape), nrow=k, padding=PAD)
