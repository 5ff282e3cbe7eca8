"""Every registered component: importing the packages that register them.

Kept out of `ucl.registry` (which holds only the Registry objects, so any layer may import
it) and out of import time. Called by `ucl.run` and by the tools that need every component
(config validation, benchmarks, reproduce's data preparation, tests).
"""

from __future__ import annotations


def load_all() -> None:
    """Import the modules that register components."""
    import ucl.activations  # noqa: F401
    import ucl.data  # noqa: F401
    import ucl.divergence.measures  # noqa: F401
    import ucl.models  # noqa: F401
    import ucl.optimizers  # noqa: F401
    import ucl.tasks  # noqa: F401
