"""Thread counts: each training preset's steps timed at every explicit thread count and at
`threads=auto` (the default), in one process, alternated so that drift hits every count.
The rule behind auto (`ucl.lifecycle.Threads`) is calibrated from these rows; each `auto`
row says how far the default is from the fastest explicit count (target: within 10%).

    python scripts/bench.py --only threads
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from ucl.config import run_config
from ucl.lifecycle import available_cores

# A few hundred training steps of each preset: its steps, not its evaluations or figures
PRESETS = {
    "logreg": ["experiment=logreg", "steps=2000"],
    "best_mlp": ["experiment=best_mlp", "steps=600"],
    "autoencoder": ["experiment=autoencoder_mnist", "steps=300"],
    "gan": ["experiment=gan", "steps=300"],
}
QUIET = ["eval_every=1000000", "checkpoint_every=0", "skip_completed=false", "progress=false"]
TARGET_WITHIN = 1.10  # the default's time over the fastest explicit count's


def run(repeats: int = 3, workdir: Path | None = None) -> list[dict]:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ucl-bench-threads-"))
    counts = [str(n) for n in range(1, available_cores() + 1)] + ["auto"]
    rows = []
    for name, args in PRESETS.items():
        seconds: dict[str, list[float]] = {c: [] for c in counts}
        chosen = {}
        for i in range(repeats):
            for c in counts:
                record = run_config([*args, *QUIET, f"threads={c}"], workdir / f"{name}-{c}-{i}")
                steps = record["metrics"].get("steps") or int(args[1].split("=")[1])
                seconds[c].append(record["seconds"]["train"] / steps * 1000)
                chosen[c] = record["env"]["threads"]
        medians = {c: statistics.median(v) for c, v in seconds.items()}
        fastest = min((c for c in counts if c != "auto"), key=medians.get)
        for c in counts:
            if c != "auto":
                rows.append(_row(f"{name}: ms per step, threads={c}", medians[c], None, "ms"))
        ratio = medians["auto"] / medians[fastest]
        rows.append(_row(
            f"{name}: threads=auto (chose {chosen['auto']}) / fastest (threads={fastest})",
            ratio, TARGET_WITHIN, "x",
        ))  # fmt: skip
    return rows


def _row(benchmark: str, value: float, target: float | None, unit: str) -> dict:
    return {"benchmark": benchmark, "value": value, "target": target, "sense": "<=",
            "unit": unit, "met": None if target is None else value <= target}  # fmt: skip
