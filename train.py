"""Train anything ucl knows: `python train.py model=mlp activation=elu -m hidden=64,128,256`."""

import signal
import sys

# until ucl's own handlers are in place (ucl.cli.main), Ctrl-C ends the process as SIGTERM
# and SIGHUP do, with 128 + the signal and no traceback: nothing has been written yet
signal.signal(signal.SIGINT, signal.SIG_DFL)

from ucl.threads import sleeping_threads  # noqa: E402

sleeping_threads()  # before torch loads OpenMP: idle threads sleep (docs/performance.md, "Threads")

import hydra  # noqa: E402

from ucl.cli import job  # noqa: E402
from ucl.cli import main as cli_main  # noqa: E402
from ucl.schema import register_schema  # noqa: E402

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    return job(cfg)  # the metric `objective` names: what a sweeper (Optuna) optimises


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv, main))
