"""The retinal bipolar cells as registered datasets: the real files (`retinal_bipolar`) and
the offline synthetic stand-in (`retina_synthetic`), both through `load_retina`."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ucl.data import (
    FINGERPRINT_OF_CONFIG,
    Splits,
    combined_fingerprint,
    file_digest,
    hold_out_from_config,
)
from ucl.data.retina import CLUSTERS_FILENAME, COUNTS_FILENAME, load_retina
from ucl.errors import ConfigError
from ucl.keys import DATASETS


@DATASETS.register("retinal_bipolar")
def retinal_bipolar(cfg) -> Splits:
    ds = cfg.dataset
    return _splits(ds, Path(ds.counts).expanduser(), Path(ds.clusters).expanduser(), None)


@DATASETS.register("retina_synthetic")
def retina_synthetic(cfg) -> Splits:
    """Generates the two files on first use (deterministic in dataset.cells, .genes and
    .data_seed) into <root>/retina_synthetic/<those>/, then loads them like the real ones."""
    from ucl.data.retina.synthetic import MIN_SIZE

    ds = cfg.dataset
    for key, example in (("cells", 5000), ("genes", 2000)):
        value = ds[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < MIN_SIZE:
            raise ConfigError(
                f"dataset.{key}={value!r} must be at least {MIN_SIZE} (an integer), so that "
                f"every cell type gets cells and marker genes; e.g. dataset.{key}={example}"
            )
    folder = _synthetic_folder(ds)
    if not folder.is_dir():
        _generate(folder, int(ds.cells), int(ds.genes), int(ds.data_seed))
    counts, clusters = folder / COUNTS_FILENAME, folder / CLUSTERS_FILENAME
    return _splits(ds, counts, clusters, True)


def _synthetic_folder(ds) -> Path:
    folder = Path(ds.root).expanduser() / "retina_synthetic"
    return folder / f"cells{int(ds.cells)}_genes{int(ds.genes)}_seed{int(ds.data_seed)}"


def _files_fingerprint(counts: Path, clusters: Path) -> dict | None:
    """What load_retina records of the two files; None when they are not there."""
    if not (counts.is_file() and clusters.is_file()):
        return None
    return combined_fingerprint({p.name: file_digest(p) for p in (counts, clusters)}, counts.parent)


FINGERPRINT_OF_CONFIG["retinal_bipolar"] = lambda ds: _files_fingerprint(
    Path(ds.counts).expanduser(), Path(ds.clusters).expanduser()
)
FINGERPRINT_OF_CONFIG["retina_synthetic"] = lambda ds: _files_fingerprint(
    _synthetic_folder(ds) / COUNTS_FILENAME, _synthetic_folder(ds) / CLUSTERS_FILENAME
)


def _generate(folder: Path, cells: int, genes: int, seed: int) -> None:
    """Write into a temporary sibling, then rename: a crash or a second run generating the
    same files at the same time never leaves a half-written folder behind."""
    # imported here, so that `python -m ucl.data.retina.synthetic` does not find its own
    # module already imported (by ucl.data's registration) before it runs
    from ucl.data.retina.synthetic import write_synthetic_retina

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        write_synthetic_retina(tmp, n_cells=cells, n_genes=genes, seed=seed)
        os.rename(tmp, folder)
    except OSError:
        if not folder.is_dir():  # not a lost race with another run: a real failure
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _splits(ds, counts: Path, clusters: Path, synthetic: bool | None) -> Splits:
    classes = ds.classes
    if classes is not None and not isinstance(classes, int | str):
        classes = [str(c) for c in classes]  # a ListConfig from the command line
    splits, _ = load_retina(
        counts,
        clusters,
        classes=classes,
        min_cells=int(ds.min_cells),
        pca_dim=int(ds.pca_dim),
        test_fraction=float(ds.test_fraction),
        seed=int(ds.split_seed),
        cache=bool(ds.cache),
        standardize=bool(ds.standardize),
        synthetic=synthetic,
        name=ds.name,
    )
    return hold_out_from_config(splits, ds)
