"""Dataset loaders (registered by name) and the in-memory batcher."""

from ucl.data import mnist  # noqa: F401  (registers mnist, fashion_mnist)
from ucl.data.retina import datasets  # noqa: F401  (registers retinal_bipolar, retina_synthetic)
from ucl.data.splits import Batcher, Splits

__all__ = ["Batcher", "Splits"]
