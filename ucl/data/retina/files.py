"""The two published files of Shekhar et al. 2016, parsed with a one-line error for each way
they can be wrong.

``GSE81904_BipolarUMICounts_Cell2016.txt.gz`` (GEO GSE81904), the counts file
    gzip (plain text is accepted too), tab-separated UMI counts, genes as rows and cells as
    columns. The header line holds only the N cell names -- no corner field, so it has one
    field fewer than the data rows. Each data row is a gene symbol followed by N
    non-negative integer counts. Real size: ~24,904 genes x ~44,994 cells (~2 GB of text).

``clust_retinal_bipolar.txt`` (Single Cell Portal, study SCP3), the clusters file
    tab-separated. Header ``NAME<TAB>CLUSTER<TAB>SUB-CLUSTER``, then a metadata row that
    starts with ``TYPE`` (``TYPE<TAB>group<TAB>group``), then one row per cell: cell name,
    cluster label (``RBC (Rod Bipolar cell)``, ``MG (Mueller Glia)``, ``BC1A``, ...,
    ``Doublets/Contaminants``) and sub-cluster (read but not used).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

from ucl.errors import UclError

COUNTS_FILENAME = "GSE81904_BipolarUMICounts_Cell2016.txt.gz"
CLUSTERS_FILENAME = "clust_retinal_bipolar.txt"
DOUBLET_LABEL = "Doublets/Contaminants"
# Gene symbols of the synthetic stand-in start with this; no real gene symbol does.
SYNTHETIC_GENE_PREFIX = "SYNTHETIC_"

# bounds that keep a hostile or broken file from being read into memory whole: the real
# counts file's longest line (the header, ~45,000 cell names) is about 1 MB, and the whole
# file about 2 GB of text once decompressed
MAX_LINE_BYTES = 64 << 20
MAX_TEXT_BYTES = 64 << 30
MAX_COUNT = 2**31 - 1  # counts are kept as int32

COUNTS_FORMAT = (
    "Expected format (GEO GSE81904 " + COUNTS_FILENAME + "): gzip or plain text, "
    "tab-separated, genes as rows and cells as columns; the first line holds only the N "
    "cell names (no corner field), each following line a gene symbol and N non-negative "
    "integer UMI counts."
)
CLUSTERS_FORMAT = (
    "Expected format (Single Cell Portal SCP3 " + CLUSTERS_FILENAME + "): tab-separated; "
    "line 1 'NAME<TAB>CLUSTER<TAB>SUB-CLUSTER', line 2 'TYPE<TAB>group<TAB>group', then "
    "one line per cell: cell name, cluster label, sub-cluster."
)


class RetinaDataError(UclError, ValueError):
    """A retina data file that is missing, malformed, or inconsistent with the other."""


class RetinaFileNotFoundError(RetinaDataError, FileNotFoundError):
    """A retina data file that does not exist (also a FileNotFoundError)."""


def default_paths(data_dir: str | os.PathLike) -> tuple[Path, Path]:
    """The counts and clusters files under their published names in `data_dir`."""
    data_dir = Path(data_dir)
    return data_dir / COUNTS_FILENAME, data_dir / CLUSTERS_FILENAME


def read_clusters(path: Path) -> dict[str, str]:
    """Cell name -> cluster label from the clusters file (format: CLUSTERS_FORMAT)."""
    labels: dict[str, str] = {}
    with _lines(path, CLUSTERS_FORMAT) as f:
        lines = (
            _decode(b, path, i, CLUSTERS_FORMAT)
            for i, b in enumerate(_bounded(f, path, CLUSTERS_FORMAT), start=1)
        )
        header = _fields(next(lines, ""))
        if len(header) < 2 or [h.strip().upper() for h in header[:2]] != ["NAME", "CLUSTER"]:
            raise RetinaDataError(
                f"{path}: line 1 should be the header 'NAME<TAB>CLUSTER<TAB>SUB-CLUSTER', "
                f"found {_clip(header)}. {CLUSTERS_FORMAT} Fix: put that header line first."
            )
        type_row = _fields(next(lines, ""))
        if type_row[0].strip().upper() != "TYPE":
            raise RetinaDataError(
                f"{path}: line 2 should be the metadata row starting with 'TYPE' "
                f"(e.g. 'TYPE<TAB>group<TAB>group'), found {_clip(type_row)}. "
                f"{CLUSTERS_FORMAT} Fix: insert that row after the header."
            )
        for lineno, line in enumerate(lines, start=3):
            if not line.strip():
                continue
            row = _fields(line)
            if len(row) != len(header) or not row[0] or not row[1]:
                raise RetinaDataError(
                    f"{path}: line {lineno} has {len(row)} fields {_clip(row)}, expected "
                    f"{len(header)} like the header {header}, with a cell name and a cluster "
                    f"label. {CLUSTERS_FORMAT}"
                )
            name = _unquote(row[0])
            if name in labels:
                raise RetinaDataError(
                    f"{path}: line {lineno} names cell {name!r} a second time; each cell must "
                    f"have one row. {CLUSTERS_FORMAT}"
                )
            labels[name] = _unquote(row[1])
    if not labels:
        raise RetinaDataError(
            f"{path}: no cell rows after the header and TYPE row. {CLUSTERS_FORMAT}"
        )
    return labels


def read_counts_header(path: Path) -> list[str]:
    """The cell names on the first line of the counts file (format: COUNTS_FORMAT)."""
    with _lines(path, COUNTS_FORMAT) as f:
        line = next(_bounded(f, path, COUNTS_FORMAT), b"")
    names = [_unquote(n) for n in _decode(line, path, 1).rstrip("\r\n").split("\t")]
    if not line or not any(names):
        raise RetinaDataError(f"{path}: the file is empty. {COUNTS_FORMAT}")
    if len(set(names)) != len(names):
        dup = next(n for n, k in Counter(names).items() if k > 1)
        raise RetinaDataError(
            f"{path}: the header names cell {dup!r} more than once; cell names must be "
            f"unique. {COUNTS_FORMAT}"
        )
    return names


def read_counts(
    path: Path, columns: np.ndarray, min_cells: int
) -> tuple[sparse.csc_matrix, list[str], np.ndarray, bool]:
    """Parse the counts file, one gene row at a time, keeping only what is needed.

    columns: which cells (column indices into the header's names) to keep, in output order.
    Returns (x, genes, totals, all_synthetic): x is a sparse CSC (cells, genes kept) matrix of
    the counts of genes detected in >= min_cells of those cells; totals the cells' counts
    summed over all genes (library sizes); all_synthetic whether every gene symbol carries
    SYNTHETIC_GENE_PREFIX. Every row is checked, kept or not.
    """
    n_cells = len(read_counts_header(path))
    totals = np.zeros(len(columns), dtype=np.int64)
    genes: list[str] = []
    rows_idx: list[np.ndarray] = []  # per kept gene: positions of the cells with counts > 0
    rows_val: list[np.ndarray] = []  # ... and those counts
    all_synthetic = True
    with _lines(path, COUNTS_FORMAT) as f:
        rows = _bounded(f, path, COUNTS_FORMAT)
        next(rows, None)
        lineno = 1
        for lineno, line in enumerate(rows, start=2):
            gene_b, tab, rest = line.partition(b"\t")
            if not tab:
                if not line.strip():
                    continue  # a trailing blank line
                raise _row_error(path, lineno, line, n_cells)
            try:
                # np.fromstring is ~5x faster than str.split + int(); it raises on a
                # non-integer field but silently skips empty ones, hence the length check
                values = np.fromstring(rest, dtype=np.int64, sep="\t")
            except ValueError:
                raise _row_error(path, lineno, line, n_cells) from None
            if len(values) != n_cells or values.min(initial=0) < 0:
                raise _row_error(path, lineno, line, n_cells, first_row=lineno == 2)
            if values.max(initial=0) > MAX_COUNT:
                raise RetinaDataError(
                    f"{path}: line {lineno} holds the count {values.max()}, more than the "
                    f"{MAX_COUNT} a count may be (UMI counts are far smaller); the file is "
                    f"corrupt. {COUNTS_FORMAT} Fix: download it again."
                )
            gene = _unquote(_decode(gene_b, path, lineno))
            all_synthetic &= gene.startswith(SYNTHETIC_GENE_PREFIX)
            kept = values[columns]
            totals += kept
            nonzero = np.flatnonzero(kept)
            if len(nonzero) >= min_cells and len(nonzero) > 0:
                genes.append(gene)
                rows_idx.append(nonzero.astype(np.int32))
                rows_val.append(kept[nonzero].astype(np.int32))
    if lineno == 1:
        raise RetinaDataError(
            f"{path}: the header is not followed by any gene rows. {COUNTS_FORMAT}"
        )
    if not genes:
        raise RetinaDataError(
            f"{path}: no gene is detected in min_cells={min_cells} of the {len(columns)} kept "
            f"cells. Lower min_cells."
        )
    # gene rows are the columns of a CSC (cells, genes) matrix: no transpose copy needed
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows_idx])])
    data, indices = np.concatenate(rows_val), np.concatenate(rows_idx)
    del rows_val, rows_idx
    from scipy import sparse  # here: scipy.sparse takes 0.1 s to import

    x = sparse.csc_matrix((data, indices, indptr), shape=(len(columns), len(genes)))
    return x, genes, totals, all_synthetic


def _row_error(
    path: Path, lineno: int, line: bytes, n_cells: int, first_row: bool = False
) -> RetinaDataError:
    """Say exactly what is wrong with a data row of the counts file (error path only)."""
    fields = line.rstrip(b"\r\n").split(b"\t")
    if first_row and len(fields) == n_cells:
        corner = read_counts_header(path)[0]
        return RetinaDataError(
            f"{path}: the header has as many fields ({n_cells}) as the first data row, so its "
            f"first field {corner!r} is a corner field, which this format does not have. "
            f"{COUNTS_FORMAT} Fix: remove the first field of the header, e.g. "
            f"zcat in.txt.gz | sed '1s/^[^\\t]*\\t//' | gzip > out.txt.gz"
        )
    bad = next((f for f in fields[1:] if not f.strip().isdigit()), None)
    found = "" if bad is None else f", including {bad.decode('utf-8', 'replace')!r}"
    return RetinaDataError(
        f"{path}: line {lineno} has {len(fields)} fields{found}; expected {n_cells + 1}: a gene "
        f"symbol and a non-negative integer count for each of the {n_cells} cells named in "
        f"the header. {COUNTS_FORMAT} Fix: re-export the file, or check it is not truncated."
    )


def _bounded(f: BinaryIO, path: Path, fmt: str) -> Iterator[bytes]:
    """The lines of `f`, each at most MAX_LINE_BYTES long and MAX_TEXT_BYTES in all:
    a longer line or file is refused before it is held in memory."""
    total = 0
    for lineno in range(1, 1 << 62):
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        total += len(line)
        if len(line) > MAX_LINE_BYTES:
            raise RetinaDataError(
                f"{path}: line {lineno} is longer than {MAX_LINE_BYTES} bytes (read so far "
                f"without its end); the file is corrupt or not this format. {fmt}"
            )
        if total > MAX_TEXT_BYTES:
            raise RetinaDataError(
                f"{path}: more than {MAX_TEXT_BYTES} bytes of text (the real counts file has "
                f"about 2 GB); the file is corrupt or not this format. {fmt}"
            )
        yield line


@contextlib.contextmanager
def _lines(path: Path, fmt: str) -> Iterator[BinaryIO]:
    """The file as binary lines, gunzipped on the fly when it starts with the gzip magic.

    A missing, truncated or corrupt file, found here or while reading in the with-block,
    raises RetinaDataError naming the file and the expected format `fmt`.
    """
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if gz else contextlib.nullcontext(raw) as f:
                yield f
    except RetinaDataError:
        raise
    except FileNotFoundError:
        raise RetinaFileNotFoundError(f"{path}: no such file. {fmt}") from None
    except (EOFError, OSError, zlib.error) as e:
        raise RetinaDataError(
            f"{path}: cannot be read to the end ({type(e).__name__}: {e}). A truncated or "
            f"corrupt copy? Download it again. {fmt}"
        ) from e


def _decode(line: bytes, path: Path, lineno: int, fmt: str = COUNTS_FORMAT) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise RetinaDataError(f"{path}: line {lineno} is not utf-8 text. {fmt}") from None


def _fields(line: str) -> list[str]:
    return line.rstrip("\r\n").split("\t")


def _unquote(name: str) -> str:
    # R's write.table quotes names by default; a quoted copy of the file should still load
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def _clip(fields: list[str], n: int = 4) -> str:
    return repr(fields[:n])[:-1] + (", ...]" if len(fields) > n else "]")
