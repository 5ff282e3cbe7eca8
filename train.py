"""Train anything ucl knows: `python train.py model=mlp activation=elu -m hidden=64,128,256`."""

import sys

import hydra

from ucl.cli import bad_override_message, multirun_flag_first
from ucl.schema import register_schema

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    from ucl.run import run  # imported here: --help and tab completion stay fast

    return run(cfg)


if __name__ == "__main__":
    if message := bad_override_message(sys.argv):
        sys.exit(f"train.py: {message}")
    sys.argv = multirun_flag_first(sys.argv)
    main()
