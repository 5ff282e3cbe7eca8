"""Run a pipeline of stages written as config: conf/pipeline/<name>.yaml, or your own file.

    python scripts/pipeline.py pipeline=problem_set          # the problem set (= reproduce.py)
    python scripts/pipeline.py pipeline=my_study.yaml --list # what would run, and why
    python scripts/pipeline.py pipeline=my_study.yaml        # run it; again: continue it
    python scripts/pipeline.py pipeline=problem_set_smoke hydra/launcher=submitit_slurm

A stage is `python train.py [-m] OVERRIDES` into <root>/<stage>, started once the stages it
needs completed; "{stage}" in an override is that stage's run dir, "{stage.key}" the value
of `key` in the best cell of that sweep's table. Overrides after the pipeline go to every
stage. A stage whose runs completed with what it needs now is reused; one whose need ran
again or changed runs again (the old runs are kept aside). Options: --help.
"""

from __future__ import annotations

from ucl.lifecycle import as_command, ctrl_c_ends_quietly

ctrl_c_ends_quietly(__name__)  # run as a script: nothing is written while imports load

import sys

from problem_set.report.build import PIPELINE_REPORT
from ucl.pipeline.command import main


def run(argv: list[str] | None = None) -> int:
    return main(argv, prog="pipeline.py", doc=__doc__, report=PIPELINE_REPORT)


if __name__ == "__main__":
    sys.exit(as_command("pipeline", run))
