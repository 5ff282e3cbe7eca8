"""Command-line helpers for train.py that run before Hydra parses anything."""

from __future__ import annotations

import dataclasses
import difflib

from ucl.schema import UclConfig

GROUPS = ("model", "optimizer", "activation", "dataset", "experiment", "hydra")


def multirun_flag_first(argv: list[str]) -> list[str]:
    """Hydra's parser wants `-m` before the overrides; accept it anywhere among them."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return [argv[0], *flags, *(a for a in argv[1:] if a not in flags)]


def unknown_key_message(argv: list[str]) -> str | None:
    """A message for an override of a top-level key the config does not have, naming
    the closest valid keys (Hydra's own message names only the key)."""
    known = {f.name for f in dataclasses.fields(UclConfig)} | set(GROUPS)
    for arg in argv[1:]:
        if arg.startswith(("-", "+", "~")) or "=" not in arg:
            continue
        key = arg.split("=", 1)[0]
        top = key.split(".", 1)[0].split("/", 1)[0]
        if top not in known:
            close = difflib.get_close_matches(top, sorted(known), n=3, cutoff=0.4)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            return (
                f"Unknown config key {top!r} in override {arg!r}.{hint} "
                f"Valid top-level keys: {', '.join(sorted(known))}."
            )
    return None
