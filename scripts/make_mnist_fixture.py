"""Write the small real MNIST subset the tests use (tests/fixtures/mnist/).

    python scripts/make_mnist_fixture.py ../shared/data/mnist --train 2000 --test 500

Takes the first N digits of each split from the original IDX files and writes them
as gzip IDX files in the same format, so the tests exercise the real loading path.
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

from ucl.data import IDX_FILES, find_idx, open_idx, read_header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder with the four MNIST IDX files")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/mnist"))
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, ndim in IDX_FILES.items():
        path = find_idx(args.source, name)
        dims = read_header(path, ndim)
        n = args.train if name.startswith("train") else args.test
        item = 1
        for d in dims[1:]:
            item *= d
        with open_idx(path) as f:
            f.read(4 + 4 * ndim)
            payload = f.read(n * item)
        header = bytes([0, 0, 8, ndim]) + struct.pack(f">{ndim}I", n, *dims[1:])
        # mtime=0: the same bytes every time, so git sees no change on a re-run
        with (
            open(args.out / f"{name}.gz", "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        ):
            gz.write(header + payload)
        print(f"{args.out / name}.gz: {n} of {dims[0]}")


if __name__ == "__main__":
    main()
