"""<root>/stages.json, the reproduction's record: every stage's last outcome (status, wall
time against its estimate, command, log) and the invocations that ran something. The runner
writes it after each stage; the report reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ucl.lifecycle import atomic_write, read_metrics
from ucl.pipeline.launch import log_path, train_command
from ucl.pipeline.stages import Plan, Planned, shown

STAGES_FILE = "stages.json"


@dataclass
class Outcome:
    status: str  # completed, failed, blocked (a stage it needs did not complete), interrupted
    seconds: float = 0.0
    reason: str = ""
    reused: bool = False  # completed by an earlier invocation


def read_stages(root: Path) -> dict:
    """stages.json ({} when absent or unreadable)."""
    try:
        return json.loads((Path(root) / STAGES_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def check_record(root: Path) -> None:
    """A stages.json that is not a pipeline's record (a file of the user's by that name) is
    refused, not written over (ValueError)."""
    path, data = Path(root) / STAGES_FILE, read_stages(root)
    if path.exists() and not (isinstance(data, dict) and isinstance(data.get("stages"), dict)):
        raise ValueError(
            f"{path} is not a pipeline's record ({STAGES_FILE}); nothing was touched. Move it "
            f"away, or give another --root"
        )


class StagesRecord:
    """stages.json as one invocation updates it: what earlier invocations recorded, each
    stage's entry replaced as it finishes, and this invocation added once it starts a
    stage (one that skips all adds nothing)."""

    def __init__(self, plan: Plan, jobs: int):
        self.plan, self.jobs = plan, jobs
        self.data = read_stages(plan.root)
        self.data.setdefault("stages", {})
        self.invocation = {
            "started": datetime.now().isoformat(timespec="seconds"),
            "jobs": jobs,
            "seconds": 0.0,
            "ran": [],
        }

    def seconds(self, planned: Planned) -> float:
        """A completed stage's wall time: the recorded one, else from its runs."""
        before = self.data["stages"].get(planned.name, {})
        return before.get("seconds") or _run_seconds(planned)

    def ran(self, planned: Planned) -> None:
        """This invocation started the stage."""
        self.invocation["ran"].append(planned.name)
        if len(self.invocation["ran"]) == 1:
            self.data.setdefault("invocations", []).append(self.invocation)

    def write(
        self, planned: Planned, outcome: Outcome, elapsed: float, choices: list | None = None
    ) -> None:
        """The stage's outcome with the values it took from earlier tables, and this
        invocation's `elapsed` seconds so far."""
        before = self.data["stages"].get(planned.name, {})
        entry = {
            "status": outcome.status,
            "seconds": round(outcome.seconds, 1),
            "estimate_seconds": round(planned.minutes * 60, 1),
            "sweep": planned.stage.sweep,
            "title": planned.stage.title,
            "command": ["python", *train_command(planned)[1:]],
            "log": shown(log_path(self.plan.root, planned)),
            "finished": (
                before.get("finished")
                if outcome.reused
                else datetime.now().isoformat(timespec="seconds")
            ),
        }
        if choices:
            entry["choices"] = choices
        if outcome.reason:
            entry["reason"] = outcome.reason
        if outcome.reused:
            entry["reused"] = True
        self.data["stages"][planned.name] = entry
        self.data.update(
            root=shown(self.plan.root),
            smoke=self.plan.smoke,
            jobs=self.jobs,
            order=self.plan.names,
        )
        self.invocation["seconds"] = round(elapsed, 1)
        atomic_write(self.plan.root / STAGES_FILE, json.dumps(self.data, indent=2))


def _run_seconds(planned: Planned) -> float:
    """A stage's wall time from its runs' metrics.json, when stages.json has none."""
    dirs = [planned.dir] if not planned.stage.sweep else sorted(planned.dir.glob("*/"))
    total = 0.0
    for d in dirs:
        record = read_metrics(d) if (d / "metrics.json").exists() else None
        total += (record or {}).get("seconds", {}).get("total", 0.0)
    return total
