"""ucl: config-driven experiments for neural networks, autoencoders and generative models.

`ucl.run.run(cfg)` runs one experiment from a composed config; `train.py` is its CLI.
"""

__version__ = "0.1.0"
