"""Command-line helpers for train.py that run before Hydra parses anything."""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from ucl.config import CONF_DIR
from ucl.schema import UclConfig

GROUPS = ("model", "optimizer", "activation", "dataset", "experiment", "hydra")


def multirun_flag_first(argv: list[str]) -> list[str]:
    """Hydra's parser wants `-m` before the overrides; accept it anywhere among them."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return [argv[0], *flags, *(a for a in argv[1:] if a not in flags)]


def bad_override_message(argv: list[str], conf_dir: Path = CONF_DIR) -> str | None:
    """A message for an override Hydra would reject, naming the closest valid choices:
    a top-level key the config does not have, or a group option with no YAML file
    (Hydra's own messages name neither the closest key nor the closest option)."""
    known = {f.name for f in dataclasses.fields(UclConfig)} | set(GROUPS)
    for arg in argv[1:]:
        if arg.startswith(("-", "+", "~")) or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        top = key.split(".", 1)[0].split("/", 1)[0]
        if key in GROUPS and key != "hydra":
            message = _unknown_option(key, value, conf_dir)
            if message:
                return message
        if top not in known:
            close = difflib.get_close_matches(top, sorted(known), n=3, cutoff=0.4)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            return (
                f"Unknown config key {top!r} in override {arg!r}.{hint} "
                f"Valid top-level keys: {', '.join(sorted(known))}."
            )
    return None


def _unknown_option(group: str, value: str, conf_dir: Path) -> str | None:
    options = sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
    for choice in value.split(","):  # a sweep lists several
        if choice in ("null", "") or choice in options:
            continue
        close = difflib.get_close_matches(choice, options, n=1, cutoff=0.4)
        hint = f" Did you mean {group}={close[0]}?" if close else ""
        return f"Unknown {group} {choice!r}.{hint} Valid {group} options: {', '.join(options)}."
    return None
