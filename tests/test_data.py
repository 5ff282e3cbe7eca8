"""MNIST from a folder of IDX files: the real loading path, and clear errors for bad files."""

from __future__ import annotations

import gzip
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from conftest import FIXTURE_MNIST, compose, full_mnist_dir

from ucl.data import IDX_FILES, DataFileError
from ucl.errors import ConfigError
from ucl.keys import DATASETS
from ucl.schema import load_all


def load(tmp_path, idx_dir, *extra):
    load_all()
    cfg = compose([f"dataset.idx_dir={idx_dir}", f"dataset.root={tmp_path / 'root'}", *extra])
    return DATASETS.create(cfg.dataset.name, cfg)


def copy_fixture(tmp_path, decompress=False):
    folder = tmp_path / "idx"
    folder.mkdir()
    for name in IDX_FILES:
        if decompress:
            with gzip.open(FIXTURE_MNIST / f"{name}.gz") as f:
                (folder / name).write_bytes(f.read())
        else:
            shutil.copy(FIXTURE_MNIST / f"{name}.gz", folder)
    return folder


def test_fixture_loads_as_whole_split_tensors(tmp_path):
    data = load(tmp_path, FIXTURE_MNIST)
    assert data.x_train.shape == (2000, 784) and data.x_test.shape == (500, 784)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert 0 <= data.x_train.min() and data.x_train.max() == 1
    assert data.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's first labels
    assert data.in_features == 784 and data.num_classes == 10 and data.image_shape == (1, 28, 28)


def test_uncompressed_files_load_the_same(tmp_path):
    a = load(tmp_path / "a", FIXTURE_MNIST)
    b = load(tmp_path / "b", copy_fixture(tmp_path, decompress=True))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_matches_torchvision_to_tensor(tmp_path):
    from torchvision import transforms

    data = load(tmp_path, FIXTURE_MNIST)
    image, label = data.torch_datasets["train"][7]
    assert torch.equal(transforms.ToTensor()(image).flatten(), data.x_train[7])
    assert label == data.y_train[7]
    for split in ("train", "test"):  # ucl reads the IDX files as torchvision does, whole
        read = data.torch_datasets[split]
        assert torch.equal(read.data.flatten(1).float() / 255, getattr(data, f"x_{split}"))
        assert torch.equal(read.targets, getattr(data, f"y_{split}"))


def test_subsets(tmp_path):
    data = load(tmp_path, FIXTURE_MNIST, "dataset.train_subset=100", "dataset.test_subset=50")
    assert len(data.x_train) == 100 and len(data.y_test) == 50
    whole = load(tmp_path, FIXTURE_MNIST, "dataset.train_subset=2000", "dataset.test_subset=500")
    assert len(whole.x_train) == 2000 and len(whole.y_test) == 500


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.train_subset=2001", "dataset.train_subset=2001 is more than the 2000 mnist "
         "training examples there are; e.g. dataset.train_subset=2000, or null for all of them"),
        ("dataset.test_subset=5000", "dataset.test_subset=5000 is more than the 500 mnist test"),
    ],
)  # fmt: skip
def test_a_subset_larger_than_its_split_is_refused_not_cut_short(tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        load(tmp_path, FIXTURE_MNIST, override)
    assert "\n" not in str(refused.value)


def test_missing_file_is_named(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFileError, match="missing t10k-labels-idx1-ubyte"):
        load(tmp_path, folder)


def test_truncated_file_is_named(tmp_path):
    folder = copy_fixture(tmp_path, decompress=True)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte.*truncated or corrupt"):
        load(tmp_path, folder)


def test_corrupt_gzip_is_named(tmp_path):
    folder = copy_fixture(tmp_path)
    path = folder / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 :] = b"\0" * (len(raw) - len(raw) // 2)
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="train-labels-idx1-ubyte.gz"):
        load(tmp_path, folder)


def test_a_file_damaged_after_a_good_load_is_caught(tmp_path):
    """The header check is remembered per process, for the file as it was: a sweep's next
    job still finds a file that was damaged in between (same size, new contents)."""
    folder = copy_fixture(tmp_path)
    load(tmp_path, folder)
    path = folder / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 :] = b"\0" * (len(raw) - len(raw) // 2)
    time.sleep(0.01)  # a modification time of its own on coarse-grained file systems
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="train-labels-idx1-ubyte.gz"):
        load(tmp_path, folder)


def test_swapped_files_are_caught(tmp_path):
    folder = copy_fixture(tmp_path)
    images, labels = folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
    tmp = folder / "swap"
    images.rename(tmp), labels.rename(images), tmp.rename(labels)
    with pytest.raises(DataFileError, match="1 dimensions, expected 3"):
        load(tmp_path, folder)


def test_not_a_folder_and_no_download(tmp_path):
    with pytest.raises(DataFileError, match="download=false.*UCL_MNIST_DIR"):
        load(tmp_path, tmp_path / "nowhere", "dataset.download=false")


@pytest.mark.parametrize("validation,rows", [(0, 300), (30, 270)])
def test_the_dataloader_path_trains_on_the_rows_the_tensors_hold(tmp_path, validation, rows):
    subset = ["dataset.train_subset=300", f"dataset.validation={validation}"]
    data = load(tmp_path, FIXTURE_MNIST, *subset)
    read = data.torch_datasets["train"]  # loader=dataloader's dataset
    assert len(read) == len(data.y_train) == rows
    assert torch.equal(read.data.flatten(1).float() / 255, data.x_train)
    assert torch.equal(read.targets, data.y_train)


def test_missing_files_are_downloaded_then_read_as_imported_ones(tmp_path, monkeypatch):
    # torchvision's MNIST mirrors stand in here as a local HTTP server with the fixture's
    # files (whose checksums are not the originals', so none is given)
    import functools
    import http.server
    import threading

    import torchvision

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=FIXTURE_MNIST)
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mnist = torchvision.datasets.MNIST
        monkeypatch.setattr(mnist, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
        monkeypatch.setattr(mnist, "resources", [(f"{name}.gz", None) for name in IDX_FILES])
        downloaded = load(tmp_path / "a", "null")
    finally:
        server.shutdown()
    imported = load(tmp_path / "b", FIXTURE_MNIST)
    assert sorted(p.name for p in (tmp_path / "a" / "root" / "MNIST" / "raw").glob("*-ubyte")) == (
        sorted(IDX_FILES)
    )
    assert torch.equal(downloaded.x_train, imported.x_train)
    assert torch.equal(downloaded.y_test, imported.y_test)
    assert downloaded.fingerprint["digest"] == imported.fingerprint["digest"]


def test_a_broken_file_already_imported_is_caught(tmp_path):
    load(tmp_path, FIXTURE_MNIST)  # imports into root/MNIST/raw
    raw = tmp_path / "root" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte"):
        load(tmp_path, tmp_path / "nowhere", "dataset.download=false")


@pytest.mark.full_mnist
def test_full_mnist_matches_the_published_facts(tmp_path):
    data = load(tmp_path, full_mnist_dir())
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    counts = torch.bincount(data.y_train).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(data.x_train.mean().item() - 0.1307) < 1e-4


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_the_debian_package(tmp_path):
    load_all()
    cfg = compose(["dataset=fashion_mnist", f"dataset.root={tmp_path}"])
    data = DATASETS.create("fashion_mnist", cfg)
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert torch.bincount(data.y_test).tolist() == [1000] * 10
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
