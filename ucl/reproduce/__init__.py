"""Reproduce the whole problem set with one command: the stages (stages.py) run in
dependency order as `python train.py` subprocesses into fixed run dirs (runner.py), and
the report is built from what they wrote (problem_set/report/).

    python scripts/reproduce.py            # every stage at the problem set's settings
    python scripts/reproduce.py --smoke    # the same pipeline with tiny settings
"""
