"""Build the report of a reproduction: report.md (figures copied beside it), a
self-contained report.html, and report.pdf when a converter is found."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from problem_set.report import doc, pdf, sections
from problem_set.report.sources import Source
from ucl import outdir
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
    outdir.remove_written(out_dir, "figures")  # figures of an earlier build, and only those
    figures = out_dir / "figures"
    before = set(figures.iterdir()) if figures.is_dir() else set()
    blocks = sections.build(Source(root))
    md = out_dir / "report.md"
    md.write_text(doc.to_markdown(blocks, out_dir))
    html = out_dir / "report.html"
    html.write_text(doc.to_html(blocks, TITLE))
    made = sorted(p.name for p in set(figures.iterdir()) - before) if figures.is_dir() else []
    outdir.record(out_dir, ["report.md", "report.html", *(f"figures/{n}" for n in made)])
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
