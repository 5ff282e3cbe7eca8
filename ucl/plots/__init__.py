"""Every figure ucl draws: a training run's (training), the latent space's (latent), the
divergence table's (divergence) and a sweep's (sweep); all off-screen (Agg), returned as
figures for `Tracker.figure` to save as PNG and show in TensorBoard."""

import matplotlib

matplotlib.use("Agg")
