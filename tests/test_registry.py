"""The registry: register, create, list; clear errors for unknown and duplicate names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import compose

from ucl.keys import ACTIVATIONS, MODELS, OPTIMIZERS, TASKS, Registry, RegistryError
from ucl.schema import load_all


def test_register_create_and_list():
    reg = Registry("widget")

    @reg.register("square")
    def square(x):
        return x * x

    @reg.register()
    def cube(x):
        return x**3

    assert reg.names() == ["cube", "square"]
    assert reg.create("square", 3) == 9 and reg.create("cube", 2) == 8
    assert "cube" in reg and "sphere" not in reg


def test_unknown_name_lists_valid_ones_and_suggests_the_closest():
    reg = Registry("widget")
    for name in ("mlp", "logreg", "autoencoder"):
        reg.register(name)(lambda: None)
    with pytest.raises(RegistryError) as err:
        reg.get("mlpx")
    message = str(err.value)
    assert "Unknown widget 'mlpx'" in message
    assert "Did you mean 'mlp'?" in message
    assert "autoencoder, logreg, mlp" in message


@pytest.mark.parametrize(
    "override, says",
    [
        ("activation.output=sigmoidd", "activation.output: Unknown activation 'sigmoidd'. Did you"),
        ("activation.name=gelux", "activation.name: Unknown activation 'gelux'. Did you mean"),
        ("dataset.name=cifar", "dataset.name: Unknown dataset 'cifar'. Valid dataset names: "),
        ("model.name=cnn", "model.name: Unknown model 'cnn'. Valid model names: "),
    ],
)
def test_an_unknown_name_in_the_config_names_its_key(override, says):
    from ucl.schema import validate

    with pytest.raises(RegistryError) as err:
        validate(compose([override]))
    assert str(err.value).startswith(says), str(err.value)


def test_registering_a_name_twice_is_an_error():
    reg = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(RegistryError, match="registered twice"):
        reg.register("a")(lambda: 2)
    assert reg.create("a") == 1  # the first one stays


def test_the_project_registries_are_populated():
    load_all()
    assert {"logreg", "mlp", "deep_mlp"} <= set(MODELS.names())
    assert {"sgd", "adam", "rmsprop", "adagrad"} <= set(OPTIMIZERS.names())
    assert {"linear", "sigmoid", "relu", "softplus", "elu", "tanh"} <= set(ACTIVATIONS.names())
    assert "classify" in TASKS.names()


@pytest.mark.parametrize("name", ["logreg", "mlp", "deep_mlp"])
def test_every_classifier_builds_and_maps_784_to_10(name):
    cfg = compose([f"model={name}"])
    data = SimpleNamespace(in_features=784, num_classes=10)
    load_all()
    model = MODELS.create(name, cfg, data)
    assert model(torch.rand(5, 784)).shape == (5, 10)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad"])
def test_every_optimizer_builds(name):
    load_all()
    opt = OPTIMIZERS.create(name, [torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    assert isinstance(opt, torch.optim.Optimizer)


@pytest.mark.parametrize("name", ["linear", "sigmoid", "relu", "softplus", "elu", "tanh"])
def test_every_activation_builds(name):
    load_all()
    x = torch.linspace(-2, 2, 5)
    y = ACTIVATIONS.create(name)(x)
    assert y.shape == x.shape
    if name == "linear":
        assert torch.equal(x, y)


def test_every_divergence_measure_gives_a_finite_value():
    import math

    import numpy as np
    from omegaconf import OmegaConf

    from ucl.config import CONF_DIR
    from ucl.divergence.measures import Sample
    from ucl.keys import MEASURES

    load_all()
    settings = OmegaConf.load(CONF_DIR / "divergence" / "base.yaml")
    settings.permutations = 50
    settings.smoothing = 1.0  # no empty bin under the other sample's mass: a finite KL
    rng = np.random.default_rng(0)
    P, Q = Sample(rng.random((60, 4))), Sample(rng.random((60, 4)) + 0.5)
    P.f, Q.f = rng.normal(size=(60, 8)), rng.normal(size=(60, 8)) + 1.0
    assert set(settings.measures) <= set(MEASURES.names())
    for name in MEASURES.names():
        value = MEASURES.create(name, P, Q, settings, 0)
        value = value[0] if isinstance(value, tuple) else value
        assert math.isfinite(value), name
