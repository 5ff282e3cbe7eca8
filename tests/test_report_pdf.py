"""report.pdf made by a real converter: headless Chromium, as .ci/run installs it from
Debian, turns the report of a runs root into a multi-page PDF holding every section."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from problem_set.report.build import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
POPPLER = shutil.which("pdfinfo") and shutil.which("pdftotext")
SECTIONS = ["Classification", "Autoencoders", "Variational autoencoder",
            "Generative adversarial network", "Divergences", "Environment"]  # fmt: skip


@pytest.mark.slow  # a headless Chromium
@pytest.mark.skipif(not CHROMIUM, reason="no chromium (.ci/run installs it from Debian)")
@pytest.mark.skipif(not POPPLER, reason="no pdfinfo (.ci/run installs poppler-utils)")
def test_report_pdf_is_written_by_chromium_with_every_section(tmp_path):
    built = build_report(tmp_path / "runs", tmp_path / "out")  # every stage "not run"
    assert built.note == "PDF written by chromium", built.note
    assert built.pdf == tmp_path / "out" / "report.pdf"
    info = subprocess.run(["pdfinfo", str(built.pdf)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr  # a PDF poppler reads
    pages = int(re.search(r"^Pages:\s+(\d+)$", info.stdout, re.M).group(1))
    assert pages >= 2, info.stdout  # the questions and six sections do not fit on one page
    text = subprocess.run(["pdftotext", "-layout", str(built.pdf), "-"], capture_output=True,
                          text=True).stdout  # fmt: skip
    assert text.count("\f") == pages  # pdftotext ends each page with a form feed
    headings = [line.strip() for line in text.splitlines()]
    assert all(section in headings for section in SECTIONS), headings[:40]
    assert "not run" in text  # the stages' answers, from the (empty) runs root
