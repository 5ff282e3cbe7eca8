"""A synthetic stand-in for the Shekhar et al. 2016 retinal bipolar data, in the real formats.

`write_synthetic_retina` writes the two files `ucl.data.retina` reads, byte for byte in the
published formats (see `ucl.data.retina.files`): the gzip counts matrix (genes x cells, a
header of cell names only, no corner field) and the clusters file (NAME/CLUSTER/SUB-CLUSTER
header, TYPE row, one row per cell). Gene symbols start with SYNTHETIC_GENE_PREFIX, which is
how the loader tells the stand-in from the real data.

The model, per cell c of type t and gene g: counts ~ NegativeBinomial(mean = L_c * p_tg,
size = NB_SIZE), where p_t is a baseline profile shared by all cells multiplied by fold
changes of the gene programs type t expresses (e.g. "bipolar", then "ON cone", then its own
markers), so subtypes share most of their programs and differ in a few markers, as in the
real data. L_c is a log-normal library size, scaled so that ~95% of the counts are zero.
Type shares follow the paper: rod bipolar cells ~40%, Mueller glia ~11%, the 13 cone
bipolar types 1-6% each, a few amacrine cells and photoreceptors (< 1% each). Also written:
doublets (labelled "Doublets/Contaminants"; the mean of two types' profiles) and
low-quality cells that are in the counts file but not in the clusters file, as in the real
files, where the authors' quality control removed them.

Command line: python -m ucl.data.retina.synthetic OUT_DIR [--cells N --genes G --seed S]
"""

from __future__ import annotations

import argparse
import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import optimize, sparse

from ucl.data.retina.files import (
    CLUSTERS_FILENAME,
    COUNTS_FILENAME,
    DOUBLET_LABEL,
    SYNTHETIC_GENE_PREFIX,
)

# (cluster label as in the SCP3 file, share of the labelled cells, programs besides its own)
CELL_TYPES = [
    ("RBC (Rod Bipolar cell)", 0.400, ("bipolar", "on")),
    ("MG (Mueller Glia)", 0.105, ("glia",)),
    ("BC6", 0.055, ("bipolar", "cone", "on")),
    ("BC7 (Cone Bipolar cell 7)", 0.050, ("bipolar", "cone", "on")),
    ("BC2", 0.045, ("bipolar", "cone", "off")),
    ("BC5A (Cone Bipolar cell 5A)", 0.040, ("bipolar", "cone", "on", "bc5")),
    ("BC3A", 0.040, ("bipolar", "cone", "off", "bc3")),
    ("BC1A", 0.035, ("bipolar", "cone", "off", "bc1")),
    ("BC3B", 0.035, ("bipolar", "cone", "off", "bc3")),
    ("BC5C", 0.030, ("bipolar", "cone", "on", "bc5")),
    ("BC5D", 0.030, ("bipolar", "cone", "on", "bc5")),
    ("BC4", 0.030, ("bipolar", "cone", "off")),
    ("BC8/9 (mixture of BC8 and BC9)", 0.025, ("bipolar", "cone", "on")),
    ("BC5B", 0.020, ("bipolar", "cone", "on", "bc5")),
    ("BC1B", 0.012, ("bipolar", "cone", "off", "bc1")),
    ("AC (Amacrine cell)", 0.008, ("amacrine",)),
    ("Rod Photoreceptors", 0.006, ("photoreceptor",)),
    ("Cone Photoreceptors", 0.004, ("photoreceptor",)),
]
DOUBLET_SHARE = 0.03  # of the labelled cells; with the shares above they sum to 1
UNLABELLED_SHARE = 0.04  # of all cells: in the counts file only (failed quality control)
UNLABELLED_LIBRARY = 0.4  # their library size relative to a labelled cell
DOUBLET_LIBRARY = 1.7  # two cells' worth of mRNA, captured less than twice as well

ZERO_FRACTION = 0.95  # target share of zero counts, which sets the mean library size
NB_SIZE = 2.0  # negative binomial size (1/dispersion): UMI counts are overdispersed
LIBRARY_SIGMA = 0.5  # log-normal spread of the per-cell library size
BASELINE_SIGMA = 1.5  # log-normal spread of the baseline gene expression (a few genes dominate)
PROGRAM_GENES = 0.03  # share of the genes up-regulated by each shared program
PROGRAM_FOLD = 6.0  # their median fold change
MARKER_GENES = 0.02  # share of the genes up-regulated by each type's own markers
MARKER_FOLD = 10.0  # their median fold change
FOLD_SIGMA = 0.4  # log-normal spread of fold changes
BATCHES = 6  # cell names look like the real ones: Bipolar<batch>_<12-nt barcode>
GENE_CHUNK = 256  # genes sampled and written at a time (bounds memory for large outputs)


def write_synthetic_retina(
    out_dir: str | os.PathLike, n_cells: int = 3000, n_genes: int = 2000, seed: int = 0
) -> tuple[Path, Path]:
    """Write COUNTS_FILENAME and CLUSTERS_FILENAME into out_dir; return their paths.

    n_cells counts every column of the counts file (labelled, doublets and unlabelled);
    the same seed writes the same bytes.
    """
    rng = np.random.default_rng(seed)
    kind, pair, names, blocks = _simulate(n_cells, n_genes, rng)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    counts_path = out_dir / COUNTS_FILENAME
    with (
        open(counts_path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as f,
    ):
        f.write(("\t".join(names) + "\n").encode())  # cell names only: no corner field
        for start, block in blocks:
            lines = [
                f"{SYNTHETIC_GENE_PREFIX}{start + j:05d}\t" + "\t".join(map(str, row))
                for j, row in enumerate(block.T.tolist())
            ]
            f.write(("\n".join(lines) + "\n").encode())

    clusters_path = out_dir / CLUSTERS_FILENAME
    rows = ["NAME\tCLUSTER\tSUB-CLUSTER", "TYPE\tgroup\tgroup"]
    for i in rng.permutation(n_cells):  # the real file is not in the counts file's order
        if kind[i] != 2:
            label = DOUBLET_LABEL if kind[i] == 1 else CELL_TYPES[pair[i, 0]][0]
            rows.append(f"{names[i]}\t{label}\t{label}")
    clusters_path.write_text("\n".join(rows) + "\n")
    return counts_path, clusters_path


def synthetic_counts(n_cells: int, n_genes: int, seed: int = 0) -> sparse.csc_matrix:
    """The counts `write_synthetic_retina` writes for these arguments, as a sparse
    (cells, genes) int64 matrix, without the text: for measuring the preprocessing at sizes
    whose text would take minutes to write and parse."""
    _, _, _, blocks = _simulate(n_cells, n_genes, np.random.default_rng(seed))
    return sparse.hstack([sparse.csc_matrix(block) for _, block in blocks], format="csc")


MIN_SIZE = 100  # cells and genes, at the least: every cell type gets cells and markers


def _simulate(
    n_cells: int, n_genes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[str], Iterator[tuple[int, np.ndarray]]]:
    """The cells (kind and type pair, see _cell_types; names) and a generator of their
    counts, (first gene, (cells, GENE_CHUNK) block), drawing from rng as it goes."""
    if n_cells < MIN_SIZE or n_genes < MIN_SIZE:
        raise ValueError(
            f"n_cells={n_cells}, n_genes={n_genes}: give at least {MIN_SIZE} of each, so that "
            f"every cell type gets cells and markers."
        )
    kind, pair = _cell_types(n_cells, rng)
    profiles = _type_profiles(n_genes, rng)  # (types, genes), rows sum to 1
    library = rng.lognormal(0.0, LIBRARY_SIGMA, n_cells)
    library *= np.where(kind == 1, DOUBLET_LIBRARY, np.where(kind == 2, UNLABELLED_LIBRARY, 1))
    library *= _library_scale(profiles, pair, library, rng)
    names = _cell_names(n_cells, rng)

    def blocks() -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, n_genes, GENE_CHUNK):
            genes = slice(start, start + GENE_CHUNK)
            mu = library[:, None] * _cell_profiles(profiles[:, genes], pair)  # (cells, chunk)
            yield start, rng.poisson(rng.gamma(NB_SIZE, mu / NB_SIZE))  # NB as gamma-Poisson

    return kind, pair, names, blocks()


def _cell_types(n_cells: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: its kind (0 labelled, 1 doublet, 2 unlabelled) and a pair of type indices,
    (cells, 2), the same type twice except in doublets.

    The labelled counts are the shares rounded by largest remainder, not sampled, so the
    order of the types by frequency (what classes=k picks) is the same for every seed.
    """
    n_unlabelled = round(n_cells * UNLABELLED_SHARE)
    shares = np.array([t[1] for t in CELL_TYPES])
    p = shares / shares.sum()
    sizes = _largest_remainder(
        np.r_[p * (1 - DOUBLET_SHARE), DOUBLET_SHARE], n_cells - n_unlabelled
    )
    singlets = np.repeat(np.arange(len(CELL_TYPES)), sizes[:-1])
    unlabelled = rng.choice(len(CELL_TYPES), n_unlabelled, p=p)
    pair = np.concatenate(
        [
            np.stack([singlets, singlets], axis=1),
            rng.choice(len(CELL_TYPES), (sizes[-1], 2), p=p),  # doublets (may be homotypic)
            np.stack([unlabelled, unlabelled], axis=1),
        ]
    )
    kind = np.repeat([0, 1, 2], [len(singlets), sizes[-1], n_unlabelled])
    order = rng.permutation(n_cells)
    return kind[order], pair[order]


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    exact = shares * total
    sizes = np.floor(exact).astype(np.int64)
    sizes[np.argsort(sizes - exact, kind="stable")[: total - sizes.sum()]] += 1
    return sizes


def _type_profiles(n_genes: int, rng: np.random.Generator) -> np.ndarray:
    """Mean expression profile of each cell type, (types, genes), each row summing to 1."""
    baseline = rng.lognormal(0.0, BASELINE_SIGMA, n_genes)
    programs = sorted({p for t in CELL_TYPES for p in t[2]})
    folds = {p: _fold_changes(n_genes, PROGRAM_GENES, PROGRAM_FOLD, rng) for p in programs}
    profiles = np.empty((len(CELL_TYPES), n_genes))
    for i, (_, _, type_programs) in enumerate(CELL_TYPES):
        profile = baseline * _fold_changes(n_genes, MARKER_GENES, MARKER_FOLD, rng)
        for p in type_programs:
            profile *= folds[p]
        profiles[i] = profile / profile.sum()
    return profiles


def _fold_changes(
    n_genes: int, share: float, median: float, rng: np.random.Generator
) -> np.ndarray:
    """1 for most genes; a log-normal fold change around `median` for a random `share`."""
    fold = np.ones(n_genes)
    genes = rng.choice(n_genes, max(1, round(share * n_genes)), replace=False)
    fold[genes] = rng.lognormal(np.log(median), FOLD_SIGMA, len(genes))
    return fold


def _cell_profiles(profiles: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Per-cell expression profile, (cells, genes): a doublet's is the mean of two types'."""
    return 0.5 * (profiles[pair[:, 0]] + profiles[pair[:, 1]])


def _library_scale(
    profiles: np.ndarray, pair: np.ndarray, library: np.ndarray, rng: np.random.Generator
) -> float:
    """The factor on the library sizes that makes ZERO_FRACTION of the counts zero.

    P(count = 0) of a negative binomial with mean mu and size r is (r / (r + mu))^r; solve
    for the scale on a subsample of cells (the full matrix is not needed for 3 digits).
    """
    sample = rng.choice(len(library), min(len(library), 500), replace=False)
    base = library[sample, None] * _cell_profiles(profiles, pair[sample])

    def excess_zeros(log_scale: float) -> float:
        mu = np.exp(log_scale) * base
        return float(np.mean((NB_SIZE / (NB_SIZE + mu)) ** NB_SIZE)) - ZERO_FRACTION

    return float(np.exp(optimize.brentq(excess_zeros, -5.0, 20.0, xtol=1e-4)))


def _cell_names(n_cells: int, rng: np.random.Generator) -> list[str]:
    """Unique names like the real ones: Bipolar<batch>_<12-nt barcode>."""
    letters = np.array(list("ACGT"))
    names: dict[str, None] = {}
    while len(names) < n_cells:  # a repeat among 4^12 barcodes is rare: one more round
        need = n_cells - len(names)
        batches = rng.integers(1, BATCHES + 1, need)
        barcodes = letters[rng.integers(0, 4, (need, 12))]
        for b, code in zip(batches, barcodes, strict=True):
            names.setdefault(f"Bipolar{b}_{''.join(code)}")
    return list(names)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ucl.data.retina.synthetic",
        description="Write a synthetic stand-in for the Shekhar et al. 2016 retinal bipolar "
        "files (GSE81904 counts, SCP3 clusters) in their real formats.",
    )
    parser.add_argument("out_dir", help="folder to write the two files into (created)")
    parser.add_argument("--cells", type=int, default=3000, help="columns of the counts file")
    parser.add_argument("--genes", type=int, default=2000, help="rows of the counts file")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files")
    args = parser.parse_args(argv)
    for path in write_synthetic_retina(args.out_dir, args.cells, args.genes, args.seed):
        print(path)


if __name__ == "__main__":
    main()
