"""Output folders of the scripts (report, chaos, bench, the pipeline's root): a script
writes only into a folder it made or an empty one, and removes only what it wrote there.

The folder holds a marker file naming the script and listing the entries (files or
folders, relative to it) the script wrote. A non-empty folder without the marker, or with
another script's, is refused, untouched: even entries named as the script names its own
are the user's (or the other script's) until the marker says otherwise. The process that
claims a folder holds its lock until it exits: a second command on the folder is refused.
"""

from __future__ import annotations

import atexit
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from ucl.errors import UclError
from ucl.lifecycle import RunLock, atomic_write, file_in_the_way

MARKER = ".ucl-output.json"


class OutputDirError(UclError):
    """An output folder that holds files the script did not write."""


class FolderLock(RunLock):
    """An output folder's lock: two commands writing one folder would remove or write over
    each other's files (a pipeline's stages and record, a report's figures)."""

    rule = "an output folder has one writer at a time"

    def __init__(self, folder: Path, by: str, option: str):
        super().__init__(folder)
        self.kind = f"{by.removeprefix('the ')} command"
        self.fix = f"give {by} another {option}"


_held: dict[Path, FolderLock] = {}  # the folders this process claimed, by resolved path


def claim(folder: Path, by: str, option: str) -> Path:
    """`folder`, made if missing, once it is known to be `by`'s: it is empty, or holds
    `by`'s marker, and no other process holds it. Refused otherwise. This process holds
    the folder's lock from here until it exits."""
    folder = Path(folder)
    if folder.resolve() in _held:
        return folder
    if check_claim(folder, by, option) is None:
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder, {"by": by, "wrote": []})
    try:
        lock = _held[folder.resolve()] = FolderLock(folder, by, option).acquire()
    except UclError as e:  # in use, or a .lock that is not ucl's: refused as the rest
        raise OutputDirError(f"{option} {e}") from None
    atexit.register(lock.release)
    return folder


def check_claim(folder: Path, by: str, option: str) -> dict | None:
    """claim's refusal, with nothing made or written (so that several folders can be
    checked before any is made): the marker, None for a new or empty folder."""
    folder = Path(folder)
    if file := file_in_the_way(folder):
        raise OutputDirError(
            f"{option} {folder}: {file} is a file, not a folder. Give a new or empty folder "
            f"for {by}'s outputs."
        )
    marker = _read(folder)
    if marker is not None and marker.get("by") != by:
        made = f"{marker['by']}'s outputs" if marker.get("by") else "outputs of another ucl command"
        raise OutputDirError(
            f"{option} {folder}: holds {made}, which {by} did not write; nothing was touched. "
            f"Give {by} a new or empty folder of its own."
        )
    if marker is None and folder.is_dir() and (entries := sorted(p.name for p in folder.iterdir())):
        shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
        raise OutputDirError(
            f"{option} {folder}: holds files {by} did not write ({shown}); nothing was "
            f"touched. Give a new or empty folder, or one {by} made."
        )
    return marker


def check_free(
    folder: Path, names: Iterable[str], by: str, option: str,
    fix: str = "Move {them} away, or give another folder.",
) -> None:  # fmt: skip
    """Refuse when any of `names` is in `folder` but not listed as `by`'s: another program
    or the user put it there (or a `by` from before the list), and `by` would write over it.
    `option` may be empty (a folder the user did not name as an output)."""
    folder = Path(folder)
    listed = set((_read(folder) or {}).get("wrote", []))
    taken = [n for n in names if (folder / n).exists() and n not in listed]
    if taken:
        are, them = ("is", "it") if len(taken) == 1 else ("are", "them")
        raise OutputDirError(
            f"{option} {folder}: {', '.join(taken)} {are} there, and {by} has no record of "
            f"writing {them}; nothing was touched. {fix.format(them=them)}".lstrip()
        )


def remove_written(folder: Path, under: str = "", keep: Iterable[str] = ()) -> None:
    """Remove the entries the marker lists (those below `under` only, when given), except
    `keep`, and forget them; anything else in the folder stays."""
    folder = Path(folder)
    marker = _read(folder) or {"wrote": []}
    kept, keep = [], set(keep)
    for rel in marker.get("wrote", []):
        if rel in keep or (under and not (rel == under or rel.startswith(f"{under}/"))):
            kept.append(rel)
            continue
        path = folder / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    _write(folder, {**marker, "wrote": kept})


def record(folder: Path, names: Iterable[str]) -> None:
    """Add entries (names relative to `folder`, e.g. figures/a.png) to what the marker lists."""
    folder = Path(folder)
    marker = _read(folder) or {"wrote": []}
    wrote = list(marker.get("wrote", []))
    for rel in names:
        if rel not in wrote:
            wrote.append(rel)
    _write(folder, {**marker, "wrote": wrote})


def _read(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(folder: Path, marker: dict) -> None:
    atomic_write(folder / MARKER, json.dumps(marker, indent=1) + "\n")
