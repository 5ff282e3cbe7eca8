"""The explicit-parameter models: parameter shapes, zero init, forward against a hand formula;
the dropout they use."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import compose
from ucl.earlier_runs import load_model
from ucl.loop import CheckpointMismatch, save_model
from ucl.models import MLP, LogisticRegression
from ucl.models.dropout import Dropout


def test_logistic_regression_is_one_weight_matrix_and_one_bias_zero_initialised():
    model = LogisticRegression(784, 10)
    params = dict(model.named_parameters())
    assert set(params) == {"W", "b"}
    assert params["W"].shape == (10, 784) and params["b"].shape == (10,)
    assert torch.count_nonzero(params["W"]) == 0 and torch.count_nonzero(params["b"]) == 0
    probs = model.predict_proba(torch.rand(4, 784))
    assert torch.allclose(probs, torch.full((4, 10), 0.1))  # zero weights: uniform softmax


def test_logistic_regression_forward_is_xW_plus_b():
    model = LogisticRegression(6, 3, init="normal")
    with torch.no_grad():
        model.b.copy_(torch.tensor([1.0, -1.0, 0.5]))
    x = torch.randn(4, 6)
    assert torch.allclose(model(x), x @ model.W.T + model.b)
    assert torch.allclose(model.predict_proba(x).sum(1), torch.ones(4))


def test_mlp_has_two_explicit_layers_and_applies_the_activations():
    model = MLP(784, 32, 10, act="tanh", output_act="sigmoid")
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {"W1": (32, 784), "b1": (32,), "W2": (10, 32), "b2": (10,)}
    x = torch.rand(3, 784)
    expected = torch.sigmoid(torch.tanh(x @ model.W1.T + model.b1) @ model.W2.T + model.b2)
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_linear_mlp_has_no_nonlinearity():
    model = MLP(5, 4, 3, act="linear")
    x = torch.randn(2, 5)
    assert torch.allclose(model(2 * x) - model(x), model(x) - model(0 * x), atol=1e-5)


def test_mlp_accepts_image_shaped_input():
    assert MLP(784, 8, 10)(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_dropout_drops_p_of_the_elements_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    for p in (0.1, 0.3, 0.5):
        y = Dropout(p)(x)
        dropped = (y == 0).float().mean().item()
        assert abs(dropped - p) < 0.003  # 1e6 elements: the standard error is < 0.0005
        assert abs(y.mean().item() - 1) < 0.01  # kept elements scaled by 1 / (1 - p)
        values = torch.unique(y).tolist()
        assert len(values) == 2 and values[0] == 0 and abs(values[1] * (1 - p) - 1) < 1e-4


def test_dropout_gradient_is_the_mask_and_eval_is_the_identity():
    torch.manual_seed(1)
    d = Dropout(0.4)
    x = torch.rand(64, 32, requires_grad=True)
    y = d(x)
    y.sum().backward()
    assert torch.allclose(x.grad, (y / x).detach())  # d(x * mask)/dx = mask
    torch.manual_seed(1)
    again = torch.rand(64, 32)
    assert torch.equal(d(again), y.detach())  # the global generator draws the mask: seeded
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        Dropout(1.0)


def test_a_model_pt_with_weights_in_another_layout_is_named_with_the_fix(tmp_path):
    # model.pt files written before logreg stored W as (outputs, inputs) hold W (784, 10)
    data = SimpleNamespace(
        name="mnist", in_features=784, num_classes=10, class_names=list("0123456789"),
        image_shape=(1, 28, 28),
    )  # fmt: skip
    old = LogisticRegression(784, 10)
    old.W = torch.nn.Parameter(torch.zeros(784, 10))
    save_model(tmp_path, old, compose(["model=logreg"]), data)
    with pytest.raises(CheckpointMismatch, match=r"model.pt does not fit the logreg model.*W.*"
                       r"train it again with the config saved in"):  # fmt: skip
        load_model(tmp_path)


def test_logreg_closed_form_gradient_is_autograds():
    torch.manual_seed(0)
    model = LogisticRegression(784, 10, init="normal")
    with torch.no_grad():
        model.b.normal_()
    x, y = torch.rand(64, 784), torch.arange(64) % 10
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    expected = {"loss": loss.item(), "W": model.W.grad.clone(), "b": model.b.grad.clone()}
    model.zero_grad(set_to_none=True)
    got = model.loss_and_grad(x, y)
    assert got.item() == pytest.approx(expected["loss"], rel=1e-6)
    assert torch.allclose(model.W.grad, expected["W"], atol=1e-7)
    assert torch.allclose(model.b.grad, expected["b"], atol=1e-7)
    assert model.W.grad.shape == model.W.shape and not got.requires_grad
