"""Model families, one file each; importing this package registers them."""

from ucl.models.autoencoder import Autoencoder
from ucl.models.logreg import LogisticRegression
from ucl.models.mlp import MLP, DeepMLP

__all__ = ["LogisticRegression", "MLP", "DeepMLP", "Autoencoder"]
