"""precision=fp32|bf16|auto: what each resolves to, that bf16 changes the arithmetic of the
training steps only, and the bad-value error."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import compose
from ucl.config import run_config
from ucl.context import autocast, native_bf16, resolve_precision
from ucl.errors import ConfigError
from ucl.schema import validate

CPU = torch.device("cpu")
SHORT = ["steps=30", "eval_every=15", "checkpoint_every=0", "progress=false", "threads=1"]


def test_auto_is_bf16_exactly_where_the_device_has_it_natively():
    assert resolve_precision("auto", CPU) == ("bf16" if native_bf16(CPU) else "fp32")
    assert resolve_precision("fp32", CPU) == "fp32"
    with pytest.raises(ValueError, match="precision='half' is not one of fp32, bf16, auto"):
        resolve_precision("half", CPU)


def test_bf16_autocasts_products_and_fp32_leaves_them():
    a, b = torch.rand(4, 8), torch.rand(8, 3)
    with autocast(CPU, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert (a @ b).dtype == torch.float32


def test_a_bad_precision_fails_validation_naming_the_choices():
    with pytest.raises(ConfigError, match="precision='fp16' is not one of fp32, bf16, auto"):
        validate(compose(["precision=fp16"]))


@pytest.mark.parametrize("experiment", ["logreg", "gan", "autoencoder_mnist", "vae"])
def test_bf16_training_is_recorded_finite_and_differs_from_fp32(
    experiment, fixture_overrides, tmp_path
):
    if not native_bf16(CPU):
        pytest.skip("this CPU has no native bfloat16 (emulated bf16 is slow)")
    overrides = [f"experiment={experiment}", *SHORT, *fixture_overrides]
    if experiment == "logreg":
        overrides.append("model.init=normal")  # from zeros, one bf16 step rounds like fp32
    losses = {}
    for precision in ("fp32", "bf16"):
        record = run_config([*overrides, f"precision={precision}"], tmp_path / precision)
        assert record["status"] == "completed" and record["env"]["precision"] == precision
        history = (tmp_path / precision / "history.csv").read_text().splitlines()
        losses[precision] = history[1:]  # the logged averages of both evaluations
    assert losses["fp32"] != losses["bf16"]  # the steps' arithmetic did change
