"""Classifiers with hidden layers: the explicit one-hidden-layer network and a deeper MLP;
and the activation functions by name that they (and the autoencoder) put between layers."""

from __future__ import annotations

import math

import torch
from torch import nn

from ucl.keys import ACTIVATIONS, MODELS
from ucl.lifecycle import as_given
from ucl.models.dropout import Dropout
from ucl.models.layers import dense_stack, layer_widths

for _name, _module in {  # `linear` is the identity (no non-linearity)
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


class MLP(nn.Module):
    """One hidden layer from explicit parameters: out(act(x W1^T + b1) W2^T + b2).

    Weights are stored (outputs, inputs), as in nn.Linear (see LogisticRegression for why).

    `act` is the hidden activation, `out` an optional one after the output layer
    (the problem set's "sigmoid both on the hidden layer and after the output layer").
    forward returns the (possibly squashed) logits fed to softmax cross-entropy.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: int = 128,
        num_classes: int = 10,
        act: str = "relu",
        output_act: str | None = None,
        init: str = "uniform",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.W1 = nn.Parameter(torch.empty(hidden, in_features))  # (H, 784)
        self.b1 = nn.Parameter(torch.empty(hidden))  # (H,)
        self.W2 = nn.Parameter(torch.empty(num_classes, hidden))  # (10, H)
        self.b2 = nn.Parameter(torch.empty(num_classes))  # (10,)
        self.act = activation(act)
        self.out = activation(output_act)
        self.dropout = Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_parameters(init)

    def reset_parameters(self, init: str) -> None:
        for W, b in ((self.W1, self.b1), (self.W2, self.b2)):
            fan_in = W.shape[1]
            if init == "uniform":  # what nn.Linear does: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(W, -bound, bound)
                nn.init.uniform_(b, -bound, bound)
            elif init == "normal":
                nn.init.normal_(W, std=0.01)
                nn.init.zeros_(b)
            elif init == "zeros":  # every hidden unit stays identical: only for demonstration
                nn.init.zeros_(W)
                nn.init.zeros_(b)
            else:
                raise ValueError(f"model.init={init!r} is unknown; use uniform, normal or zeros")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act(torch.addmm(self.b1, x.flatten(1), self.W1.t())))  # (B, H)
        return self.out(torch.addmm(self.b2, h, self.W2.t()))  # (B, 10)


class DeepMLP(nn.Sequential):
    """Linear -> act (-> dropout) for each hidden width, then a linear output layer."""

    def __init__(self, in_features, widths, num_classes, act="relu", dropout=0.0):
        if (checked := layer_widths(widths)) is None:
            raise ValueError(
                f"model.widths={as_given(widths)} must list integers >= 1, the hidden widths; "
                f"e.g. model.widths=[512,256]"
            )
        widths = checked

        def after_hidden(width: int) -> list[nn.Module]:
            return [activation(act), *([Dropout(dropout)] if dropout > 0 else [])]

        super().__init__(*dense_stack([in_features, *widths, num_classes], after_hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))


@MODELS.register("mlp")
def build_mlp(cfg, data):
    return MLP(
        data.in_features,
        int(cfg.model.hidden),
        data.num_classes,
        act=cfg.activation.name,
        output_act=cfg.activation.get("output"),
        init=cfg.model.get("init", "uniform"),
        dropout=float(cfg.model.get("dropout", 0.0)),
    )


@MODELS.register("deep_mlp")
def build_deep_mlp(cfg, data):
    return DeepMLP(
        data.in_features,
        as_given(cfg.model.widths),
        data.num_classes,
        act=cfg.activation.name,
        dropout=float(cfg.model.get("dropout", 0.0)),
    )
