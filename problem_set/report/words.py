"""How the answers write numbers and measures: rounded to what they support, measures named
in words, links to the tables and figures they come from."""

from __future__ import annotations

import math
import re

# Divergence measures by their code name: what a reader calls them. `{p}` and `{q}` are the
# two samples (the first and the second of the pair: real digits, then the GAN's).
MEASURE_WORDS = {
    "kl_hist_pq": "histogram KL ({p} to {q})",
    "kl_hist_qp": "histogram KL ({q} to {p})",
    "kl_knn_pq": "nearest-neighbour KL ({p} to {q})",
    "kl_knn_qp": "nearest-neighbour KL ({q} to {p})",
    "kl_knn_features_pq": "nearest-neighbour KL on classifier features ({p} to {q})",
    "kl_knn_features_qp": "nearest-neighbour KL on classifier features ({q} to {p})",
    "emd_opencv": "earth mover's distance (OpenCV)",
    "emd_exact": "earth mover's distance (exact)",
    "mmd2_biased": "MMD² (biased)",
    "mmd2_unbiased": "MMD² (unbiased)",
    "mmd_p_value": "MMD test",
    "mmd2_mixture": "MMD² over several kernel widths",
    "mmd_mixture_p_value": "MMD test over several kernel widths",
    "mmd2_mixture_values": "MMD² of pixel-value histograms",
    "mmd_mixture_values_p_value": "MMD test of pixel-value histograms",
    "mmd2_mixture_features": "MMD² of classifier features",
    "mmd_mixture_features_p_value": "MMD test of classifier features",
    "kid": "kernel inception distance (classifier features)",
    "kid_p_value": "kernel inception distance test",
    "features": "classifier features",
}


def measure(code: str, p: str = "real", q: str = "GAN") -> str:
    """A measure's name in words ('kl_hist_qp' -> 'histogram KL (GAN to real)')."""
    words = MEASURE_WORDS.get(code)
    return code if words is None else words.format(p=p, q=q)


def sig(v: float | None, digits: int = 2) -> str:
    """v to `digits` significant digits, without an exponent for everyday sizes."""
    if v is None:
        return "–"
    v = float(v)
    if not math.isfinite(v):
        return "∞" if v > 0 else ("−∞" if v < 0 else "not a number")
    if v == 0:
        return "0"
    if not 1e-3 <= abs(v) < 1e6:
        return f"{v:.{digits - 1}e}"
    places = digits - 1 - math.floor(math.log10(abs(v)))
    rounded = round(v, places)
    return f"{rounded:.{max(places, 0)}f}"


def pct(v: float | None, places: int = 1) -> str:
    """A share as a percentage to `places` decimals ('98.6%')."""
    return "–" if v is None else f"{100 * float(v):.{places}f}%"


def pm(mean: float | None, half: float | None, percent: bool = False) -> str:
    """A mean with its 95% half-width, both rounded to the half-width's first digit."""
    if mean is None:
        return "–"
    scale = 100 if percent else 1
    unit = "%" if percent else ""
    if half is None or not math.isfinite(half) or half == 0:
        return f"{sig(mean * scale, 3)}{unit}"
    places = max(0, -math.floor(math.log10(abs(half * scale))))
    return f"{mean * scale:.{places}f}{unit} ± {half * scale:.{places}f}"


def link(text: str, anchor: str) -> str:
    """A Markdown link to an anchor in the report (headings: their slug; figures: fig-...)."""
    return f"[{text}](#{anchor})"


def slug(heading: str) -> str:
    """The anchor of a heading (as problem_set.report.doc.Heading.anchor makes it)."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def figure_anchor(name: str) -> str:
    """The anchor of a figure by its file name beside the report ('gan_samples.png')."""
    return "fig-" + slug(name.removesuffix(".png"))


def p_value(p: float | None) -> str:
    """'p = 0.03', or 'p < 0.001' where the digits would show 0."""
    if p is None:
        return "p not measured"
    return "p < 0.001" if p < 1e-3 else f"p = {sig(p)}"


def compare(a: float | None, b: float | None, digits: int = 2) -> int:
    """-1, 0 or 1: how a compares with b once both are rounded as the report prints them
    (two values that print the same are not called different)."""
    if a is None or b is None:
        return 0
    if not (math.isfinite(a) and math.isfinite(b)):
        return (a > b) - (a < b)
    ra, rb = float(sig(a, digits).replace("−", "-")), float(sig(b, digits).replace("−", "-"))
    return (ra > rb) - (ra < rb)


def plural(n, word: str) -> str:
    n = int(n)
    return f"{n} {word}" + ("" if n == 1 else "s")
