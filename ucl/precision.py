"""The arithmetic of training steps: `precision=fp32`, `bf16` or `auto`.

bf16 runs a step's forward pass under autocast: matrix products in bfloat16 (8-bit
mantissa), with the reductions that need range (softmax, losses) and the weights and their
updates kept in float32. On a CPU with native bfloat16 (avx512_bf16 or AMX) the products
of the GAN's MLPs run about 1.7x faster; on one without, bfloat16 is emulated and slower
than fp32, so `auto` picks it only where the hardware has it. Evaluations, figures and
samples always run in fp32.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

PRECISIONS = ("fp32", "bf16", "auto")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 matrix products natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check is not None and check())
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision a run uses, fp32 or bf16, for the config's `precision` on `device`."""
    if name not in PRECISIONS:
        raise ValueError(f"precision={name!r} is not one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if name == "bf16" and not native_bf16(device):
        warnings.warn(
            f"precision=bf16 on a {device.type} without native bfloat16: it is emulated and "
            f"slower than fp32; precision=auto picks fp32 here",
            stacklevel=2,
        )
    return name


def autocast(device: torch.device, precision: str):
    """A context for one training step's forward pass and loss (a no-op for fp32).

    Use one context per backward pass: autocast keeps its bfloat16 copies of the weights
    until the outermost context exits, so weights updated inside it would be seen stale."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
