"""A fully connected autoencoder: encoder to a low-dimensional code, mirrored decoder.

The problem set's network is 784-1000-500-250-2-250-500-1000-784 with tanh between layers,
a linear map into the 2-D code and a sigmoid on the output (Hinton & Salakhutdinov 2006,
"Reducing the dimensionality of data with neural networks", Science 313, used
784-1000-500-250-30 with logistic units; the 2-D version is their figure 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ucl.keys import MODELS
from ucl.lifecycle import as_given
from ucl.models.layers import dense_stack, layer_widths
from ucl.models.mlp import activation


def activation_stack(widths: Sequence[int], act: str, last_act: str | None) -> nn.Sequential:
    """Linear layers through `widths` (input first), `act` after every layer but the last,
    `last_act` after the last one (None or "linear": nothing)."""
    return dense_stack(widths, lambda width: _act(act), _act(last_act))


def _act(name: str | None) -> list[nn.Module]:
    return [] if name in (None, "linear") else [activation(name)]


def check_widths(widths: Sequence[int], latent_dim: int) -> list[int]:
    checked = layer_widths(widths)
    if checked is None or latent_dim < 1:
        raise ValueError(
            f"layer widths and latent_dim must be integers >= 1, got widths={as_given(widths)}, "
            f"latent_dim={latent_dim}; e.g. model.widths=[1000,500,250] model.latent_dim=2"
        )
    return checked


class Autoencoder(nn.Module):
    """x (B, D) -> encode -> z (B, latent_dim) -> decode -> x_hat (B, D).

    widths: hidden widths of the encoder, input side first; the decoder mirrors them.
    act: hidden activation; latent_act: on the code ("linear": none); output_act: on the
    reconstruction ("sigmoid" for pixels in [0, 1], "linear" for real-valued features).
    """

    def __init__(
        self,
        in_features: int = 784,
        widths: Sequence[int] = (1000, 500, 250),
        latent_dim: int = 2,
        act: str = "tanh",
        latent_act: str | None = "linear",
        output_act: str | None = "sigmoid",
    ):
        super().__init__()
        widths = check_widths(widths, latent_dim)
        self.latent_dim = latent_dim
        self.encoder = activation_stack([in_features, *widths, latent_dim], act, latent_act)
        self.decoder = activation_stack(
            [latent_dim, *reversed(widths), in_features], act, output_act
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))  # (B, D) -> (B, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, latent_dim) -> (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def coder_args(cfg, data) -> dict:
    """The arguments an encoder/decoder family (autoencoder, VAE) takes from its config."""
    m = cfg.model
    return {
        "in_features": data.in_features,
        "widths": as_given(m.widths),
        "latent_dim": int(m.latent_dim),
        "act": m.hidden_act,
        "output_act": m.get("output_act"),
    }


@MODELS.register("autoencoder")
def build_autoencoder(cfg, data):
    return Autoencoder(**coder_args(cfg, data), latent_act=cfg.model.get("latent_act"))
