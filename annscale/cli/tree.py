"""Walking a store's elements and describing them from metadata only (no data read).

Used by ``annscale info`` and ``annscale validate``. A walk descends into the containers
(``anndata``, ``raw``, ``dict``, ``dataframe`` and legacy groups without encoding
attributes) and stops at encoded leaves: arrays, and groups that make up one value
(``csr_matrix``/``csc_matrix``, ``categorical``, ``nullable-*``, ``awkward-array``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ..spec.registry import get_spec
from ..storage.elements import Array, Element, Group
from ..storage.location import Location

__all__ = [
    "CONTAINERS",
    "SPARSE",
    "ElementInfo",
    "walk",
    "describe",
    "axis_length",
    "size_on_disk",
    "format_bytes",
]

#: encodings whose children are elements in their own right
CONTAINERS = frozenset({"anndata", "raw", "dict", "dataframe", ""})
SPARSE = frozenset({"csr_matrix", "csc_matrix"})


def walk(group: Group) -> Iterator[Element]:
    """Every element below ``group`` (depth first), not descending into encoded values."""
    for key in group.keys():
        elem = group[key]
        yield elem
        if elem.is_group and get_spec(elem).encoding_type in CONTAINERS:
            yield from walk(elem)  # type: ignore[arg-type]


@dataclass
class ElementInfo:
    """What ``annscale info`` says about one element; read from metadata only."""

    path: str
    kind: str  # "group" or "array"
    encoding: str  # "csr_matrix 0.1.0", or "" when the element has no encoding attributes
    dtype: str | None = None
    shape: list[int] | None = None
    chunks: list[int] | None = None
    shards: list[int] | None = None
    nnz: int | None = None
    compression: str | None = None
    stored_bytes: int | None = None
    children: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


def _compression(arr: Array) -> str | None:
    handle = arr.handle
    if arr.backend == "hdf5":
        return handle.compression
    comps = getattr(handle, "compressors", None) or ()
    names = []
    for c in comps:
        name = getattr(c, "codec_name", None) or getattr(c, "codec_id", None)
        if name is None:
            cfg = getattr(c, "get_config", None)
            name = cfg().get("id") if cfg else type(c).__name__
        names.append(str(name).removeprefix("numcodecs."))
    return ",".join(names) or None


def _stored_bytes(arr: Array) -> int | None:
    try:
        if arr.backend == "hdf5":
            return int(arr.handle.id.get_storage_size())
        return int(arr.handle.nbytes_stored())
    except Exception:  # sizes are informative; a store that cannot list them has none
        return None


def _array_info(arr: Array, path: str, encoding: str) -> ElementInfo:
    shards = getattr(arr, "shards", None)
    return ElementInfo(
        path=path,
        kind="array",
        encoding=encoding,
        dtype="str" if arr.is_string else str(arr.dtype),
        shape=list(arr.shape) if not getattr(arr, "is_empty", False) else None,
        chunks=list(arr.chunks) if arr.chunks else None,
        shards=list(shards) if shards else None,
        compression=_compression(arr),
        stored_bytes=_stored_bytes(arr),
    )


def describe(elem: Element) -> ElementInfo:
    """Describe ``elem`` from its attributes and array metadata (no chunk is read)."""
    spec = get_spec(elem)
    encoding = f"{spec.encoding_type} {spec.encoding_version}".strip()
    path = elem.path.lstrip("/") or "/"
    if not elem.is_group:
        return _array_info(elem, path, encoding)  # type: ignore[arg-type]
    group: Group = elem  # type: ignore[assignment]
    keys = group.keys()
    info = ElementInfo(path=path, kind="group", encoding=encoding, children=len(keys))
    attrs = group.attrs
    if spec.encoding_type in CONTAINERS:
        if spec.encoding_type == "dataframe":
            info.extra["columns"] = len(attrs.get("column-order") or [])
            info.extra["index"] = attrs.get("_index")
        return info
    arrays = [child for child in (group[k] for k in keys) if not child.is_group]
    sizes = [_stored_bytes(a) for a in arrays]  # type: ignore[arg-type]
    info.stored_bytes = sum(s for s in sizes if s is not None) if sizes else None
    if spec.encoding_type in SPARSE and "data" in group:
        data = group["data"]
        info.dtype = str(data.dtype)
        info.shape = [int(s) for s in attrs.get("shape", [])] or None
        info.nnz = int(data.shape[0])
        info.chunks = list(data.chunks) if data.chunks else None
        info.shards = list(getattr(data, "shards", None) or []) or None
        info.compression = _compression(data)  # type: ignore[arg-type]
        if "indices" in group:
            info.extra["index_dtype"] = str(group["indices"].dtype)
    elif spec.encoding_type == "categorical" and "codes" in group:
        codes = group["codes"]
        info.dtype = "category"
        info.shape = list(codes.shape)
        info.chunks = list(codes.chunks) if codes.chunks else None
        if "categories" in group:
            info.extra["categories"] = int(group["categories"].shape[0])
        info.extra["ordered"] = bool(attrs.get("ordered", False))
    elif spec.encoding_type.startswith("nullable-") and "values" in group:
        values = group["values"]
        info.dtype = "str" if values.is_string else str(values.dtype)
        info.shape = list(values.shape)
        info.chunks = list(values.chunks) if values.chunks else None
    elif spec.encoding_type == "awkward-array":
        info.shape = [int(attrs["length"])] if "length" in attrs else None
    return info


def axis_length(root: Group, axis: str) -> int | None:
    """Rows of ``obs``/``var`` (``axis``) from metadata: the index array's length."""
    if axis not in root:
        return None
    elem = root[axis]
    if not elem.is_group:  # legacy: a compound dataset, one record per row
        return int(elem.shape[0])  # type: ignore[union-attr]
    index_key = elem.attrs.get("_index")
    if isinstance(index_key, str) and index_key in elem:
        idx = elem[index_key]
        if idx.is_group:  # nullable-string-array index
            idx = idx["values"] if "values" in idx else idx  # type: ignore[index]
        if not idx.is_group:
            return int(idx.shape[0])  # type: ignore[union-attr]
    return None


def size_on_disk(loc: Location) -> int | None:
    """Bytes the store takes on disk (a file's size, or the sum over a directory's files)."""
    try:
        if loc.is_local:
            if os.path.isfile(loc.path):
                return os.path.getsize(loc.path)
            total = 0
            for base, _, files in os.walk(loc.path):
                total += sum(os.path.getsize(os.path.join(base, f)) for f in files)
            return total
        return int(loc.filesystem().du(loc.path, total=True))
    except OSError:
        return None


def format_bytes(n: int | None) -> str:
    """``1.5 MiB`` style."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
