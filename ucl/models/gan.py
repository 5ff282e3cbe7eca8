"""A generative adversarial network of two MLPs (Goodfellow et al. 2014, "Generative
Adversarial Nets"), and one training step of each player.

The problem set's losses, with D(x) = sigmoid(logit):

    L(D) = -1/2 E_x log D(x) - 1/2 E_z log(1 - D(G(z)))        (eq. 1, as a loss)
    L(G) = -1/2 E_z log D(G(z))                                 (the non-saturating loss, sec. 3)

are computed from logits a with -log sigmoid(a) = softplus(-a) and
-log(1 - sigmoid(a)) = softplus(a): finite for any finite logit, where log(sigmoid(a))
underflows to -inf once a < -104 in float32.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ucl.keys import MODELS
from ucl.lifecycle import as_given
from ucl.models.dropout import Dropout
from ucl.models.layers import dense_stack, layer_widths


def _mlp(
    sizes: Sequence[int], slope: float, dropout: float, batchnorm: bool = False
) -> nn.Sequential:
    """Linear layers between `sizes`, (batch norm,) LeakyReLU (and dropout) after every
    hidden one."""

    def after_hidden(width: int) -> list[nn.Module]:
        # leaky: a unit switched off for every sample still passes gradient to G
        return [
            *([nn.BatchNorm1d(width)] if batchnorm else []),
            nn.LeakyReLU(slope),
            *([Dropout(dropout)] if dropout else []),  # Dropout refuses p outside [0, 1)
        ]

    return dense_stack(sizes, after_hidden)


class Generator(nn.Module):
    """G: noise z (B, latent_dim) ~ N(0, I) -> images (B, out_features), pixels in [0, 1].

    The sigmoid output puts samples in the data's own range, so the same tensors go to
    the discriminator, to the classifier that judges them and to image files.
    `batchnorm` normalises every hidden layer over the batch (Ioffe & Szegedy 2015), as
    DCGAN's generator does (Radford et al. 2016): on MNIST it keeps an MLP generator from
    collapsing onto the easiest digit (all 1s) in its first epochs. In eval mode the layers
    use their running statistics, so a sample does not depend on the rest of its batch.
    """

    def __init__(
        self,
        latent_dim: int,
        widths: Sequence[int],
        out_features: int = 784,
        slope: float = 0.2,
        batchnorm: bool = False,
    ):
        super().__init__()
        if latent_dim < 1 or layer_widths(widths) is None:
            raise ValueError(
                f"Generator needs latent_dim >= 1 and widths >= 1, got latent_dim={latent_dim}, "
                f"widths={as_given(widths)}; e.g. model.latent_dim=64 "
                f"model.generator_widths=[256,512]"
            )
        self.latent_dim = latent_dim
        self.net = _mlp([latent_dim, *widths, out_features], slope, 0.0, batchnorm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))  # (B, out_features)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images from fresh noise (drawn on the CPU from `generator`, so the draws are
        the same on any device)."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        return self(z.to(next(self.parameters()).device))


class Discriminator(nn.Module):
    """D: images (B, in_features), pixels in [0, 1] -> logits (B,); D(x) = sigmoid(logit)."""

    def __init__(
        self,
        in_features: int = 784,
        widths: Sequence[int] = (512, 256),
        slope: float = 0.2,
        dropout: float = 0.0,
    ):
        super().__init__()
        if layer_widths(widths) is None:
            raise ValueError(
                f"Discriminator needs widths >= 1, got widths={as_given(widths)}; e.g. "
                f"model.discriminator_widths=[512,256]"
            )
        self.net = _mlp([in_features, *widths, 1], slope, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # pixels moved from [0, 1] to [-1, 1]: zero-centred inputs condition the first layer
        return self.net(x.flatten(1) * 2 - 1).squeeze(1)  # (B,)


class GAN(nn.Module):
    """The pair, so one model.pt holds both and `load_model` rebuilds them."""

    def __init__(self, generator: Generator, discriminator: Discriminator):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.generator.sample(n, generator)


@MODELS.register("gan")
def build_gan(cfg, data) -> GAN:
    m = cfg.model
    slope = float(m.leaky_slope)
    return GAN(
        Generator(
            int(m.latent_dim),
            as_given(m.generator_widths),
            data.in_features,
            slope,
            bool(m.get("generator_batchnorm", False)),
        ),
        Discriminator(
            data.in_features,
            as_given(m.discriminator_widths),
            slope,
            float(m.dropout),
        ),
    )


# -- the losses ---------------------------------------------------------------------------
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L(D) = -1/2 E log D(x) - 1/2 E log(1 - D(G(z))) from logits (B,) of real and fake
    (in fp32, also when the logits come from a bfloat16 pass)."""
    real_logits, fake_logits = _upcast(real_logits), _upcast(fake_logits)
    return 0.5 * F.softplus(-real_logits).mean() + 0.5 * F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating L(G) = -1/2 E log D(G(z)): strong gradients while D rejects the fakes,
    where minimising log(1 - D(G(z))) would give almost none (Goodfellow et al. 2014, sec. 3)."""
    return 0.5 * F.softplus(-_upcast(fake_logits)).mean()


def _upcast(t: torch.Tensor) -> torch.Tensor:
    """fp32 for a half-precision tensor; float32 and float64 as they are."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


# -- one step of each player -------------------------------------------------------------
def train_discriminator(
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """(1) update D on a batch of real images (B, D) and generated ones (B', D).

    `fake` should be detached from G: this step moves D only. Returns the loss and the
    mean D(x), D(G(z)) (detached scalars).
    """
    logits = discriminator(torch.cat([real, fake]))  # one pass over both: (B + B',)
    real_logits, fake_logits = logits[: len(real)], logits[len(real) :]
    loss = discriminator_loss(real_logits, fake_logits)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {
        "loss": loss.detach(),
        "D(x)": torch.sigmoid(real_logits.detach()).mean(),
        "D(G(z))": torch.sigmoid(fake_logits.detach()).mean(),
    }


def train_generator(
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    fake: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """(2) update G through D's judgement of `fake` = G(z) (B, D), still attached to G.

    `optimizer` holds G's parameters; D's are frozen for this pass, so D gets no gradient
    (and none is computed for its weights). Returns the loss and the mean D(G(z)).
    """
    with frozen(discriminator):
        fake_logits = discriminator(fake)  # (B,)
        loss = generator_loss(fake_logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), "D(G(z))": torch.sigmoid(fake_logits.detach()).mean()}


@torch.no_grad()
def averaged(generator: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of the generator: its parameters and batch-norm
    statistics; `.update_parameters(generator)` after each step moves it by 1 - decay
    (its first call copies the generator).

    An exponential moving average of the generator's weights samples better than the
    weights of the last step, which circle around an equilibrium rather than settle
    (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training").
    """
    average = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    return average.requires_grad_(False)


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """`module`'s parameters need no gradient inside the block (restored after)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)
