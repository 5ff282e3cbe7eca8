"""Output folders of the scripts (report, chaos, bench): a script writes only into a folder
it made or an empty one, and removes only what it wrote there.

The folder holds a marker file naming the script and listing the entries (files or
folders, relative to it) the script wrote. A non-empty folder without the marker is
taken only when every entry in it has a name the script writes (a folder an older ucl
wrote before markers existed); anything else is refused, untouched.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from ucl.errors import UclError
from ucl.lifecycle import atomic_write, file_in_the_way

MARKER = ".ucl-output.json"


class OutputDirError(UclError):
    """An output folder that holds files the script did not write."""


def claim(folder: Path, by: str, option: str, names: Iterable[str] = ()) -> Path:
    """`folder`, made if missing, once it is known to be `by`'s: it holds the marker, or is
    empty, or holds only entries matching `names` (shell patterns). Refused otherwise."""
    folder = Path(folder)
    marker, adopted = check_claim(folder, by, option, names)
    folder.mkdir(parents=True, exist_ok=True)
    if marker is None or marker.get("by") != by:  # the named entries are `by`'s from now on
        _write(folder, {"by": by, "wrote": [*(marker or {}).get("wrote", []), *adopted]})
    return folder


def check_claim(
    folder: Path, by: str, option: str, names: Iterable[str] = ()
) -> tuple[dict | None, list[str]]:
    """claim's refusal, with nothing made or written: (the marker, the entries `names`
    adopts), so that several folders can be checked before any is made."""
    folder = Path(folder)
    if file := file_in_the_way(folder):
        raise OutputDirError(
            f"{option} {folder}: {file} is a file, not a folder. Give a new or empty folder "
            f"for {by}'s outputs."
        )
    marker = _read(folder)
    adopted: list[str] = []
    if folder.is_dir() and marker is None:
        names = list(names)
        entries = sorted(p.name for p in folder.iterdir())
        foreign = [e for e in entries if not any(fnmatch.fnmatch(e, n) for n in names)]
        adopted = [e for e in entries if e not in foreign and e != MARKER]
        if foreign:
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise OutputDirError(
                f"{option} {folder}: holds files {by} did not write ({shown}); nothing was "
                f"touched. Give a new or empty folder, or one {by} made."
            )
    return marker, adopted


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


def remove_written(folder: Path, under: str = "") -> None:
    """Remove the entries the marker lists (those below `under` only, when given) and
    forget them; anything else in the folder stays."""
    folder = Path(folder)
    marker = _read(folder) or {"wrote": []}
    keep = []
    for rel in marker.get("wrote", []):
        if under and not (rel == under or rel.startswith(f"{under}/")):
            keep.append(rel)
            continue
        path = folder / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    _write(folder, {**marker, "wrote": keep})


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
