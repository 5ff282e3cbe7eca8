"""What a job hands back to a sweeper: the final metric `objective` names, read from the
run's own metrics.json (the run returns test accuracy; a search must see validation
accuracy instead, so that the test set stays out of the choosing)."""

from __future__ import annotations

from ucl.errors import ConfigError
from ucl.run import output_dir
from ucl.tracking import read_metrics

DEFAULT = "test/accuracy"  # what ucl.run.run returns


def objective_value(cfg, returned: float | None) -> float | None:
    name = cfg.get("objective") or DEFAULT
    if name == DEFAULT:
        return returned
    record = read_metrics(output_dir(cfg)) or {}
    metrics = record.get("metrics", {})
    if metrics.get(name) is None:
        have = ", ".join(sorted(k for k, v in metrics.items() if isinstance(v, int | float)))
        hint = " (val/... needs dataset.validation=N, e.g. 5000)" if name.startswith("val/") else ""
        raise ConfigError(
            f"objective={name!r}: the run reported no such metric{hint}; it reports: "
            f"{have or 'none'}"
        )
    return float(metrics[name])
