"""The retina loader (ucl.data.retina) against the synthetic files (ucl.data.retina.synthetic).

The default-sized data set is written once per module; tests that change files or write
caches work on their own small copies in tmp_path.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from ucl.data import Splits, retina
from ucl.data.retina import (
    CLUSTERS_FILENAME,
    COUNTS_FILENAME,
    DOUBLET_LABEL,
    RetinaDataError,
    RetinaFileNotFoundError,
    load_retina,
    pca,
    stratified_split,
)
from ucl.data.retina.synthetic import CELL_TYPES, main, synthetic_counts, write_synthetic_retina

BIPOLAR_AND_MG = {label for label, _, programs in CELL_TYPES if "bipolar" in programs} | {
    "MG (Mueller Glia)"
}
MINOR = {"AC (Amacrine cell)", "Rod Photoreceptors", "Cone Photoreceptors"}
SMALL = {"n_cells": 300, "n_genes": 200}  # enough cells for every type, fast to write


# ------------------------------------------------------------------------------- helpers


def n_cells(d: Splits) -> int:
    return len(d.y_train) + len(d.y_test)


def read_counts_text(path: Path) -> list[str]:
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


def write_counts_text(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def read_clusters_table(path: Path) -> dict[str, str]:
    rows = [line.split("\t") for line in path.read_text().splitlines()[2:]]
    return {name: label for name, label, _ in rows}


def small_files(tmp_path: Path, seed: int = 0) -> tuple[Path, Path]:
    return write_synthetic_retina(tmp_path / "data", seed=seed, **SMALL)


def load_small(counts: Path, clusters: Path, **kw) -> tuple[Splits, retina.RetinaInfo]:
    kw = {"classes": None, "pca_dim": 10, "min_cells": 3, "cache": False} | kw
    return load_retina(counts, clusters, **kw)


@pytest.fixture(scope="module")
def default_files(tmp_path_factory) -> tuple[Path, Path]:
    return write_synthetic_retina(tmp_path_factory.mktemp("retina"))


@pytest.fixture(scope="module")
def default_data(default_files) -> tuple[Splits, retina.RetinaInfo]:
    return load_retina(*default_files, cache=False)


# ----------------------------------------------------------------------------- generator


def test_generator_writes_the_real_formats(default_files):
    counts, clusters = default_files
    assert (counts.name, clusters.name) == (COUNTS_FILENAME, CLUSTERS_FILENAME)
    assert counts.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    lines = read_counts_text(counts)
    cells = lines[0].split("\t")
    assert len(cells) == 3000 and len(set(cells)) == 3000
    assert len(lines) - 1 == 2000
    for line in lines[1:]:
        fields = line.split("\t")
        assert len(fields) == len(cells) + 1  # gene symbol + counts; header has no corner
        assert fields[0].startswith(retina.SYNTHETIC_GENE_PREFIX)
    assert all(f.isdigit() for f in lines[1].split("\t")[1:])

    text = clusters.read_text().splitlines()
    assert text[0] == "NAME\tCLUSTER\tSUB-CLUSTER"
    assert text[1] == "TYPE\tgroup\tgroup"
    labels = read_clusters_table(clusters)
    assert set(labels.values()) == {t[0] for t in CELL_TYPES} | {DOUBLET_LABEL}
    assert set(labels) < set(cells)  # some counted cells are unlabelled
    assert len(cells) - len(labels) == 120  # UNLABELLED_SHARE of 3000


def test_generator_zeros_and_class_shares(default_files):
    counts, clusters = default_files
    x = np.array([line.split("\t")[1:] for line in read_counts_text(counts)[1:]], dtype=int)
    assert (x == 0).mean() == pytest.approx(0.95, abs=0.01)
    shares = Counter(read_clusters_table(clusters).values())
    n = sum(shares.values())
    assert shares["RBC (Rod Bipolar cell)"] / n == pytest.approx(0.40, abs=0.005)
    assert shares["MG (Mueller Glia)"] / n == pytest.approx(0.105, abs=0.005)
    assert shares["BC1B"] / n == pytest.approx(0.012, abs=0.005)
    assert shares[DOUBLET_LABEL] / n == pytest.approx(0.03, abs=0.005)
    # the 15 most frequent labels are exactly the 14 bipolar types and Mueller glia
    top15 = [label for label, _ in shares.most_common() if label != DOUBLET_LABEL][:15]
    assert set(top15) == BIPOLAR_AND_MG


def test_generator_is_seeded(tmp_path):
    a = write_synthetic_retina(tmp_path / "a", seed=3, **SMALL)
    b = write_synthetic_retina(tmp_path / "b", seed=3, **SMALL)
    c = write_synthetic_retina(tmp_path / "c", seed=4, **SMALL)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert a[0].read_bytes() != c[0].read_bytes()


def test_synthetic_counts_are_the_written_counts(tmp_path):
    counts, _ = small_files(tmp_path, seed=2)
    rows = [line.split("\t")[1:] for line in read_counts_text(counts)[1:]]
    written = np.array(rows, dtype=np.int64).T  # (cells, genes)
    matrix = synthetic_counts(seed=2, **SMALL)
    assert matrix.format == "csc" and np.array_equal(matrix.toarray(), written)


def test_generator_cli(tmp_path, capsys):
    main([str(tmp_path / "cli"), "--cells", "200", "--genes", "150", "--seed", "1"])
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "cli" / n) for n in (COUNTS_FILENAME, CLUSTERS_FILENAME)]
    assert len(read_counts_text(Path(printed[0]))) == 151


# -------------------------------------------------------------------------------- loader


def test_round_trip(default_files, default_data):
    d, info = default_data
    labels = read_clusters_table(default_files[1])
    expected = [c for c, lab in labels.items() if lab in BIPOLAR_AND_MG]
    assert set(d.class_names) == BIPOLAR_AND_MG and d.num_classes == 15
    assert d.class_names[:2] == ["RBC (Rod Bipolar cell)", "MG (Mueller Glia)"]  # by frequency
    assert n_cells(d) == len(expected) == len(info.train_cells) + len(info.test_cells)
    assert set(info.train_cells) | set(info.test_cells) == set(expected)  # no doublets, unlabelled
    assert not set(info.train_cells) & set(info.test_cells)
    assert d.x_train.shape == (len(info.train_cells), 100) and d.in_features == 100
    assert d.x_test.shape == (len(info.test_cells), 100)
    assert d.name == "retinal_bipolar" and d.image_shape is None and d.x_val is None
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert torch.isfinite(d.x_train).all()
    assert d.x_train[:, 0].std() == pytest.approx(1.0, rel=0.1)  # scaled so PC1 has sd 1
    assert 0 < info.n_genes_kept <= 2000 and d.synthetic and not info.from_cache
    evr = info.explained_variance_ratio
    assert evr.shape == (100,) and np.all(np.diff(evr) <= 1e-12) and 0 < evr.sum() < 1
    for cell, y in zip(info.train_cells, d.y_train.tolist(), strict=True):
        assert labels[cell] == d.class_names[y]


def test_split_is_stratified_80_20(default_data):
    d, _ = default_data
    train, test = Counter(d.y_train.tolist()), Counter(d.y_test.tolist())
    for c in range(d.num_classes):
        n = train[c] + test[c]
        assert test[c] == int(np.floor(0.2 * n + 0.5))


def test_seed_sets_the_split(default_files, default_data):
    d, info = default_data
    again, again_info = load_retina(*default_files, cache=False)
    assert torch.equal(again.x_train, d.x_train)
    assert again_info.train_cells == info.train_cells
    _, other = load_retina(*default_files, cache=False, seed=1)
    assert other.train_cells != info.train_cells
    assert set(other.train_cells + other.test_cells) == set(info.train_cells + info.test_cells)


def test_pca_features_separate_the_classes(default_data):
    d, _ = default_data
    knn = KNeighborsClassifier(n_neighbors=5).fit(d.x_train.numpy(), d.y_train.numpy())
    assert knn.score(d.x_test.numpy(), d.y_test.numpy()) >= 0.9


def test_explicit_classes_and_pca_dim(tmp_path):
    counts, clusters = small_files(tmp_path)
    d, _ = load_small(counts, clusters, classes=["MG", "RBC (Rod Bipolar cell)", "BC5A"], pca_dim=7)
    assert d.class_names == [
        "MG (Mueller Glia)",
        "RBC (Rod Bipolar cell)",
        "BC5A (Cone Bipolar cell 5A)",
    ]
    assert d.in_features == 7
    labels = read_clusters_table(clusters)
    assert n_cells(d) == sum(lab in d.class_names for lab in labels.values())
    every, _ = load_small(counts, clusters, classes=None)
    assert set(every.class_names) == {t[0] for t in CELL_TYPES}  # all but the doublets
    assert set(load_small(counts, clusters, classes=18)[0].class_names) == set(every.class_names)
    assert set(load_small(counts, clusters, classes=3)[0].class_names) == {
        "RBC (Rod Bipolar cell)",
        "MG (Mueller Glia)",
        "BC6",
    }
    bipolar, _ = load_small(counts, clusters, classes="bipolar")
    assert set(bipolar.class_names) == BIPOLAR_AND_MG
    assert load_small(counts, clusters, classes=np.int64(2))[0].num_classes == 2
    assert load_small(counts, clusters, synthetic=False)[0].synthetic is False


def test_min_cells_drops_rare_genes(tmp_path):
    counts, clusters = small_files(tmp_path)
    _, loose = load_small(counts, clusters, min_cells=1)
    _, strict = load_small(counts, clusters, min_cells=50)
    assert strict.n_genes_kept < loose.n_genes_kept <= 200


def test_plain_text_and_windows_line_ends_load(tmp_path):
    counts, clusters = small_files(tmp_path)
    plain = tmp_path / "counts.txt"
    plain.write_bytes(("\r\n".join(read_counts_text(counts)) + "\r\n").encode())
    crlf_clusters = tmp_path / "clusters.txt"
    crlf_clusters.write_bytes(clusters.read_bytes().replace(b"\n", b"\r\n"))
    (a, _), (b, _) = load_small(counts, clusters), load_small(plain, crlf_clusters)
    assert torch.equal(a.x_train, b.x_train) and a.class_names == b.class_names


def test_pca_matches_exact_pca():
    # a decaying spectrum, as in expression data: a few strong directions over weak noise
    rng = np.random.default_rng(0)
    with threadpool_limits(1):  # threaded LAPACK stalls when other processes share the cores
        q_rows, _ = np.linalg.qr(rng.standard_normal((300, 80)))
        q_cols, _ = np.linalg.qr(rng.standard_normal((80, 80)))
        spectrum = np.r_[[60.0, 40, 25, 15, 8], np.geomspace(2, 0.1, 75)]
        dense = (q_rows * spectrum) @ q_cols.T + 3.0
        u, s, _ = np.linalg.svd(dense - dense.mean(axis=0), full_matrices=False)
    scores, evr = pca(sparse.csr_matrix(dense), 5)
    exact = u[:, :5] * s[:5]
    assert np.allclose(np.abs(scores), np.abs(exact), atol=1e-6)
    assert np.allclose(evr, s[:5] ** 2 / (s**2).sum())


def test_pca_of_every_gene_is_the_full_pca():
    # ARPACK cannot give as many components as genes: that narrow case takes the full SVD
    x = sparse.random(50, 6, density=0.5, random_state=1, format="csc")
    scores, evr = pca(x, 6)
    dense = x.toarray()
    u, s, _ = np.linalg.svd(dense - dense.mean(axis=0), full_matrices=False)
    assert np.allclose(np.abs(scores), np.abs(u * s)) and evr.sum() == pytest.approx(1.0)
    assert np.all(scores[np.abs(scores).argmax(axis=0), np.arange(6)] > 0)  # the sign rule


def test_stratified_split_keeps_both_sides_of_small_classes():
    labels = np.array([0] * 10 + [1] * 2 + [2])
    train, test = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, test])) == list(range(13))
    assert Counter(labels[test]) == {0: 2, 1: 1}


# --------------------------------------------------------------------------------- cache


def test_second_load_is_a_cache_hit(tmp_path, monkeypatch):
    counts, clusters = small_files(tmp_path)
    first, first_info = load_small(counts, clusters, cache=True)
    assert not first_info.from_cache
    (cache_file,) = counts.parent.glob(f"{COUNTS_FILENAME}.ucl-cache-*.npz")
    assert not list(counts.parent.glob("*.tmp*"))  # no temporary file left behind

    def no_parsing(*args, **kwargs):
        raise AssertionError("the counts file was parsed despite a cache")

    monkeypatch.setattr(retina.files, "read_counts", no_parsing)
    second, second_info = load_small(counts, clusters, cache=True)
    assert second_info.from_cache
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert (second.class_names, second_info.n_genes_kept) == (
        first.class_names,
        first_info.n_genes_kept,
    )
    # the split is not cached: another seed is still a hit
    assert load_small(counts, clusters, cache=True, seed=5)[1].from_cache


def test_cache_misses_when_parameters_or_files_change(tmp_path):
    counts, clusters = small_files(tmp_path)
    assert not load_small(counts, clusters, cache=True)[1].from_cache
    assert not load_small(counts, clusters, cache=True, pca_dim=5)[1].from_cache
    st = counts.stat()
    os.utime(counts, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not load_small(counts, clusters, cache=True)[1].from_cache
    assert len(list(counts.parent.glob("*.ucl-cache-*.npz"))) == 3


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path):
    counts, clusters = small_files(tmp_path)
    first, _ = load_small(counts, clusters, cache=True)
    (cache_file,) = counts.parent.glob("*.ucl-cache-*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:200])  # truncated
    with pytest.warns(UserWarning, match="cache"):
        rebuilt, rebuilt_info = load_small(counts, clusters, cache=True)
    assert not rebuilt_info.from_cache and torch.equal(rebuilt.x_train, first.x_train)
    assert load_small(counts, clusters, cache=True)[1].from_cache  # written again, whole


def test_cache_dir(tmp_path):
    counts, clusters = small_files(tmp_path)
    load_small(counts, clusters, cache=True, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert not list(counts.parent.glob("*.npz"))
    assert load_small(counts, clusters, cache=True, cache_dir=tmp_path / "cache")[1].from_cache


# ---------------------------------------------------------------------------- bad inputs


def expect_error(path: Path, match: str, counts: Path, clusters: Path, **kw) -> str:
    with pytest.raises(RetinaDataError, match=match) as info:
        load_small(counts, clusters, **kw)
    assert str(path) in str(info.value)
    return str(info.value)


def test_missing_files(tmp_path):
    counts, clusters = small_files(tmp_path)
    for missing, other in ((counts, clusters), (clusters, counts)):
        gone = missing.with_name("gone")
        args = (gone, other) if missing == counts else (other, gone)
        with pytest.raises(RetinaFileNotFoundError, match="no such file") as info:
            load_retina(*args)
        assert isinstance(info.value, FileNotFoundError)
        assert str(gone) in str(info.value) and "retina_synthetic" in str(info.value)


def test_corner_field_in_the_header(tmp_path):
    counts, clusters = small_files(tmp_path)
    lines = read_counts_text(counts)
    write_counts_text(counts, ["GENE\t" + lines[0]] + lines[1:])
    message = expect_error(counts, "corner field", counts, clusters)
    assert "'GENE'" in message and "no corner field" in message


def test_row_with_a_missing_count(tmp_path):
    counts, clusters = small_files(tmp_path)
    lines = read_counts_text(counts)
    lines[5] = lines[5].rsplit("\t", 1)[0]
    write_counts_text(counts, lines)
    expect_error(counts, "line 6 has 300 fields; expected 301", counts, clusters)


@pytest.mark.parametrize("bad", ["1.5", "-2", "NA", ""])
def test_non_integer_count(tmp_path, bad):
    counts, clusters = small_files(tmp_path)
    lines = read_counts_text(counts)
    fields = lines[3].split("\t")
    fields[7] = bad
    lines[3] = "\t".join(fields)
    write_counts_text(counts, lines)
    expect_error(counts, f"line 4 has 301 fields, including '{bad}'", counts, clusters)


def test_empty_or_headless_counts_file(tmp_path):
    counts, clusters = small_files(tmp_path)
    write_counts_text(counts, [])
    expect_error(counts, "empty", counts, clusters)
    write_counts_text(counts, read_counts_text(small_files(tmp_path / "again")[0])[:1])
    expect_error(counts, "not followed by any gene rows", counts, clusters)


def test_truncated_gzip(tmp_path):
    counts, clusters = small_files(tmp_path)
    data = counts.read_bytes()
    counts.write_bytes(data[: len(data) // 2])
    expect_error(counts, "truncated", counts, clusters)


def test_not_utf8_clusters_file(tmp_path):
    counts, clusters = small_files(tmp_path)
    clusters.write_bytes(clusters.read_bytes().replace(b"BC6", b"BC\xff6", 1))
    expect_error(clusters, "line .* is not utf-8", counts, clusters)


def test_clusters_without_the_name_cluster_header(tmp_path):
    counts, clusters = small_files(tmp_path)
    lines = clusters.read_text().splitlines()
    clusters.write_text("\n".join(["cell,cluster"] + lines[1:]) + "\n")
    expect_error(clusters, "NAME<TAB>CLUSTER", counts, clusters)
    clusters.write_text("\n".join(lines[2:]) + "\n")  # no header and no TYPE row
    expect_error(clusters, "line 1 should be the header", counts, clusters)


def test_clusters_without_the_type_row(tmp_path):
    counts, clusters = small_files(tmp_path)
    lines = clusters.read_text().splitlines()
    clusters.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    message = expect_error(clusters, "line 2 should be the metadata row", counts, clusters)
    assert "TYPE" in message


def test_clusters_row_with_wrong_field_count(tmp_path):
    counts, clusters = small_files(tmp_path)
    lines = clusters.read_text().splitlines()
    lines[4] = lines[4].rsplit("\t", 1)[0]
    clusters.write_text("\n".join(lines) + "\n")
    expect_error(clusters, "line 5 has 2 fields", counts, clusters)


def test_no_shared_cell_names(tmp_path):
    counts, clusters = small_files(tmp_path)
    _, other_clusters = write_synthetic_retina(tmp_path / "other", seed=1, **SMALL)
    message = expect_error(counts, "share no cell names", counts, other_clusters)
    assert str(other_clusters) in message


def test_labelled_cells_missing_from_counts_are_ignored_with_a_warning(tmp_path):
    counts, clusters = small_files(tmp_path)
    with clusters.open("a") as f:
        f.write("Bipolar9_NOTINCOUNTS\tBC6\tBC6\n")
    with pytest.warns(UserWarning, match="1 of .* labelled cells are not in"):
        _, info = load_small(counts, clusters)
    assert "Bipolar9_NOTINCOUNTS" not in info.train_cells + info.test_cells


def test_unknown_or_doublet_class_names(tmp_path):
    counts, clusters = small_files(tmp_path)
    message = expect_error(
        clusters, "Unknown class 'BC5E'", counts, clusters, classes=["RBC", "BC5E"]
    )
    assert "'BC5A (Cone Bipolar cell 5A)'" in message and "Did you mean" in message
    expect_error(clusters, "Unknown class", counts, clusters, classes=[DOUBLET_LABEL])
    expect_error(clusters, "classes=19", counts, clusters, classes=19)


def test_bad_parameters(tmp_path):
    counts, clusters = small_files(tmp_path)
    with pytest.raises(RetinaDataError, match="pca_dim=500 is more than"):
        load_small(counts, clusters, pca_dim=500)
    for kw in ({"test_fraction": 1.0}, {"min_cells": -1}, {"pca_dim": 0}, {"classes": True}):
        with pytest.raises(RetinaDataError):
            load_small(counts, clusters, **kw)


@pytest.mark.parametrize("key", ["cells", "genes"])
def test_a_synthetic_dataset_too_small_for_every_cell_type_is_refused(tmp_path, key):
    from conftest import compose

    from ucl.errors import ConfigError
    from ucl.keys import DATASETS
    from ucl.schema import load_all

    load_all()
    cfg = compose(["model=autoencoder", "dataset=retina_synthetic", f"dataset.{key}=50",
                   f"dataset.root={tmp_path}"])  # fmt: skip
    with pytest.raises(ConfigError, match=rf"dataset.{key}=50 must be at least 100 .* e\.g\."):
        DATASETS.create("retina_synthetic", cfg)
    assert not any(tmp_path.rglob("*.gz"))  # nothing generated


def test_read_only_data_folder_still_loads(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write into read-only folders")
    counts, clusters = small_files(tmp_path)
    counts.parent.chmod(0o555)
    try:
        with pytest.warns(UserWarning, match="Could not write the cache"):
            assert not load_small(counts, clusters, cache=True)[1].from_cache
    finally:
        counts.parent.chmod(0o755)
    shutil.rmtree(counts.parent)


def test_unwritable_cache_folder_still_loads(tmp_path):
    # a file where the cache folder should be: fails for root too, unlike a read-only folder
    counts, clusters = small_files(tmp_path)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="Could not write the cache"):
        splits, info = load_small(counts, clusters, cache=True, cache_dir=blocker)
    assert not info.from_cache and splits.num_classes == 18
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "not_a_folder"]
