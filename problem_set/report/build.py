"""Build the report of a reproduction: report.md (figures copied beside it), a
self-contained report.html, and report.pdf when a converter is found."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from problem_set.report import doc, pdf, sections
from problem_set.report.sources import Source
from ucl import outdir
from ucl.lifecycle import atomic_write
from ucl.pipeline.command import Report

TITLE = "ucl: the problem set, reproduced"


@dataclass
class Built:
    markdown: Path
    html: Path
    pdf: Path | None
    note: str  # what happened to the PDF


def build_report(
    root: Path, out_dir: Path, *, make_pdf: bool = True, option: str = "--out"
) -> Built:
    """Read the runs under `root` (runs/reproduce), write the report into `out_dir`: a
    folder the report made, an empty one, or a missing one (anything else is refused)."""
    out_dir = outdir.claim(Path(out_dir), "the report", option)
    blocks = sections.build(Source(root))
    copied: list[str] = []
    md, html = out_dir / "report.md", out_dir / "report.html"
    # each file replaced whole, the earlier build's other figures removed last: a build that
    # fails (a full disk) leaves the last one readable
    atomic_write(md, doc.to_markdown(blocks, out_dir, copied=copied))
    atomic_write(html, doc.to_html(blocks, TITLE))
    now = [f"figures/{n}" for n in copied]
    outdir.record(out_dir, ["report.md", "report.html", *now])
    outdir.remove_written(out_dir, "figures", keep=now)
    if not make_pdf:
        return Built(md, html, None, "no PDF: not asked for")
    path, note = pdf.to_pdf(html)
    if path is not None:
        outdir.record(out_dir, [Path(path).name])
    return Built(md, html, path, note)


def _pipeline_report(root: Path, out: Path, make_pdf: bool) -> list[str]:
    built = build_report(root, out, make_pdf=make_pdf, option="--report-dir")
    return [f"report: {built.markdown}", f"        {built.html}", f"        {built.note}"]


# what scripts/pipeline.py and scripts/reproduce.py write after a pipeline with `report:`
PIPELINE_REPORT: Report = _pipeline_report
