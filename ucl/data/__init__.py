"""The data: what every dataset loader returns and how a run reads it, and the datasets
ucl ships, MNIST and Fashion-MNIST (the retinal bipolar data is `ucl.data.retina`).

Splits are whole tensors on the device, with the validation split held out of the training
examples for choosing between runs; the content fingerprint of the files they came from
names the data a run trained on; a `Batcher` draws the minibatches.

MNIST and Fashion-MNIST come as whole-split tensors read from their IDX files, downloaded
by torchvision or imported from a folder (compressed or not), and checked here. An IDX
file starts with two zero bytes, a type code (0x08: unsigned byte), the number of
dimensions, then each dimension as a big-endian int32, then the data. The header is
checked against the dataset's shape (28x28 images), against a bound on the size, and
against the data that follows, read in chunks and never past what the header promises (a
gzip bomb stops there); label files are checked to hold class numbers only. The same pass
gives a digest of the file's content.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ucl.errors import ConfigError, UclError
from ucl.keys import DATASETS
from ucl.lifecycle import atomic_write

TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass
class Splits:
    x_train: torch.Tensor  # (N, D) float32, on the device
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor  # (M, D) float32
    y_test: torch.Tensor  # (M,) int64
    class_names: list[str]
    name: str
    image_shape: tuple[int, ...] | None = None  # (C, H, W) for images, None for feature vectors
    synthetic: bool = False  # True when the data is a generated stand-in for the real thing
    # makes a split's torchvision dataset ("train", "test") for the problem set's own
    # DataLoader path (loader=dataloader); None for data that has none
    make_torch_dataset: Callable[[str], Any] | None = field(default=None, repr=False)
    # held out of the training examples (dataset.validation=N); None when N is 0
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    val_index: np.ndarray | None = field(default=None, repr=False)  # rows of the original train
    # the content of the files the splits came from: {digest, files: name -> digest, folder};
    # metrics.json records it, and a run continues only on the same data
    fingerprint: dict | None = field(default=None, repr=False)

    @functools.cached_property
    def torch_datasets(self) -> dict[str, Any]:
        """The splits' torchvision datasets, made on first use: importing torchvision costs
        over a second (its models import torch._dynamo), which training on the tensors never
        needs. The training split keeps the rows the tensors kept."""
        if self.make_torch_dataset is None:
            return {}
        made = {split: self.make_torch_dataset(split) for split in ("train", "test")}
        if self.val_index is not None:
            keep = np.setdiff1d(np.arange(len(made["train"].targets)), self.val_index)
            made["train"] = _rows_of(made["train"], torch.from_numpy(keep))
        return made

    @property
    def in_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to(self, device: torch.device) -> Splits:
        for name in TENSORS:
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).to(device))
        return self

    def train_eval(self, size: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The training examples the train curves are measured on: a fixed subset of `size`
        rows drawn with `seed` (kept in their order), or the whole split when `size` is None
        or not smaller. Fixed, so every evaluation of a run measures the same rows."""
        total = len(self.y_train)
        if size is None or int(size) >= total:
            return self.x_train, self.y_train
        rows = np.sort(np.random.default_rng(seed).choice(total, int(size), replace=False))
        index = torch.from_numpy(rows).to(self.x_train.device)
        return self.x_train.index_select(0, index), self.y_train.index_select(0, index)

    def hold_out(self, n: int, seed: int) -> Splits:
        """Move `n` training examples, drawn stratified by class with `seed`, into the
        validation split; the rest stay the training split, in their original order."""
        n, total = int(n), len(self.y_train)
        if n == 0:
            return self
        if not 0 < n < total:
            raise ConfigError(
                f"dataset.validation={n} must be between 0 and {total - 1} (the {self.name} "
                f"training examples there are, less one); e.g. dataset.validation="
                f"{min(5000, max(1, total // 10))}, or 0 for no validation split"
            )
        from sklearn.model_selection import train_test_split

        labels = self.y_train.cpu().numpy()
        counts = np.bincount(labels)
        # stratify when every class can give one example to each side (tiny subsets, or a
        # side smaller than the number of classes, cannot)
        classes = np.count_nonzero(counts)
        fits = counts[counts > 0].min() >= 2 and classes <= n <= total - classes
        stratify = labels if fits else None
        train, val = train_test_split(
            np.arange(total), test_size=n, random_state=int(seed), stratify=stratify
        )
        train, val = np.sort(train), np.sort(val)
        keep, held = torch.from_numpy(train), torch.from_numpy(val)
        self.x_val, self.y_val = self.x_train[held], self.y_train[held]
        self.x_train, self.y_train = self.x_train[keep], self.y_train[keep]
        self.val_index = val
        self.__dict__.pop("torch_datasets", None)  # made again, without the held-out rows
        return self


def hold_out_from_config(splits: Splits, cfg_ds) -> Splits:
    """The validation split a dataset config asks for (`validation`, `validation_seed`)."""
    return splits.hold_out(
        int(cfg_ds.get("validation") or 0), int(cfg_ds.get("validation_seed", 0))
    )


def _rows_of(dataset, rows: torch.Tensor | slice):
    """A shallow copy of a torchvision MNIST-style dataset keeping only `rows`."""
    import copy

    kept = copy.copy(dataset)
    kept.data, kept.targets = dataset.data[rows], dataset.targets[rows]
    return kept


# -- content fingerprints of data files: what a run trained on, recorded in its metrics.json
# and compared when the run continues or a sweep is re-run. A file's digest is computed once
# per process while its size and modification time stay the same (the IDX check computes
# its digest in the pass that checks the file anyway).

_DIGESTS: dict[tuple, str] = {}
# dataset name -> the fingerprint of the files a load with this dataset config would read,
# without loading them (None when it cannot tell, e.g. the files are not there yet)
FINGERPRINT_OF_CONFIG: dict[str, Callable] = {}


def fingerprint_of_config(cfg) -> dict | None:
    """The fingerprint of the data files `cfg` names, as a load would record it; for a
    completed run that a re-run skips, so that it is skipped only on the same data."""
    ds = cfg.get("dataset")
    if ds is None or ds.get("name") not in FINGERPRINT_OF_CONFIG:
        return None
    return FINGERPRINT_OF_CONFIG[ds.name](ds)


def file_digest(path: Path) -> str:
    """blake2b of the file's bytes as stored (compressed or not)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def combined_fingerprint(files: dict[str, str], folder: Path | str) -> dict:
    """{digest, files: name -> digest, folder}: what metrics.json records of the data."""
    overall = hashlib.blake2b(digest_size=16)
    for name in sorted(files):
        overall.update(f"{name}={files[name]};".encode())
    return {"digest": overall.hexdigest(), "files": dict(files), "folder": str(folder)}


# -- minibatches as slices of a per-epoch permutation of tensors already on the device. Small
# models on MNIST are bound by the data path: gathering a batch from one resident tensor
# costs microseconds, where a DataLoader pays a PIL round trip per sample.


class Batcher:
    """Shuffled minibatches of (x, y); every sample exactly once per epoch.

    The permutation of each epoch is drawn from a seeded generator, so the batch order is
    reproducible, and `state_dict`/`load_state_dict` resume in the middle of an epoch.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        least: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y
        # a last batch of fewer examples is left out (batch norm cannot train on one)
        self.batch_size, self.shuffle, self.least = batch_size, shuffle, least
        self.generator = torch.Generator().manual_seed(seed)  # CPU: same order on any device
        self.epoch = 0
        self.position = 0  # batches already taken from the current epoch
        self._epoch_start_state = self.generator.get_state()

    def __len__(self) -> int:
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (rest >= self.least)

    def epoch_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The remaining batches of the current epoch; the next call starts a new epoch."""
        self.generator.set_state(self._epoch_start_state)
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.x.device)
        for i in range(self.position, len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            self.position = i + 1
            # index_select: a gather of whole rows, ~4x faster than advanced indexing x[idx]
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)
        self.epoch += 1
        self.position = 0
        self._epoch_start_state = self.generator.get_state()

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "generator": self._epoch_start_state.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._epoch_start_state = state["generator"].clone()


class DataLoaderBatcher(Batcher):
    """The problem set's own data path, for comparison: a torchvision dataset with
    `transforms.ToTensor()` per sample through `torch.utils.data.DataLoader`."""

    def __init__(
        self, dataset, batch_size: int, device: torch.device, seed: int = 0, least: int = 1
    ):
        from torchvision import transforms

        dataset.transform = transforms.ToTensor()
        super().__init__(dataset.targets, dataset.targets, batch_size, seed, least=least)
        self.dataset, self.device = dataset, device

    def epoch_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.generator.set_state(self._epoch_start_state)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=True, generator=self.generator
        )
        for i, (x, y) in enumerate(loader):
            if i >= len(self):  # a last batch smaller than `least`
                break
            if i < self.position:  # resuming mid-epoch: same order, skip what was done
                continue
            self.position = i + 1
            yield x.flatten(1).to(self.device), y.to(self.device)
        self.epoch += 1
        self.position = 0
        self._epoch_start_state = self.generator.get_state()


# MNIST and Fashion-MNIST, and their IDX files

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


@DATASETS.register("mnist")
def mnist(cfg) -> Splits:
    return load_mnist_format(cfg.dataset, "MNIST", "UCL_MNIST_DIR")


@DATASETS.register("fashion_mnist")
def fashion_mnist(cfg) -> Splits:
    splits = load_mnist_format(cfg.dataset, "FashionMNIST", "UCL_FASHION_MNIST_DIR")
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
    return combined_fingerprint(digests, folder)


FINGERPRINT_OF_CONFIG["mnist"] = lambda ds: files_fingerprint(ds, "MNIST")
FINGERPRINT_OF_CONFIG["fashion_mnist"] = lambda ds: files_fingerprint(ds, "FashionMNIST")


def load_mnist_format(cfg_ds, class_name: str, env_var: str) -> Splits:
    """Whole splits of an MNIST-format dataset (`class_name` is torchvision's dataset
    class), read from its four IDX files and converted once to float tensors.

    Offline, `cfg_ds.idx_dir` names a folder of the four IDX files, imported into the
    folder torchvision keeps them in (`<root>/<class_name>/raw/`, or one of their own when
    that holds other files: `import_idx_dir`); online, torchvision
    downloads them there. The files are read here, as torchvision reads them, so a run
    whose files are present never imports torchvision (over a second of start-up).
    """
    root = Path(cfg_ds.root).expanduser().resolve()
    raw = root / class_name / "raw"
    idx_dir = cfg_ds.get("idx_dir")
    if idx_dir and Path(idx_dir).expanduser().is_dir():
        raw = import_idx_dir(Path(idx_dir), raw)
        root = raw.parents[1]  # where torchvision finds them (loader=dataloader)
    have_files = check_raw_dir(raw)
    offline_hint = (
        f"Offline, copy the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, .gz or not; torchvision's download "
        f"on a machine with a network fetches them) into a folder and point "
        f"dataset.idx_dir=/path/to/folder (or the environment variable {env_var}) at it"
        + (f" (idx_dir={idx_dir!r} is not a folder)." if idx_dir else ".")
    )
    if not have_files and not cfg_ds.download:
        raise DataFileError(f"{class_name} is not in {raw} and download=false. " + offline_hint)

    def torch_dataset(split: str, download: bool = False):
        import torchvision

        dataset = getattr(torchvision.datasets, class_name)(
            str(root), train=split == "train", download=download
        )
        subset = cfg_ds.get(f"{split}_subset")
        return dataset if subset is None else _rows_of(dataset, slice(subset))

    if not have_files:
        try:
            torch_dataset("train", download=True)  # fetches all four files
        except (RuntimeError, OSError) as e:  # no network
            raise DataFileError(
                f"{class_name} is not in {raw} and could not be downloaded ({e}). " + offline_hint
            ) from e
        check_raw_dir(raw)
    x_train, y_train = _as_tensors(*read_pair(raw, "train"), cfg_ds, "train")
    x_test, y_test = _as_tensors(*read_pair(raw, "t10k"), cfg_ds, "test")
    splits = Splits(
        x_train,
        y_train,
        x_test,
        y_test,
        class_names=[str(c) for c in range(10)],
        name=cfg_ds.name,
        image_shape=(1, 28, 28),
        make_torch_dataset=torch_dataset,
        fingerprint=fingerprint(raw),  # the files read, imported or downloaded
    )
    return hold_out_from_config(splits, cfg_ds)


def _as_tensors(
    images: torch.Tensor, labels: torch.Tensor, cfg_ds, split: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's first `<split>_subset` rows (at least 1: checked with the config), or all."""
    subset = cfg_ds.get(f"{split}_subset")
    if subset is not None and subset > len(labels):
        key, word = f"dataset.{split}_subset", "training" if split == "train" else split
        raise ConfigError(
            f"{key}={subset} is more than the {len(labels)} {cfg_ds.name} {word} examples "
            f"there are; e.g. {key}={len(labels)}, or null for all of them"
        )
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    # what transforms.ToTensor() does per sample, done once for the whole split
    return images.reshape(len(images), -1).float().div_(255), labels.long()


# -- IDX files: checked, imported where torchvision downloads them, read, fingerprinted

# torchvision's names for the four files, with the dimensions each must have
IDX_FILES = {
    "train-images-idx3-ubyte": 3,
    "train-labels-idx1-ubyte": 1,
    "t10k-images-idx3-ubyte": 3,
    "t10k-labels-idx1-ubyte": 1,
}
UBYTE = 0x08
IMAGE_SHAPE = (28, 28)  # what every MNIST-format dataset's images are
NUM_CLASSES = 10  # and how many classes its labels name
# the largest dimension the format can hold (a signed 32-bit integer), and a bound on one
# file's data far above the real ones (the 47 MB training images) that keeps a hostile
# header from asking for terabytes
MAX_COUNT = 2**31 - 1
MAX_BYTES = 4 << 30


class DataFileError(UclError, ValueError):
    """A data file that is missing, truncated or not in the expected format."""


# files this process has checked, by identity and version: a sweep's jobs load the same
# files one after another, and checking a compressed one means decompressing all of it
_CHECKED: dict[tuple, tuple[tuple[int, ...], str]] = {}


def read_header(path: Path, expected_ndim: int) -> tuple[int, ...]:
    """The dimensions in an IDX file's header, after checking the file (once per process for
    a file whose size and modification time have not changed)."""
    return _checked(path, expected_ndim)[0]


def content_digest(path: Path, expected_ndim: int) -> str:
    """A digest of the file's content (decompressed), from the same cached check."""
    return _checked(path, expected_ndim)[1]


def _checked(path: Path, expected_ndim: int) -> tuple[tuple[int, ...], str]:
    try:
        st = os.stat(path)
        key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns, expected_ndim)
    except OSError:
        key = None  # reported by _check_header
    if key in _CHECKED:
        return _CHECKED[key]
    found = _check_header(path, expected_ndim)
    if key is not None:
        _CHECKED[key] = found
    return found


def _check_header(path: Path, expected_ndim: int) -> tuple[tuple[int, ...], str]:
    try:
        with open_idx(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] != UBYTE:
                raise DataFileError(
                    f"{path}: not an unsigned-byte IDX file (first bytes {head!r}, "
                    f"expected 00 00 08 0{expected_ndim}). {_FIX}"
                )
            if head[3] != expected_ndim:
                raise DataFileError(
                    f"{path}: IDX file with {head[3]} dimensions, expected {expected_ndim} "
                    f"(images have 3, labels 1). Are the files swapped or misnamed? {_FIX}"
                )
            raw_dims = f.read(4 * expected_ndim)
            dims = struct.unpack(f">{expected_ndim}I", raw_dims)
            expected = _check_dims(path, dims)
            digest = hashlib.blake2b(head + raw_dims, digest_size=16)
            payload, top = _read_rest(f, expected, digest)
    except (OSError, EOFError, zlib.error, struct.error) as e:
        message = f"{path}: cannot be read ({e}); it looks truncated or corrupt. {_FIX}"
        raise DataFileError(message) from e
    if payload > expected:
        raise DataFileError(
            f"{path}: header says {dims} = {expected} bytes of data but the file holds more "
            f"than that; it is corrupt or not an IDX file (reading stopped there). {_FIX}"
        )
    if payload != expected:
        raise DataFileError(
            f"{path}: header says {dims} = {expected} bytes of data but the file holds "
            f"{payload}; it is truncated or corrupt. {_FIX}"
        )
    if expected_ndim == 1 and top >= NUM_CLASSES:
        raise DataFileError(
            f"{path}: holds the label {top}, but the labels must be class numbers 0 to "
            f"{NUM_CLASSES - 1}; it is not an MNIST-format label file or it is corrupt. {_FIX}"
        )
    return dims, digest.hexdigest()


def _check_dims(path: Path, dims: tuple[int, ...]) -> int:
    """The bytes of data the header's dimensions promise, once they are within bounds."""
    if dims[0] == 0:
        raise DataFileError(
            f"{path}: header says 0 items; the file holds no data to train or test on. {_FIX}"
        )
    if dims[0] > MAX_COUNT:
        raise DataFileError(
            f"{path}: header says {dims[0]} items, more than the {MAX_COUNT} an IDX "
            f"dimension (a signed 32-bit integer) can hold; it is corrupt. {_FIX}"
        )
    if len(dims) == 3 and tuple(dims[1:]) != IMAGE_SHAPE:
        raise DataFileError(
            f"{path}: images of {dims[1]}x{dims[2]} pixels; this dataset's are "
            f"{IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}: these are another dataset's. {_FIX}"
        )
    expected = 1
    for d in dims:
        expected *= d
    if expected > MAX_BYTES:
        raise DataFileError(
            f"{path}: header says {dims} = {expected} bytes of data; a file may hold at most "
            f"{MAX_BYTES}; it is corrupt or not an IDX file. {_FIX}"
        )
    return expected


def import_idx_dir(src: Path, raw_dir: Path) -> Path:
    """Check the four IDX files in `src` (.gz or not), decompress them into `raw_dir`, and
    return the folder that holds them.

    A file already in `raw_dir` is never replaced: when one there has other content
    (torchvision's download, or another set imported before), `src`'s files go to a folder
    named by their content, `<root>/imported/<digest>/<class_name>/raw`, and the run reads
    them there. A file with the same content (by digest) is left alone, so a second run
    copies nothing. Each file is written to a temporary name and renamed, so an interrupted
    import never leaves a half-written file behind.
    """
    src = Path(src).expanduser()
    if not src.is_dir():
        raise DataFileError(
            f"dataset.idx_dir={str(src)!r} is not a folder. Point it (or the environment "
            f"variable it defaults from) at a folder with the four IDX files: "
            f"{', '.join(IDX_FILES)} (each may end in .gz)."
        )
    sources, digests, labels = {}, {}, {}
    for name, ndim in IDX_FILES.items():
        sources[name] = find_idx(src, name)
        dims = read_header(sources[name], ndim)
        digests[name] = content_digest(sources[name], ndim)
        labels[name.split("-")[0], name.split("-")[1]] = dims[0]
    for split in ("train", "t10k"):
        if labels[split, "images"] != labels[split, "labels"]:
            raise DataFileError(
                f"{src}: {split} has {labels[split, 'images']} images but "
                f"{labels[split, 'labels']} labels; the files do not belong together. {_FIX}"
            )

    def others(folder: Path) -> bool:  # a file of other content in the way
        return any((folder / name).exists() and not _same(folder / name, ndim, digests[name])
                   for name, ndim in IDX_FILES.items())  # fmt: skip

    def copy_into(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, ndim in IDX_FILES.items():
            target = folder / name
            if not (target.exists() and _same(target, ndim, digests[name])):
                with open_idx(sources[name]) as f:
                    atomic_write(target, f.read())  # parallel jobs may import at once

    if not others(raw_dir):
        copy_into(raw_dir)  # only what is missing
        if not others(raw_dir):  # another import of other files may have raced this one
            return raw_dir
    digest = combined_fingerprint(digests, src)["digest"][:16]
    own = raw_dir.parents[1] / "imported" / digest / raw_dir.parent.name / "raw"
    copy_into(own)  # a file of other content there is a damaged copy: replaced
    return own


def read_pair(raw_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels of `split` ("train" or "t10k") in `raw_dir`."""
    return read_idx(raw_dir / f"{split}-images-idx3-ubyte", 3), read_idx(
        raw_dir / f"{split}-labels-idx1-ubyte", 1
    )


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """A checked IDX file's data as a uint8 tensor of the shape its header gives."""
    dims = read_header(path, ndim)
    with open_idx(path) as f:
        f.seek(4 + 4 * ndim)
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.uint8).reshape(dims)


def check_raw_dir(raw_dir: Path) -> bool:
    """True when all four files are in `raw_dir` and pass the header check."""
    present = [(raw_dir / name).exists() for name in IDX_FILES]
    if not any(present):
        return False
    for name, ndim in IDX_FILES.items():
        if not (raw_dir / name).exists():
            return False
        read_header(raw_dir / name, ndim)
    return True


def find_idx(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return candidate
    have = sorted(p.name for p in folder.iterdir())[:12]
    raise DataFileError(
        f"{folder}: missing {name} (or {name}.gz). The folder holds: {have or 'nothing'}. "
        f"It needs the four IDX files {', '.join(IDX_FILES)}."
    )


_FIX = (
    "Replace it with the original file (the dataset's own distribution, e.g. torchvision's "
    "MNIST mirrors, or the folder you copied it from)."
)


def open_idx(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _read_rest(f, expected: int, digest) -> tuple[int, int]:
    """Bytes after the header (at most expected + 1: reading stops past what the header
    promises) and the largest byte value, fed to `digest` as they come."""
    n, top = 0, 0
    while n <= expected and (chunk := f.read(min(1 << 20, expected + 1 - n))):
        n += len(chunk)
        digest.update(chunk)
        # numpy's max: max() over bytes runs a Python loop, most of the check's time
        top = max(top, int(np.frombuffer(chunk, dtype=np.uint8).max()))
    return n, top


def _same(target: Path, ndim: int, digest: str) -> bool:
    try:
        return content_digest(target, ndim) == digest
    except DataFileError:
        return False


def fingerprint(raw_dir: Path) -> dict:
    """The content fingerprint of the four files in `raw_dir` (from the cached check):
    one digest per file and one over all of them."""
    files = {name: content_digest(raw_dir / name, ndim) for name, ndim in IDX_FILES.items()}
    return combined_fingerprint(files, raw_dir)
