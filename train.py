"""Train anything ucl knows: `python train.py model=mlp activation=elu -m hidden=64,128,256`."""

import sys

import hydra

from ucl.cli import bad_override_message, multirun_flag_first
from ucl.schema import register_schema

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    from ucl.objective import objective_value  # imported here: --help stays fast
    from ucl.run import run

    return objective_value(cfg, run(cfg))  # what a sweeper (Optuna) optimises


if __name__ == "__main__":
    if message := bad_override_message(sys.argv):
        sys.exit(f"train.py: {message}")
    sys.argv = multirun_flag_first(sys.argv)
    main()
