"""Class names as figures and tables show them."""

from __future__ import annotations


def short(name: str) -> str:
    """'RBC (Rod Bipolar cell)' -> 'RBC': the label before its parenthesised description."""
    return str(name).split(" (", 1)[0].strip()
