"""Matrix Market (``.mtx``, ``.mtx.gz``) files: header validation, then scipy's fast parser.

The header (banner, ``%`` comment lines such as Cell Ranger's ``%metadata_json``, size line)
is read and checked here so a malformed file gets an error naming the file and what was
expected; the body is parsed by :func:`scipy.io.mmread` from the decompressed stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.io
from scipy import sparse

from ..errors import FormatError
from ..storage.location import Location, as_location
from ._files import open_binary, open_text

__all__ = ["MtxHeader", "read_mtx_header", "read_mtx_matrix"]

_FORMATS = ("coordinate", "array")
_FIELDS = ("real", "double", "integer", "complex", "pattern", "unsigned-integer")
_SYMMETRIES = ("general", "symmetric", "skew-symmetric", "hermitian")


@dataclass(frozen=True)
class MtxHeader:
    """What a Matrix Market header declares."""

    format: str  # "coordinate" or "array"
    field: str  # "real", "integer", "complex", "pattern", ...
    symmetry: str  # "general", "symmetric", ...
    shape: tuple[int, int]  # (rows, columns)
    nnz: int | None  # stored entries (coordinate format only)
    comments: tuple[str, ...]  # comment lines without the leading '%'


def _fail(loc: Location, what: str) -> FormatError:
    return FormatError(f"malformed Matrix Market header: {what}", source=loc.url)


def read_mtx_header(url: str | os.PathLike | Location) -> MtxHeader:
    """Read and validate the header of a Matrix Market file (reads only its first lines)."""
    loc = as_location(url)
    with open_text(loc) as f:
        banner = f.readline()
        tokens = banner.strip().lower().split()
        if not tokens or tokens[0] != "%%matrixmarket":
            raise _fail(loc, f"first line must start with '%%MatrixMarket', got {banner[:60]!r}")
        if len(tokens) != 5 or tokens[1] != "matrix":
            raise _fail(
                loc,
                "banner must be '%%MatrixMarket matrix <coordinate|array> <field> <symmetry>',"
                f" got {banner.strip()[:80]!r}",
            )
        fmt, field_, symmetry = tokens[2:]
        if fmt not in _FORMATS:
            raise _fail(loc, f"format must be one of {_FORMATS}, got {fmt!r}")
        if field_ not in _FIELDS:
            raise _fail(loc, f"field must be one of {_FIELDS}, got {field_!r}")
        if symmetry not in _SYMMETRIES:
            raise _fail(loc, f"symmetry must be one of {_SYMMETRIES}, got {symmetry!r}")
        comments = []
        line = f.readline()
        while line and (line.startswith("%") or not line.strip()):
            if line.startswith("%"):
                comments.append(line[1:].rstrip("\r\n"))
            line = f.readline()
    n_expected = 3 if fmt == "coordinate" else 2
    parts = line.split()
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) != n_expected or any(s < 0 for s in sizes):
        what = "rows columns entries" if fmt == "coordinate" else "rows columns"
        raise _fail(
            loc, f"size line must hold {n_expected} non-negative integers ({what}), got {line!r}"
        )
    return MtxHeader(
        format=fmt,
        field=field_,
        symmetry=symmetry,
        shape=(sizes[0], sizes[1]),
        nnz=sizes[2] if fmt == "coordinate" else None,
        comments=tuple(comments),
    )


def read_mtx_matrix(
    url: str | os.PathLike | Location, dtype: str | np.dtype = "float32"
) -> sparse.csr_matrix:
    """Read a whole Matrix Market file into a ``scipy.sparse.csr_matrix`` of ``dtype``.

    Dense (``array``) files become CSR too, as :func:`anndata.io.read_mtx` does.
    """
    loc = as_location(url)
    header = read_mtx_header(loc)
    with open_binary(loc) as f:
        try:
            matrix = scipy.io.mmread(f)
        except (ValueError, OverflowError) as e:
            raise FormatError(f"invalid Matrix Market data: {e}", source=loc.url) from e
    if matrix.shape != header.shape:  # pragma: no cover - scipy follows the header
        raise FormatError(
            f"matrix shape {matrix.shape} differs from the header's {header.shape}",
            source=loc.url,
        )
    return sparse.csr_matrix(matrix.astype(dtype))
