"""What the report reads: the stage dirs of a reproduction (runs/reproduce/<stage>), each
run's metrics.json, history.csv and figures, and runs/reproduce/stages.json. Anything
missing or unreadable reads as "not run" (with the reason), never as an error."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ucl import summary
from ucl.errors import CorruptFileError
from ucl.lifecycle import read_metrics
from ucl.pipeline.record import read_stages


@dataclass
class Run:
    stage: str
    dir: Path
    record: dict | None  # metrics.json, None when absent or unreadable
    problem: str = ""  # why record is None, when the file is there but unreadable
    rerun: str = ""  # the command that (re)runs the stage

    @property
    def status(self) -> str:
        return self.record["status"] if self.record else "not run"

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def metrics(self) -> dict:
        return (self.record or {}).get("metrics", {})

    def get(self, key: str, default=None):
        """A metric, or a top-level key of metrics.json (confusion_matrix, data, ...)."""
        if key in self.metrics:
            return self.metrics[key]
        return (self.record or {}).get(key, default)

    def figure(self, name: str) -> Path | None:
        path = self.dir / "figures" / f"{name}.png"
        return path if path.is_file() else None

    def figures(self, pattern: str) -> list[Path]:
        return sorted((self.dir / "figures").glob(f"{pattern}.png"))

    @cached_property
    def history(self) -> list[dict[str, float]]:
        """history.csv as rows of floats (empty cells dropped); [] when absent."""
        path = self.dir / "history.csv"
        if not path.is_file():
            return []
        with open(path, newline="") as f:
            return [
                {k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)
            ]

    @property
    def synthetic(self) -> bool:
        return bool((self.record or {}).get("data", {}).get("synthetic"))

    def why_missing(self) -> str:
        """'not run' / 'failed: reason' / ..., with the command that fills the gap."""
        if self.record is None:
            detail = self.problem or f"no metrics.json in `{self.dir}`"
            return f"**not run** ({detail}); `{self.rerun}` runs it"
        reason = self.record.get("reason", "")
        return f"**{self.status}**{f': {reason}' if reason else ''} (`{self.rerun}` continues it)"


class Source:
    """The stages of one reproduction root."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def run(self, stage: str) -> Run:
        return self._read(stage, self.root / stage)

    def _read(self, label: str, path: Path) -> Run:
        stage = label.split("/", 1)[0]
        rerun = f"python scripts/reproduce.py{' --smoke' if self.smoke else ''} --only {stage}"
        try:
            return Run(label, path, read_metrics(path), rerun=rerun)
        except CorruptFileError as e:
            return Run(label, path, None, problem=str(e), rerun=rerun)

    def jobs(self, stage: str) -> list[summary.Job]:
        """The jobs of a sweep stage ([] when the stage dir is not there)."""
        path = self.root / stage
        if not path.is_dir():
            return []
        return summary.find_jobs(path)

    def job_runs(self, stage: str) -> list[Run]:
        return [self._read(f"{stage}/{job.path.name}", job.path) for job in self.jobs(stage)]

    @cached_property
    def stages(self) -> dict:
        """stages.json ({} when absent or unreadable)."""
        return read_stages(self.root)

    @property
    def smoke(self) -> bool:
        return bool(self.stages.get("smoke"))

    def any_record(self) -> dict | None:
        """The metrics.json of some completed run (for the environment section)."""
        for path in sorted(self.root.rglob("metrics.json")):
            try:
                record = read_metrics(path.parent)
            except CorruptFileError:
                continue
            if record and record["status"] == "completed":
                return record
        return None
