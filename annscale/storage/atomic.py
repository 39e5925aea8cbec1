"""Atomic publication of written stores: write beside the target, then rename.

Every write of an ``.h5ad`` file or a zarr store (directory or ``.zip``) goes to a staging
path in the target's directory, named ``.<name>.annscale-staging-<random>``. Only when the
writer has finished without error is it published:

* a file replaces the target with one ``os.replace`` (atomic on POSIX and Windows);
* a directory cannot be replaced atomically when the target exists, so the old directory is
  first renamed aside (``.<name>.annscale-old-<random>``), the new one renamed in, and the old
  one deleted. A reader sees either the complete old store or the complete new one.

If the writer raises, the staging path is removed and the previous target is untouched.

Non-local URLs are written to a local temporary path and then uploaded with fsspec's
``put`` (replacing what was there). That upload is not atomic on object stores.

:func:`check_not_reading` refuses to overwrite a store an object is still reading lazily.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

from ..errors import WriteConflictError
from .location import Location, as_location

__all__ = ["atomic_write", "check_not_reading", "staging_path", "sources_of"]


def staging_path(target: str, tag: str = "staging") -> str:
    """A fresh path beside ``target``: ``<dir>/.<name>.annscale-<tag>-<random>``."""
    parent, name = os.path.split(os.path.abspath(target).rstrip(os.sep))
    return os.path.join(parent, f".{name}.annscale-{tag}-{secrets.token_hex(4)}")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _publish_local(staging: str, target: str) -> None:
    if not os.path.lexists(target):
        os.replace(staging, target)
        return
    if os.path.isfile(staging) and not os.path.isdir(target):
        os.replace(staging, target)
        return
    old = staging_path(target, "old")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)  # put the previous store back
        raise
    _remove(old)


@contextmanager
def atomic_write(url: str | os.PathLike | Location, storage_options: dict | None = None):
    """Yield a local path to write to; publish it at ``url`` when the block succeeds.

    The yielded path does not exist yet; the writer creates a file or a directory there.
    """
    loc = as_location(url, storage_options)
    if loc.is_local:
        target = loc.path
        staging = staging_path(target)
        try:
            yield staging
            if not os.path.lexists(staging):
                raise FileNotFoundError(f"the writer created nothing at {staging!r}")
            _publish_local(staging, target)
        finally:
            _remove(staging)
        return
    with tempfile.TemporaryDirectory(prefix="annscale-upload-") as tmp:
        local = os.path.join(tmp, loc.name)
        yield local
        fs = loc.filesystem()
        if fs.exists(loc.path):
            fs.rm(loc.path, recursive=True)
        fs.put(local, loc.path, recursive=os.path.isdir(local))


def sources_of(obj: Any) -> list[Location]:
    """The stores ``obj`` reads from lazily.

    Lazily opened objects list them in ``__annscale_sources__`` (Locations or URLs); anndata-
    style backed objects expose ``filename``.
    """
    found: Iterable[Any] = getattr(obj, "__annscale_sources__", None) or ()
    out = [as_location(s) if not isinstance(s, Location) else s for s in found]
    filename = getattr(obj, "filename", None) if getattr(obj, "isbacked", False) else None
    if filename is not None:
        out.append(as_location(filename))
    return out


def check_not_reading(location: str | os.PathLike | Location, obj: Any) -> None:
    """Raise :class:`WriteConflictError` if ``obj`` still reads lazily from ``location``."""
    loc = as_location(location)
    for src in sources_of(obj):
        if src.url == loc.url:
            raise WriteConflictError(
                "cannot overwrite a store this object is still reading from lazily; "
                "write to another path or call .to_memory() first",
                source=loc.url,
                element="/",
            )
