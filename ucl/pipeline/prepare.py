"""Before stages run side by side: load MNIST once, so its download or import into the
data root happens in one process (torchvision's download is not safe for two processes
writing the same files), and a missing data source shows before any stage starts."""

from __future__ import annotations

from ucl.pipeline.stages import Plan, mnist_data


def prepare_mnist(plan: Plan) -> str | None:
    """Load the MNIST the plan's stages read; None when done (or nothing reads it), else
    what went wrong (each MNIST stage will then fail with the same message)."""
    first = next((p for p in plan.stages if p.stage.data is mnist_data), None)
    if first is None:
        return None
    from ucl.config import compose
    from ucl.keys import DATASETS
    from ucl.schema import load_all

    load_all()
    # the files are what is shared; each stage draws its own validation split
    cfg = compose([*(a for a in first.args if a.startswith("dataset.")), "dataset.validation=0"])
    try:
        DATASETS.create(cfg.dataset.name, cfg)
    except Exception as e:  # any failure: reported, and each MNIST stage will say it again
        return f"{type(e).__name__}: {e}"
    return None
