"""HTML -> PDF with whatever converter this machine has: a headless Chromium or Chrome,
wkhtmltopdf, WeasyPrint, or LibreOffice. None found: no PDF, and the report says so."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

CONVERT_TIMEOUT_S = 300  # a converter stuck longer than this is given up on
CHROMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
OFFICES = ("libreoffice", "soffice")


def converters() -> list[tuple[str, list[str]]]:
    """(name, command template) of every converter found; {html} and {pdf} are filled in."""
    found = []
    for exe in CHROMES:
        if path := shutil.which(exe):
            found.append(
                (
                    exe,
                    [
                        path,
                        "--headless",
                        "--disable-gpu",
                        "--no-sandbox",
                        "--no-pdf-header-footer",
                        "--print-to-pdf={pdf}",
                        "{html}",
                    ],
                )
            )
    if path := shutil.which("wkhtmltopdf"):
        found.append(("wkhtmltopdf", [path, "--quiet", "{html}", "{pdf}"]))
    if importlib.util.find_spec("weasyprint") is not None:
        found.append(("weasyprint", [sys.executable, "-m", "weasyprint", "{html}", "{pdf}"]))
    for exe in OFFICES:
        if path := shutil.which(exe):
            found.append(
                (exe, [path, "--headless", "--convert-to", "pdf", "--outdir", "{outdir}", "{html}"])
            )
    return found


def to_pdf(html_path: Path) -> tuple[Path | None, str]:
    """(the PDF beside html_path, or None; what happened, for the report's console line)."""
    html_path = Path(html_path).resolve()
    pdf = html_path.with_suffix(".pdf")
    tried = []
    for name, template in converters():
        command = [
            part.format(html=html_path, pdf=pdf, outdir=html_path.parent) for part in template
        ]
        try:
            proc = subprocess.run(
                command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            tried.append(f"{name}: {e}")
            continue
        if proc.returncode == 0 and pdf.is_file() and pdf.stat().st_size > 0:
            return pdf, f"PDF written by {name}"
        tried.append(f"{name}: exit code {proc.returncode} {proc.stderr.strip()[-200:]}")
    if not tried:
        looked = ", ".join([*CHROMES, "wkhtmltopdf", "weasyprint", *OFFICES])
        return None, f"no PDF: no converter found (looked for {looked})"
    return None, "no PDF: every converter failed (" + "; ".join(tried) + ")"
