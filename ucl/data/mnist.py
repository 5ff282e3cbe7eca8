"""MNIST and Fashion-MNIST as whole-split tensors, online (torchvision) or from IDX files."""

from __future__ import annotations

from pathlib import Path

import torch

from ucl.data import fingerprint as fingerprints
from ucl.data.idx import (
    IDX_FILES,
    DataFileError,
    check_raw_dir,
    content_digest,
    find_idx,
    fingerprint,
    import_idx_dir,
)
from ucl.data.splits import Splits, hold_out_from_config
from ucl.registry import DATASETS

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


@DATASETS.register("mnist")
def mnist(cfg) -> Splits:
    import torchvision  # here, not at import time: it costs seconds (torch._dynamo)

    return load_torchvision(cfg.dataset, torchvision.datasets.MNIST, "UCL_MNIST_DIR")


@DATASETS.register("fashion_mnist")
def fashion_mnist(cfg) -> Splits:
    import torchvision

    splits = load_torchvision(
        cfg.dataset, torchvision.datasets.FashionMNIST, "UCL_FASHION_MNIST_DIR"
    )
    splits.class_names = list(FASHION_CLASSES)
    return splits


def files_fingerprint(cfg_ds, class_name: str) -> dict | None:
    """The fingerprint a load of `cfg_ds` would record: of the IDX files in idx_dir (their
    content, as imported), else of those torchvision reads; None when they are not there."""
    idx_dir = cfg_ds.get("idx_dir")
    try:
        if idx_dir and Path(idx_dir).expanduser().is_dir():
            folder = Path(idx_dir).expanduser()
            paths = {name: find_idx(folder, name) for name in IDX_FILES}
        else:
            folder = Path(cfg_ds.root).expanduser().resolve() / class_name / "raw"
            paths = {name: folder / name for name in IDX_FILES}
            if not all(p.exists() for p in paths.values()):
                return None
        digests = {name: content_digest(p, IDX_FILES[name]) for name, p in paths.items()}
    except DataFileError:
        return None  # the load itself says what is wrong
    return fingerprints.combined(digests, folder)


fingerprints.OF_CONFIG["mnist"] = lambda ds: files_fingerprint(ds, "MNIST")
fingerprints.OF_CONFIG["fashion_mnist"] = lambda ds: files_fingerprint(ds, "FashionMNIST")


def load_torchvision(cfg_ds, dataset_class, env_var: str) -> Splits:
    """Whole splits of an MNIST-format torchvision dataset, converted once to float tensors.

    Offline, `cfg_ds.idx_dir` names a folder of the four IDX files, imported into the
    folder torchvision reads (`<root>/<Class>/raw/`); online, torchvision downloads.
    """
    root = Path(cfg_ds.root).expanduser().resolve()
    raw = root / dataset_class.__name__ / "raw"
    idx_dir = cfg_ds.get("idx_dir")
    if idx_dir and Path(idx_dir).expanduser().is_dir():
        import_idx_dir(Path(idx_dir), raw)
    have_files = check_raw_dir(raw)
    offline_hint = (
        f"Offline, copy the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, .gz or not; torchvision's download "
        f"on a machine with a network fetches them) into a folder and point "
        f"dataset.idx_dir=/path/to/folder (or the environment variable {env_var}) at it"
        + (f" (idx_dir={idx_dir!r} is not a folder)." if idx_dir else ".")
    )
    if not have_files and not cfg_ds.download:
        raise DataFileError(
            f"{dataset_class.__name__} is not in {raw} and download=false. " + offline_hint
        )
    datasets = {}
    for split, train in (("train", True), ("test", False)):
        try:
            datasets[split] = dataset_class(str(root), train=train, download=not have_files)
        except (RuntimeError, OSError) as e:  # no files and no network
            raise DataFileError(
                f"{dataset_class.__name__} is not in {raw} and could not be downloaded ({e}). "
                + offline_hint
            ) from e
    x_train, y_train = _as_tensors(datasets["train"], cfg_ds.get("train_subset"))
    x_test, y_test = _as_tensors(datasets["test"], cfg_ds.get("test_subset"))
    splits = Splits(
        x_train,
        y_train,
        x_test,
        y_test,
        class_names=[str(c) for c in range(10)],
        name=cfg_ds.name,
        image_shape=(1, 28, 28),
        torch_datasets=datasets,
        fingerprint=fingerprint(raw),  # the files torchvision read, imported or downloaded
    )
    return hold_out_from_config(splits, cfg_ds)


def _as_tensors(ds, subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = ds.data, ds.targets  # uint8 (N, 28, 28), int64 (N,)
    if subset is not None:
        if subset < 1:
            raise ValueError(f"dataset subset must be >= 1 or null, got {subset}")
        images, labels = images[:subset], labels[:subset]
    # what transforms.ToTensor() does per sample, done once for the whole split
    return images.reshape(len(images), -1).float().div_(255), labels.long()
