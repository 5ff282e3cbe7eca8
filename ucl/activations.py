"""Activation functions by name; `linear` is the identity (no non-linearity)."""

from __future__ import annotations

from torch import nn

from ucl.registry import ACTIVATIONS

for _name, _module in {
    "linear": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}.items():
    ACTIVATIONS.register(_name)(_module)


def activation(name: str | None) -> nn.Module:
    """A fresh activation module; None means the identity."""
    return nn.Identity() if name is None else ACTIVATIONS.create(name)
