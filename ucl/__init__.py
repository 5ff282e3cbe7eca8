"""ucl: config-driven experiments for neural networks, autoencoders and generative models.

`ucl.run.run(cfg)` runs one experiment from a composed config; `train.py` is its CLI.
"""

import os as _os

# OpenMP threads that wait for work sleep instead of spinning (set before torch loads its
# OpenMP runtime; an OMP_WAIT_POLICY of your own wins). Spinning threads are what make a
# run with one thread per core 10-60x slower whenever anything else holds a core: a
# logistic-regression epoch took 12 s instead of 0.2 s beside one other job on 2 cores.
# The price on an otherwise idle machine, at 2 threads: logreg epochs 0.29 s instead of
# 0.13 s, GAN steps 20 ms instead of 17.6 ms; OMP_WAIT_POLICY=ACTIVE takes it back when
# the machine is yours alone, and threads=1 (0.14 s, either policy) sidesteps it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
