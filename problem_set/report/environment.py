"""The report's environment section: the machine the runs saw (torch, device, threads), the
code they ran (commit, uncommitted changes), each stage's wall time against its estimate
(runs/reproduce/stages.json), and the pinned requirements beside what this machine has
installed and what the runs recorded."""

from __future__ import annotations

import re
from collections import Counter
from importlib import metadata

from problem_set.report.doc import Block, Heading, Table, Text
from problem_set.report.sources import Source
from ucl.config import REPO
from ucl.errors import CorruptFileError
from ucl.lifecycle import duration, read_metrics

BUDGET_MINUTES = 30  # the full reproduction's target on a 2-core CPU
PIN = re.compile(r"^\s*([A-Za-z0-9_.\-\[\],]+)\s*==\s*([^\s;#]+)")


def environment(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Environment")]
    record = src.any_record()
    if record:
        env = record.get("env", {})
        rows = [[k, env.get(k)] for k in ("torch", "python", "device", "threads", "cpu_count")]
        blocks += [
            Text("As the runs recorded it (metrics.json `env`):"),
            Table(["", "value"], rows),
        ]
    else:
        blocks.append(Text("No completed run to read the environment from."))
    codes = [r.get("code") for r in _completed(src)]
    blocks += _code(codes)
    blocks += _stage_times(src)
    blocks += _requirements(codes)
    return blocks


def _completed(src: Source) -> list[dict]:
    """The completed runs' records, without the runs a re-run set aside."""
    out = []
    for path in sorted(src.root.rglob("metrics.json")):
        if ".replaced-" in str(path.relative_to(src.root)):
            continue
        try:
            record = read_metrics(path.parent)
        except CorruptFileError:
            continue
        if record and record["status"] == "completed":
            out.append(record)
    return out


def _code(codes: list[dict | None]) -> list[Block]:
    recorded = [c for c in codes if isinstance(c, dict)]
    if not recorded:
        return [Text("The runs record no code version (metrics.json `code`).")]
    counts = Counter(_version(c) for c in recorded)
    missing = len(codes) - len(recorded)
    rows = [[commit, changes, n] for (commit, changes), n in counts.items()]
    if missing:
        rows.append(["not recorded", "", missing])
    n = len(rows)
    text = "The code the runs ran (metrics.json `code`): " + (
        "one code version."
        if n == 1
        else f"{n} code versions: the results mix code; re-run the stages to tie them to one."
    )
    return [Text(text), Table(["commit", "uncommitted changes", "runs"], rows)]


def _version(code: dict) -> tuple[str, str]:
    """(commit, its uncommitted changes) or (why there is no commit, "")."""
    commit = code.get("commit")
    if not commit:
        return str(code.get("git", "unknown")), ""
    if "dirty" not in code:  # the diff could not be read
        return commit[:12], str(code.get("git", "unknown"))
    return commit[:12], f"diff {code['diff']}" if code["dirty"] else "none"


def _stage_times(src: Source) -> list[Block]:
    stages = src.stages.get("stages", {})
    if not stages:
        return [
            Text(
                f"No `{src.root}/stages.json`: the stage times are recorded by "
                "`python scripts/reproduce.py`."
            )
        ]
    order = src.stages.get("order") or list(stages)
    rows, total, estimate = [], 0.0, 0.0
    for name in order:
        e = stages.get(name)
        if e is None:
            rows.append([name, "not run", None, None])
            continue
        seconds, est = e.get("seconds", 0.0), e.get("estimate_seconds", 0.0)
        total += seconds
        estimate += est
        status = e["status"] + (" (earlier run)" if e.get("reused") else "")
        rows.append([name, status, duration(seconds), duration(est)])
    rows.append(["**sum**", "", duration(total), duration(estimate)])
    runs = src.stages.get("invocations", [])
    jobs = sorted({r.get("jobs", 1) for r in runs}) or [src.stages.get("jobs", 1)]
    text = (
        f"Wall time of each stage (`{src.root}/stages.json`), "
        f"{' or '.join(map(str, jobs))} stage(s) at a time."
    )
    if runs:
        wall = sum(r.get("seconds", 0.0) for r in runs)
        text += (
            f" In all: {duration(wall)} of wall time over {len(runs)} invocation(s) of "
            f"`scripts/reproduce.py` that ran stages."
        )
    if not src.smoke:
        text += f" The budget is {BUDGET_MINUTES} minutes on a 2-core CPU."
    return [Text(text), Table(["stage", "status", "wall time", "estimate"], rows)]


def _requirements(codes: list[dict | None]) -> list[Block]:
    path = REPO / "requirements.txt"
    if not path.is_file():
        return [Text("No requirements.txt beside the code.")]
    rows = []
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, pinned = match.groups()
            rows.append([name, pinned, _installed(name), _recorded(name, codes)])
    return [
        Text(
            "`requirements.txt` pins, what this machine has installed, and what the runs "
            "recorded (metrics.json `code`):"
        ),
        Table(["package", "pinned", "installed", "the runs"], rows),
    ]


def _recorded(name: str, codes: list[dict | None]) -> str:
    versions = {
        c["packages"][name] for c in codes if isinstance(c, dict) and name in c.get("packages", {})
    }
    return ", ".join(sorted(versions))


def _installed(name: str) -> str:
    try:
        return metadata.version(name.split("[", 1)[0])
    except metadata.PackageNotFoundError:
        return "not installed"
