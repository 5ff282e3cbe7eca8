"""Named builders for every component a config can pick.

A registry maps a name (the value a config gives, e.g. ``model.name: mlp``) to a
builder. ``register`` adds one, ``create`` builds one, ``names`` lists them. An unknown
name lists the valid ones and suggests the closest; a name registered twice is an error,
so two modules cannot silently shadow each other.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any


class RegistryError(KeyError):
    """A name that is not registered, or registered twice."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable], Callable]:
        """Decorator: ``@MODELS.register("mlp")`` (defaults to the builder's own name)."""

        def add(builder: Callable) -> Callable:
            key = name or builder.__name__
            if key in self._builders:
                raise RegistryError(
                    f"{self.kind} {key!r} is registered twice "
                    f"(by {_where(self._builders[key])} and {_where(builder)}); "
                    f"rename one of them."
                )
            self._builders[key] = builder
            return builder

        return add

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._builders[name]
        except KeyError:
            raise RegistryError(self._unknown(name)) from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def _unknown(self, name: str) -> str:
        valid = ", ".join(self.names()) or "(none registered)"
        close = closest(name, self.names())
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"Unknown {self.kind} {name!r}.{hint} Valid {self.kind} names: {valid}."


def closest(
    name: object, names, n: int = 1, cutoff: float = 0.6, prefixes: bool = False
) -> list[str]:
    """The valid names most like `name` (a typo's fixes), at most `n`, best first; empty
    when none is close. Every "did you mean" of ucl asks here. `prefixes`: a name that
    begins `name`, or that `name` begins, comes first (`lr_rate` -> `lr`)."""
    name, names = str(name), sorted(map(str, names))
    close = difflib.get_close_matches(name, names, n=n, cutoff=cutoff)
    if prefixes:
        close = [k for k in names if name.startswith(k) or k.startswith(name)] + close
    return list(dict.fromkeys(close))[:n]


def _where(builder: Callable) -> str:
    return f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', builder)}"


MODELS = Registry("model")
OPTIMIZERS = Registry("optimizer")
ACTIVATIONS = Registry("activation")
DATASETS = Registry("dataset")
TASKS = Registry("task")
MEASURES = Registry("divergence measure")
