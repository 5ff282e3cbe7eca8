"""Tasks, one file each; importing this package registers them."""

from ucl.tasks import (
    classify,  # noqa: F401
    divergence,  # noqa: F401
    gan,  # noqa: F401
    reconstruct,  # noqa: F401
    vae,  # noqa: F401
)
