"""Model families, one file each; importing this package registers them."""

from ucl.models.autoencoder import Autoencoder
from ucl.models.gan import GAN, Discriminator, Generator, train_discriminator, train_generator
from ucl.models.logreg import LogisticRegression
from ucl.models.mlp import MLP, DeepMLP
from ucl.models.vae import VAE, VAE_loss_function

__all__ = ["LogisticRegression", "MLP", "DeepMLP", "Autoencoder", "VAE", "VAE_loss_function"]
__all__ += ["GAN", "Generator", "Discriminator", "train_discriminator", "train_generator"]
