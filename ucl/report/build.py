"""Build the report of a reproduction: report.md (figures copied beside it), a
self-contained report.html, and report.pdf when a converter is found."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ucl.report import doc, pdf, sections
from ucl.report.sources import Source

TITLE = "ucl: the problem set, reproduced"


@dataclass
class Built:
    markdown: Path
    html: Path
    pdf: Path | None
    note: str  # what happened to the PDF


def build_report(root: Path, out_dir: Path, *, make_pdf: bool = True) -> Built:
    """Read the runs under `root` (runs/reproduce), write the report into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / "figures", ignore_errors=True)  # figures of an earlier build
    blocks = sections.build(Source(root))
    md = out_dir / "report.md"
    md.write_text(doc.to_markdown(blocks, out_dir))
    html = out_dir / "report.html"
    html.write_text(doc.to_html(blocks, TITLE))
    if not make_pdf:
        return Built(md, html, None, "no PDF: not asked for")
    path, note = pdf.to_pdf(html)
    return Built(md, html, path, note)
