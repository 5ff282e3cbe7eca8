"""Pipelines of dependent runs and sweeps, written as config (conf/pipeline/<name>.yaml):
the file is loaded and checked (stages.py), each stage runs as `python train.py [-m]` into
its fixed dir once the stages it needs completed (runner.py, launch.py), a value can come
from an earlier sweep's table (choices.py), and a stage is reused only when exactly its jobs
completed with what they would run with now (state.py).

    python scripts/pipeline.py pipeline=NAME      # any pipeline
    python scripts/reproduce.py [--smoke]         # the problem set's
"""
