"""Hostile and malformed data files are refused in one line before they are read whole, and
the data a run loads carries a content fingerprint of its files."""

from __future__ import annotations

import gzip
import struct

import pytest
from conftest import FIXTURE_MNIST, compose
from train_process import output, train

from ucl.data import IDX_FILES, DataFileError
from ucl.data.retina import RetinaDataError, load_retina
from ucl.keys import DATASETS
from ucl.schema import load_all


def load(tmp_path, idx_dir, root="root"):
    load_all()
    cfg = compose([f"dataset.idx_dir={idx_dir}", f"dataset.root={tmp_path / root}"])
    return DATASETS.create(cfg.dataset.name, cfg)


def plain_copy(tmp_path, name="idx"):
    folder = tmp_path / name
    folder.mkdir()
    for f in IDX_FILES:
        with gzip.open(FIXTURE_MNIST / f"{f}.gz") as src:
            (folder / f).write_bytes(src.read())
    return folder


def idx_bytes(dims, payload: bytes) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_a_label_outside_the_classes_is_one_line_through_train_py(tmp_path):
    folder = plain_copy(tmp_path)
    labels = bytearray((folder / "t10k-labels-idx1-ubyte").read_bytes())
    labels[8 + 3] = 12
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    proc = train(["model=logreg", "steps=10", "eval_every=10", f"dataset.idx_dir={folder}",
                  f"dataset.root={tmp_path / 'data'}", "progress=false",
                  f"hydra.run.dir={tmp_path / 'run'}"])  # fmt: skip
    text = output(proc)
    assert proc.returncode == 2, text
    assert "Traceback" not in text and "t10k-labels-idx1-ubyte" in text and "12" in text
    assert not (tmp_path / "run").exists()


def test_images_that_are_not_28x28_are_refused(tmp_path):
    folder = plain_copy(tmp_path)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes((500, 32, 32), bytes(500 * 1024)))
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte.*32.*28"):
        load(tmp_path, folder)


def test_a_header_claiming_more_than_the_bound_is_refused_before_reading(tmp_path):
    folder = plain_copy(tmp_path)
    (folder / "train-images-idx3-ubyte").write_bytes(idx_bytes((2**31 + 5, 28, 28), b"\0" * 64))
    said = r"train-images-idx3-ubyte.*2147483653 items, more than"
    with pytest.raises(DataFileError, match=said):
        load(tmp_path, folder)


def test_a_file_of_no_items_is_refused(tmp_path):
    folder = plain_copy(tmp_path)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes((0, 28, 28), b""))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes((0,), b""))
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte: header says 0 items"):
        load(tmp_path, folder)


def test_a_gzip_bomb_stops_at_the_size_its_header_gives(tmp_path):
    folder = plain_copy(tmp_path)
    path = folder / "train-labels-idx1-ubyte.gz"
    (folder / "train-labels-idx1-ubyte").unlink()
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(idx_bytes((2000,), bytes(2000)))
        for _ in range(64):  # 64 MB of zeros beyond what the header promises
            f.write(bytes(1 << 20))
    with pytest.raises(DataFileError, match=r"train-labels-idx1-ubyte.*more than"):
        load(tmp_path, folder)


def test_an_imported_copy_with_the_same_header_but_other_content_is_replaced(tmp_path):
    folder = plain_copy(tmp_path)
    first = load(tmp_path, folder)
    images = bytearray((folder / "train-images-idx3-ubyte").read_bytes())
    images[16 : 16 + 784] = bytes(784)  # the first image blanked: same header, same size
    (folder / "train-images-idx3-ubyte").write_bytes(bytes(images))
    second = load(tmp_path, folder)
    assert float(second.x_train[0].abs().sum()) == 0.0 < float(first.x_train[0].abs().sum())
    assert second.fingerprint["digest"] != first.fingerprint["digest"]
    changed = [k for k, v in second.fingerprint["files"].items()
               if first.fingerprint["files"][k] != v]  # fmt: skip
    assert changed == ["train-images-idx3-ubyte"]


def test_idx_dir_never_replaces_the_files_already_in_the_data_root(tmp_path):
    # the root's MNIST/raw holds other files (torchvision's download, or a set imported
    # before); a run on idx_dir's files trains on those, and leaves the root's as they were
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.parent.mkdir(parents=True)
    plain_copy(tmp_path, "root/MNIST/raw")
    theirs = bytearray((raw / "train-images-idx3-ubyte").read_bytes())
    theirs[16 : 16 + 784] = bytes(784)  # other content: same names, sizes and headers
    (raw / "train-images-idx3-ubyte").write_bytes(bytes(theirs))
    before = {p.name: p.read_bytes() for p in raw.iterdir()}
    on_idx = load(tmp_path, FIXTURE_MNIST)
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before
    fixture = load(tmp_path, FIXTURE_MNIST, root="b")  # an empty root: imported into its raw
    assert on_idx.fingerprint["digest"] == fixture.fingerprint["digest"]
    assert float(on_idx.x_train[0].abs().sum()) > 0.0
    assert int(on_idx.torch_datasets["train"].data[0].sum()) > 0  # loader=dataloader's too
    on_root = load(tmp_path, tmp_path / "nowhere")  # no idx_dir: the root's files
    assert float(on_root.x_train[0].abs().sum()) == 0.0
    assert on_root.fingerprint["digest"] != on_idx.fingerprint["digest"]


def test_the_fingerprint_is_the_content_not_the_place(tmp_path):
    a = load(tmp_path, FIXTURE_MNIST, root="a")
    b = load(tmp_path, plain_copy(tmp_path), root="b")
    assert a.fingerprint["digest"] == b.fingerprint["digest"]
    assert set(a.fingerprint["files"]) == set(IDX_FILES)


# -- retina --------------------------------------------------------------------------------
CLUSTERS = "NAME\tCLUSTER\tSUB-CLUSTER\nTYPE\tgroup\tgroup\n" + "".join(
    f"c{i}\t{'AB'[i % 2]}\t1\n" for i in range(8)
)


def retina_files(tmp_path, rows: list[str]):
    counts, clusters = tmp_path / "counts.txt", tmp_path / "clusters.txt"
    counts.write_text("\t".join(f"c{i}" for i in range(8)) + "\n" + "".join(rows))
    clusters.write_text(CLUSTERS)
    return counts, clusters


def test_a_count_beyond_int32_is_refused(tmp_path):
    rows = [f"G{g}\t" + "\t".join(str(g + i + 1) for i in range(8)) + "\n" for g in range(5)]
    rows[2] = "G2\t" + "\t".join(["3000000000"] * 8) + "\n"
    counts, clusters = retina_files(tmp_path, rows)
    with pytest.raises(RetinaDataError, match=r"counts.txt.*line 4.*3000000000"):
        load_retina(counts, clusters, classes=None, min_cells=1, pca_dim=2, cache=False)


def test_a_header_line_without_end_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    from ucl.data.retina import files

    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1 << 16)
    counts, clusters = tmp_path / "counts.txt.gz", tmp_path / "clusters.txt"
    with gzip.open(counts, "wb", compresslevel=1) as f:
        f.write(b"c" * (1 << 20))  # one line, no newline, far beyond the bound
    clusters.write_text(CLUSTERS)
    with pytest.raises(RetinaDataError, match=r"counts.txt.gz.*line 1 is longer than"):
        load_retina(counts, clusters, classes=None, min_cells=1, pca_dim=2, cache=False)


def test_retina_data_has_a_fingerprint_of_both_files(tmp_path):
    rows = [f"G{g}\t" + "\t".join(str((g * i) % 7 + 1) for i in range(8)) + "\n" for g in range(6)]
    counts, clusters = retina_files(tmp_path, rows)
    first, _ = load_retina(counts, clusters, classes=None, min_cells=1, pca_dim=2)
    again, _ = load_retina(counts, clusters, classes=None, min_cells=1, pca_dim=2)  # cached
    assert first.fingerprint == again.fingerprint
    assert set(first.fingerprint["files"]) == {"counts.txt", "clusters.txt"}
    counts.write_text(counts.read_text().replace("G5\t1", "G5\t2"))
    changed, _ = load_retina(counts, clusters, classes=None, min_cells=1, pca_dim=2)
    assert changed.fingerprint["files"]["counts.txt"] != first.fingerprint["files"]["counts.txt"]
