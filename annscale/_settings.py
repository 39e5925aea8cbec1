"""Global settings: ``annscale.settings``.

Each setting has a default, a type check and a docstring; ``settings.override(...)``
changes some temporarily (a context manager). Settings can also be given through
environment variables ``ANNSCALE_<NAME>`` (read once, at import).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["settings", "Settings"]


@dataclass(frozen=True)
class _Option:
    default: Any
    check: Callable[[Any], bool]
    doc: str
    parse: Callable[[str], Any] = str


def _bool(s: str) -> bool:
    return s.strip().lower() in {"1", "true", "yes", "on"}


def _opt_bool(s: str) -> bool | None:
    return None if s.strip().lower() in {"", "none"} else _bool(s)


_OPTIONS: dict[str, _Option] = {
    "allow_write_nullable_strings": _Option(
        None,
        lambda v: v is None or isinstance(v, bool),
        "How string columns and indexes are written. ``None`` (default, as anndata 0.12/0.13): "
        "pandas extension string arrays are written as ``nullable-string-array``, numpy/object "
        "strings as ``string-array``. ``False``: always plain ``string-array`` (maximum reader "
        "compatibility: anndata < 0.11, anndataR, zellkonverter, Muon.jl; missing values are an "
        "error). ``True``: always ``nullable-string-array``.",
        _opt_bool,
    ),
    "zarr_write_format": _Option(
        3,
        lambda v: v in (2, 3),
        "zarr format (2 or 3) used when annscale creates a zarr store.",
        int,
    ),
    "auto_shard_zarr_v3": _Option(
        False,
        lambda v: isinstance(v, bool),
        "Shard zarr v3 arrays automatically (``shards='auto'``), as anndata 0.13 does: arrays "
        "written whole (in-memory elements); dask elements keep the write-out engine's "
        "chunk-owned layout (pass ``shards=`` to write_zarr for those).",
        _bool,
    ),
    "chunk_target_bytes": _Option(
        64 * 2**20,
        lambda v: isinstance(v, int) and v > 0,
        "Target size, in bytes of stored data, of one lazy chunk of X/layers (sparse chunks are "
        "balanced by nonzeros so each holds about this many bytes of data+indices).",
        int,
    ),
    "h5_block_cache_bytes": _Option(
        8 * 2**20,
        lambda v: isinstance(v, int) and v > 0,
        "Block size of the read cache used for .h5ad files on object stores (bytes; 8 blocks "
        "are cached per open file).",
        int,
    ),
    "progress": _Option(
        True, lambda v: isinstance(v, bool), "Show progress bars on long writes.", _bool
    ),
    "scheduler": _Option(
        None,
        lambda v: v is None or isinstance(v, str),
        "dask scheduler for annscale's computations: None (dask's active scheduler), "
        "'threads', 'processes', 'synchronous' or a distributed address 'tcp://host:port'.",
        lambda s: s or None,
    ),
}


class Settings:
    """annscale's settings; see :data:`annscale.settings`."""

    def __init__(self) -> None:
        values = {}
        for name, opt in _OPTIONS.items():
            env = os.environ.get(f"ANNSCALE_{name.upper()}")
            values[name] = opt.parse(env) if env is not None else opt.default
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"annscale.settings has no setting {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        opt = _OPTIONS.get(name)
        if opt is None:
            raise AttributeError(
                f"annscale.settings has no setting {name!r}; known: {sorted(_OPTIONS)}"
            )
        if not opt.check(value):
            raise ValueError(f"invalid value {value!r} for annscale.settings.{name}: {opt.doc}")
        self._values[name] = value

    def __dir__(self) -> list[str]:
        return [*_OPTIONS, "override", "reset"]

    def reset(self, name: str | None = None) -> None:
        """Restore one setting (or all) to its default."""
        for n in [name] if name else list(_OPTIONS):
            self._values[n] = _OPTIONS[n].default

    @contextmanager
    def override(self, **kwargs: Any) -> Iterator[None]:
        """Temporarily change settings: ``with settings.override(progress=False): ...``."""
        old = {k: getattr(self, k) for k in kwargs}
        try:
            for k, v in kwargs.items():
                setattr(self, k, v)
            yield
        finally:
            self._values.update(old)

    def __repr__(self) -> str:
        return (
            "annscale.settings(\n"
            + "".join(f"    {k}={v!r},\n" for k, v in self._values.items())
            + ")"
        )


settings = Settings()
