"""The variational autoencoder of Kingma & Welling 2013 ("Auto-Encoding Variational Bayes",
arXiv:1312.6114) with fully connected encoder and decoder, and its loss.

The encoder gives the mean and log-variance of a diagonal Gaussian q(z|x); a code is
drawn with the reparameterisation trick z = mu + sigma * eps, eps ~ N(0, I) (section 2.4),
so the sample is a differentiable function of the encoder's outputs; the decoder maps z
back to the data space.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ucl.keys import MODELS
from ucl.models.autoencoder import activation_stack, check_widths, coder_args

RECONSTRUCTIONS = ("mse", "bce")


class VAE(nn.Module):
    """x (B, D) -> hidden -> (mu, logvar) (B, latent_dim each) -> z -> x_hat (B, D).

    widths: hidden widths of the encoder, input side first; the decoder mirrors them.
    act: hidden activation; output_act: on the reconstruction ("sigmoid" for pixels).
    """

    def __init__(
        self,
        in_features: int = 784,
        widths: Sequence[int] = (512, 256),
        latent_dim: int = 2,
        act: str = "relu",
        output_act: str | None = "sigmoid",
    ):
        super().__init__()
        widths = check_widths(widths, latent_dim)
        if not widths:  # mu and logvar are read off the last hidden layer
            raise ValueError(
                "model.widths=[]: the VAE's encoder needs at least one hidden width; e.g. "
                "model.widths=[512,256]"
            )
        self.latent_dim = latent_dim
        self.body = activation_stack([in_features, *widths], act, act)  # (B, D) -> (B, widths[-1])
        self.mu = nn.Linear(widths[-1], latent_dim)  # mean of q(z|x)
        self.logvar = nn.Linear(widths[-1], latent_dim)  # log sigma^2 of q(z|x)
        self.decoder = activation_stack(
            [latent_dim, *reversed(widths), in_features], act, output_act
        )

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each (B, latent_dim)."""
        h = self.body(x.flatten(1))
        return self.mu(h), self.logvar(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code the figures and latent metrics use: the posterior mean, (B, latent_dim)."""
        return self.encode_distribution(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, latent_dim) -> (B, D)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (Kingma & Welling 2013, eq. 10)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction of a sampled code (B, D), mu, logvar)."""
        mu, logvar = self.encode_distribution(x)
        return self.decode(self.reparameterize(mu, logvar, generator)), mu, logvar


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, (B,).

    Closed form (Kingma & Welling 2013, Appendix B):
        -KL = 1/2 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def vae_loss_terms(
    recon_x: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    reconstruction: str = "mse",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction, KL), each summed over its dimensions and averaged over the batch.

    reconstruction: "mse" sums squared errors over pixels (the problem set's choice);
    "bce" sums binary cross-entropies (the Bernoulli decoder of Kingma & Welling,
    Appendix C.1; needs outputs and targets in [0, 1]).
    """
    x = x.flatten(1)
    if reconstruction == "mse":
        rec = F.mse_loss(recon_x, x, reduction="none").sum(1)
    elif reconstruction == "bce":
        rec = F.binary_cross_entropy(recon_x, x, reduction="none").sum(1)
    else:
        raise ValueError(
            f"reconstruction={reconstruction!r} is unknown; use one of {RECONSTRUCTIONS} "
            f"(model.reconstruction=mse)"
        )
    return rec.mean(), kl_to_standard_normal(mu, logvar).mean()


def VAE_loss_function(  # noqa: N802  (the problem set's name)
    recon_x: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_weight: float = 1.0,
    reconstruction: str = "mse",
) -> torch.Tensor:
    """The negative ELBO per sample, averaged over the batch: reconstruction + kl_weight * KL.

    kl_weight = 1 is the VAE; other values give the beta-VAE of Higgins et al. 2017.
    See `vae_loss_terms` for the two terms.
    """
    rec, kl = vae_loss_terms(recon_x, x, mu, logvar, reconstruction)
    return rec + kl_weight * kl


vae_loss_function = VAE_loss_function  # snake_case alias


@MODELS.register("vae")
def build_vae(cfg, data):
    return VAE(**coder_args(cfg, data))
