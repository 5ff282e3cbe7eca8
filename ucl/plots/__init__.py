"""Every figure ucl draws, one module per kind; all off-screen (Agg), returned as figures
for `Tracker.figure` to save as PNG and show in TensorBoard."""

import matplotlib

matplotlib.use("Agg")
