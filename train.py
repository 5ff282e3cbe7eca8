"""Train anything ucl knows: `python train.py model=mlp activation=elu -m hidden=64,128,256`."""

import sys

import hydra

from ucl.schema import register_schema

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    from ucl.run import run  # imported here: --help and tab completion stay fast

    return run(cfg)


def multirun_flag_first(argv: list[str]) -> list[str]:
    """Hydra's parser wants `-m` before the overrides; accept it anywhere among them."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return [argv[0], *flags, *(a for a in argv[1:] if a not in flags)]


if __name__ == "__main__":
    sys.argv = multirun_flag_first(sys.argv)
    main()
