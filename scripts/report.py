"""Build the report from existing runs alone (nothing is trained).

    python scripts/report.py                     # runs/reproduce -> runs/report/
    python scripts/report.py --smoke             # runs/reproduce-smoke -> its report/
    python scripts/report.py --runs DIR --out DIR --no-pdf

Writes report.md (figures copied into figures/ beside it), a self-contained report.html
(figures embedded), and report.pdf when a converter (Chromium/Chrome, wkhtmltopdf,
WeasyPrint, LibreOffice) is installed. Stages that did not run show as "not run".
"""

from __future__ import annotations

from ucl.lifecycle import as_command, ctrl_c_ends_quietly

ctrl_c_ends_quietly(__name__)  # run as a script: nothing is written while imports load

import argparse
import sys
from pathlib import Path

from problem_set.report.build import build_report
from ucl import outdir
from ucl.outdir import OutputDirError
from ucl.pipeline.stages import REPO

FULL_ROOT, SMOKE_ROOT = REPO / "runs" / "reproduce", REPO / "runs" / "reproduce-smoke"
FULL_REPORT = REPO / "runs" / "report"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the --smoke reproduction")
    parser.add_argument("--runs", type=Path, help="the reproduction root (stage dirs)")
    parser.add_argument("--out", type=Path, help="where the report goes")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF conversion")
    args = parser.parse_args(argv)
    root = args.runs or (SMOKE_ROOT if args.smoke else FULL_ROOT)
    out = args.out or (root / "report" if args.smoke or args.runs else FULL_REPORT)
    missing = not root.is_dir()  # before the report's own folder, which may be inside it
    if missing and args.runs and not args.out:  # the report would make the folder
        print(
            f"report: --runs {root} is not a folder; give the reproduction root (its stage "
            f"dirs), or add --out DIR for a report in which every stage shows as not run",
            file=sys.stderr,
        )
        return 2
    try:  # a folder that is not the report's is refused before anything is read
        outdir.claim(out, "the report", "--out")
    except OutputDirError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    if missing:  # still a report: every stage shows as not run
        print(
            f"report: {root} is not a folder, so every stage shows as not run; run "
            f"python scripts/reproduce.py first, or give --runs DIR",
            file=sys.stderr,
        )
    built = build_report(root, out, make_pdf=not args.no_pdf)
    print(f"{built.markdown}\n{built.html}\n{built.pdf or built.note}")
    return 0


if __name__ == "__main__":
    sys.exit(as_command("report", main))
