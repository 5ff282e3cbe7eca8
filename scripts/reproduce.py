"""Reproduce the whole problem set, then write the report: the pipeline
conf/pipeline/problem_set.yaml (the same as scripts/pipeline.py pipeline=problem_set).

    python scripts/reproduce.py                  # every stage at the problem set's settings
    python scripts/reproduce.py --smoke          # the same pipeline, tiny settings (minutes)
    python scripts/reproduce.py --list           # the stages, what runs and why, estimates
    python scripts/reproduce.py --only gan       # one stage (and the stages it needs)
    python scripts/reproduce.py --estimate gan=9 # replace a stage's estimate (minutes)

Runs go to fixed dirs under runs/reproduce/<stage> (--smoke: runs/reproduce-smoke/), so
running the command again skips what completed and continues what was interrupted. The
report goes to runs/report/ (--smoke: runs/reproduce-smoke/report/). The retina stage
reads the real files when UCL_RETINA_COUNTS and UCL_RETINA_CLUSTERS name them, else a
synthetic stand-in. Exit code 0 when every stage completed, 1 otherwise.
"""

from __future__ import annotations

from ucl.lifecycle import as_command, ctrl_c_ends_quietly

ctrl_c_ends_quietly(__name__)  # run as a script: nothing is written while imports load

import sys

from problem_set.report.build import PIPELINE_REPORT
from ucl.pipeline.command import main


def run(argv: list[str] | None = None) -> int:
    return main(
        argv, prog="reproduce.py", doc=__doc__, pipeline="problem_set", report=PIPELINE_REPORT
    )


if __name__ == "__main__":
    sys.exit(as_command("reproduce", run))
