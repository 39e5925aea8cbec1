"""Opening the plain files of genomics formats (tsv, csv, mtx) through fsspec.

Local paths and fsspec URLs are handled alike. Compression is decided by the file's first
bytes (gzip, bzip2, xz), not by its name, so ``features.tsv`` that is really gzipped and
``matrix.mtx.gz`` that is really plain text both read correctly. Missing files raise
:class:`~annscale.errors.StorageError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec

from ..errors import FormatError, StorageError
from ..storage.location import Location, as_location

__all__ = ["child", "exists", "open_binary", "open_text", "sniff_compression"]

# magic bytes -> fsspec compression name
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def child(loc: Location, name: str) -> Location:
    """The location of ``name`` inside the directory ``loc``."""
    if loc.is_local:
        return Location(os.path.join(loc.path, name), loc.storage_options)
    return Location(f"{loc.url.rstrip('/')}/{name}", loc.storage_options)


def exists(loc: Location) -> bool:
    """Whether ``loc`` is an existing file (not a directory)."""
    if loc.is_local:
        return os.path.isfile(loc.path)
    return loc.filesystem().isfile(loc.path)


def _open_raw(loc: Location) -> Any:
    try:
        return loc.filesystem().open(loc.path, "rb")
    except FileNotFoundError:
        raise StorageError("no such file", source=loc.url) from None
    except IsADirectoryError:
        raise StorageError("is a directory, expected a file", source=loc.url) from None
    except OSError as e:
        raise StorageError(f"cannot open: {e}", source=loc.url) from e


def sniff_compression(loc: Location) -> str | None:
    """The compression of ``loc`` from its first 6 bytes (``None`` for uncompressed)."""
    with _open_raw(loc) as f:
        head = f.read(6)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


@contextmanager
def open_binary(url: str | os.PathLike | Location) -> Iterator[IO[bytes]]:
    """Open a file for reading as decompressed bytes."""
    loc = as_location(url)
    compression = sniff_compression(loc)
    of = fsspec.open(loc.url, "rb", compression=compression, **loc.storage_options)
    try:
        f = of.open()
    except OSError as e:
        raise StorageError(f"cannot open: {e}", source=loc.url) from e
    try:
        yield f
    finally:
        f.close()


@contextmanager
def open_text(url: str | os.PathLike | Location, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Open a file for reading as decompressed text.

    A :class:`UnicodeDecodeError` while reading becomes a :class:`FormatError` naming the file.
    """
    loc = as_location(url)
    compression = sniff_compression(loc)
    of = fsspec.open(
        loc.url, "rt", compression=compression, encoding=encoding, **loc.storage_options
    )
    try:
        f = of.open()
    except OSError as e:
        raise StorageError(f"cannot open: {e}", source=loc.url) from e
    try:
        yield f
    except UnicodeDecodeError as e:
        raise FormatError(f"not {encoding} text: {e}", source=loc.url) from e
    finally:
        f.close()
