"""A report as a list of blocks (headings, paragraphs, lists, tables, figures), rendered
to Markdown (figures as files beside it) and to one self-contained HTML page (figures
embedded as base64 data URIs). Text may hold `code` and **bold** spans and [links](#anchor)
to a heading's anchor or a figure's (fig-<its file name's stem>)."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ucl.lifecycle import atomic_write
from ucl.sweeps import markdown

FLOAT_DIGITS = 4  # digits after the point for numbers in tables and text


@dataclass
class Heading:
    level: int  # 1: the title, 2: a section, 3: a subsection
    text: str

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-")


@dataclass
class Text:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list]


@dataclass
class Figure:
    path: Path  # a PNG in a run dir
    caption: str
    name: str = ""  # its file name beside the Markdown (default: <run dir>_<file>)


@dataclass
class Code:
    text: str  # shown verbatim


Block = Heading | Text | Bullets | Table | Figure | Code


def cell(v) -> str:
    """A value as a table shows it: 4 decimals, big numbers whole, None as a dash."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and abs(v) < 10**-FLOAT_DIGITS:
            return f"{v:.2e}"
        return f"{v:.{FLOAT_DIGITS}f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


# -- Markdown ---------------------------------------------------------------------------


def to_markdown(
    blocks: list[Block], out_dir: Path, figures: str = "figures", copied: list[str] | None = None
) -> str:
    """Markdown text; each figure is copied to out_dir/figures/ under a unique name (added
    to `copied`)."""
    out_dir = Path(out_dir)
    (out_dir / figures).mkdir(parents=True, exist_ok=True)
    parts, used = [], set()
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Text):
            parts.append(b.text)
        elif isinstance(b, Bullets):
            parts.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            parts.append(_md_table(b))
        elif isinstance(b, Figure):
            name = _unique(b.name or _figure_name(b.path), used)
            atomic_write(out_dir / figures / name, Path(b.path).read_bytes())
            if copied is not None:
                copied.append(name)
            anchor = figure_id(b)
            parts.append(
                f'<a id="{anchor}"></a>\n\n![{b.caption}]({figures}/{name})\n\n*{b.caption}*'
            )
        elif isinstance(b, Code):
            parts.append(f"```\n{b.text.rstrip()}\n```")
    return "\n\n".join(parts) + "\n"


def figure_id(b: Figure) -> str:
    """The anchor a figure is linked by: fig- and the slug of its file name's stem."""
    stem = Path(b.name or _figure_name(b.path)).stem
    return "fig-" + re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")


def _md_table(t: Table) -> str:
    frame = pd.DataFrame(t.rows, columns=t.header, dtype=object)
    return markdown(frame, lambda v: cell(v).replace("|", "\\|")).rstrip("\n")


def _figure_name(path: Path) -> str:
    """Figures of different runs share names (error_curves.png): prefix the run dir's."""
    path = Path(path)
    return f"{path.parent.parent.name}_{path.name}"


def _unique(name: str, used: set[str]) -> str:
    stem, suffix, i = Path(name).stem, Path(name).suffix, 1
    while name in used:
        i += 1
        name = f"{stem}_{i}{suffix}"
    used.add(name)
    return name


# -- HTML -------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; image-rendering: pixelated; }
figcaption { font-size: 0.85rem; color: #555; }
code, pre { background: #f6f6f6; font-size: 0.85rem; }
pre { padding: 0.6rem; overflow-x: auto; }
nav ul { columns: 2; }
@media print { figure, table { page-break-inside: avoid; }
               figure img { max-height: 12cm; max-width: 100%; width: auto; } }
"""


def to_html(blocks: list[Block], title: str) -> str:
    """One HTML page holding everything, figures included (base64 PNG data URIs)."""
    sections = [b for b in blocks if isinstance(b, Heading) and b.level == 2]
    toc = "".join(f'<li><a href="#{h.anchor}">{_inline(h.text)}</a></li>' for h in sections)
    body = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f'<h{b.level} id="{b.anchor}">{_inline(b.text)}</h{b.level}>')
            if b.level == 1 and toc:
                body.append(f"<nav><ul>{toc}</ul></nav>")
        elif isinstance(b, Text):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            body.append(_html_table(b))
        elif isinstance(b, Figure):
            data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
            body.append(
                f'<figure id="{figure_id(b)}">'
                f'<img src="data:image/png;base64,{data}" alt="{html.escape(b.caption)}">'
                f"<figcaption>{_inline(b.caption)}</figcaption></figure>"
            )
        elif isinstance(b, Code):
            body.append(f"<pre>{html.escape(b.text.rstrip())}</pre>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{_inline(str(h))}</th>" for h in t.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_inline(cell(v))}</td>" for v in row) + "</tr>" for row in t.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _inline(text: str) -> str:
    """Escape, then `code` and **bold** spans as tags."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\[([^\]]+)\]\((#[a-z0-9-]+)\)", r'<a href="\2">\1</a>', out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
