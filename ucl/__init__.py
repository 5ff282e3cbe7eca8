"""ucl: config-driven experiments for neural networks, autoencoders and generative models.

`ucl.run.run(cfg)` runs one experiment from a composed config; `train.py` is its CLI.
Importing ucl changes nothing in the process: the OpenMP wait policy a run uses is set by
the entry points (train.py, scripts/bench.py) before torch loads, see `ucl.lifecycle`.
"""

__version__ = "0.1.0"
