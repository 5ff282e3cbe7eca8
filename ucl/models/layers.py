"""Stacks of fully connected layers, the shape every model family here is built from."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from ucl.lifecycle import is_list


def layer_widths(widths) -> list[int] | None:
    """`widths` as a list when it lists layer widths, integers >= 1, else None: int() would
    take 1.5 as 1, and a string letter by letter."""
    if not is_list(widths):
        return None
    ok = all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths)
    return list(widths) if ok else None


def dense_stack(
    widths: Sequence[int],
    after_hidden: Callable[[int], list[nn.Module]] = lambda width: [],
    after_last: Sequence[nn.Module] = (),
) -> nn.Sequential:
    """nn.Linear layers through `widths` (input first); after every layer but the last,
    the modules `after_hidden(its width)` gives (activation, batch norm, dropout); after
    the last, `after_last`. Flat nn.Sequential indices, so saved weights keep their names."""
    if len(widths) < 2:
        raise ValueError(f"a dense stack needs an input and an output width, got {list(widths)}")
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        layers += after_hidden(fan_out) if i < len(widths) - 2 else list(after_last)
    return nn.Sequential(*layers)
