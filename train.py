"""Train anything ucl knows: `python train.py model=mlp activation=elu -m hidden=64,128,256`."""

import sys

import hydra

from ucl.cli import job
from ucl.cli import main as cli_main
from ucl.schema import register_schema

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    from ucl.objective import objective_value  # imported here: --help stays fast

    return objective_value(cfg, job(cfg))  # what a sweeper (Optuna) optimises


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv, main))
