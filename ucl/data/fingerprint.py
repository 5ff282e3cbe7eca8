"""Content fingerprints of data files: what a run trained on, recorded in its metrics.json
and compared when the run continues or a sweep is re-run.

A file's digest is computed once per process while its size and modification time stay the
same (the IDX check computes its digest in the pass that checks the file anyway)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

_DIGESTS: dict[tuple, str] = {}
# dataset name -> the fingerprint of the files a load with this dataset config would read,
# without loading them (None when it cannot tell, e.g. the files are not there yet)
OF_CONFIG: dict[str, Callable] = {}


def of_config(cfg) -> dict | None:
    """The fingerprint of the data files `cfg` names, as a load would record it; for a
    completed run that a re-run skips, so that it is skipped only on the same data."""
    ds = cfg.get("dataset")
    if ds is None or ds.get("name") not in OF_CONFIG:
        return None
    return OF_CONFIG[ds.name](ds)


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


def combined(files: dict[str, str], folder: Path | str) -> dict:
    """{digest, files: name -> digest, folder}: what metrics.json records of the data."""
    overall = hashlib.blake2b(digest_size=16)
    for name in sorted(files):
        overall.update(f"{name}={files[name]};".encode())
    return {"digest": overall.hexdigest(), "files": dict(files), "folder": str(folder)}
