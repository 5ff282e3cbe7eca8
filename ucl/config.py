"""Composing configs outside train.py (scripts, benchmarks, tests, notebooks)."""

from __future__ import annotations

from pathlib import Path

from ucl.rundir import REPO  # the checkout: train.py, conf/, scripts/, tests/

CONF_DIR = REPO / "conf"


def compose(overrides: list[str] | None = None):
    """The config `python train.py OVERRIDES` would run with (without Hydra's run dir)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from ucl.schema import register_schema

    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides or []))


def run_config(overrides: list[str], run_dir: Path) -> dict:
    """Run one experiment in this process into `run_dir`; returns its metrics.json."""
    import json

    from ucl.run import run

    run(compose(overrides), run_dir)
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def refusal(overrides: list[str]) -> str | None:
    """The one-line refusal today's config checks give a job with these overrides, if any
    (summarize.py's word on a sweep job that left nothing behind)."""
    from ucl.errors import UclError
    from ucl.schema import validate

    try:
        validate(compose(overrides))
    except UclError as e:
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    except Exception:  # noqa: BLE001  (not composable here, e.g. another conf dir: unknown)
        return None
    return None
