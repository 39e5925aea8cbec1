"""Containers: ``dict`` 0.1.0, ``anndata`` 0.1.0 (root or nested) and ``raw`` 0.1.0.

An ``anndata`` group holds optional ``X``, the data frames ``obs`` and ``var`` and the
mappings ``uns``, ``obsm``, ``varm``, ``obsp``, ``varp``, ``layers`` (written even when
empty), and ``raw``. Which children are written, and in which order, follows anndata 0.12:
see :data:`H5AD_ORDER` and :data:`ZARR_ORDER` (zarr and nested objects also store an absent
``raw`` as a ``null`` element, as anndata's generic writer does).

A ``raw`` group holds ``X``, ``var`` (data frame) and ``varm`` (dict), never ``obs``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import AnnscaleError, StorageError
from ..storage.elements import Element, Group
from .registry import (
    IOSpec,
    ReadContext,
    WriteContext,
    read_elem,
    register_reader,
    register_writer,
    stamp,
    write_elem,
)

__all__ = [
    "ANNDATA",
    "RAW",
    "DICT",
    "H5AD_ORDER",
    "ZARR_ORDER",
    "read_anndata_parts",
    "build_anndata",
    "write_anndata_parts",
    "anndata_types",
]

ANNDATA = IOSpec("anndata", "0.1.0")
RAW = IOSpec("raw", "0.1.0")
DICT = IOSpec("dict", "0.1.0")

#: what ``anndata.write_h5ad`` (0.12) writes at the root, in order (no ``raw`` when absent)
H5AD_ORDER = ("X", "raw", "obs", "var", "obsm", "varm", "obsp", "varp", "layers", "uns")
#: what anndata's generic ``write_elem`` of an AnnData (``write_zarr``, nested) writes, in order
ZARR_ORDER = ("X", "obs", "var", "obsm", "varm", "obsp", "varp", "layers", "uns", "raw")
#: the order anndata reads the parts of an AnnData group in
READ_ORDER = ("X", "obs", "var", "obsm", "varm", "obsp", "varp", "layers", "uns", "raw")

_MAPPINGS = ("obsm", "varm", "obsp", "varp", "layers", "uns")


def anndata_types() -> tuple[type, type]:
    """``(AnnData, Raw)`` of annscale's container, imported when first needed."""
    from ..core.anndata import AnnData
    from ..core.raw import Raw

    return AnnData, Raw


# ------------------------------------------------------------------------------ dict


@register_reader("group", DICT)
def read_dict(elem: Element, ctx: ReadContext) -> dict[str, Any]:
    return {k: read_elem(elem[k], ctx) for k in elem.keys()}  # type: ignore[union-attr]


@register_writer(dict, spec=DICT)
def write_dict(group: Group, key: str, value: dict, ctx: WriteContext) -> Group:
    g = group.create_group(key)
    for k, v in value.items():
        if not isinstance(k, str):
            raise TypeError(
                f"{k!r} of type {type(k).__name__} is an invalid key "
                f"({g.path} in {g.source}): keys must be str"
            )
        write_elem(g, k, v, ctx)
    return g


# ------------------------------------------------------------------------------ anndata / raw


def read_anndata_parts(group: Group, ctx: ReadContext, *, skip: tuple[str, ...] = ()) -> dict:
    """Read the known parts of an ``anndata`` group into a dict of in-memory values."""
    return {k: read_elem(group[k], ctx) for k in READ_ORDER if k in group and k not in skip}


def build_anndata(parts: dict[str, Any]):
    """Construct annscale's ``AnnData`` from read parts (``raw`` is a dict of X/var/varm)."""
    AnnData, _ = anndata_types()
    return AnnData(**parts)


@register_reader("group", ANNDATA)
def read_anndata(elem: Element, ctx: ReadContext):
    return build_anndata(read_anndata_parts(elem, ctx))  # type: ignore[arg-type]


@register_reader("group", RAW)
def read_raw(elem: Element, ctx: ReadContext) -> dict[str, Any]:
    """A ``raw`` group as a dict with ``X``, ``var`` and ``varm`` (whichever are stored)."""
    return {k: read_elem(elem[k], ctx) for k in ("X", "var", "varm") if k in elem}  # type: ignore[operator,index]


def anndata_part(adata: Any, name: str) -> Any:
    """The value anndata writes for part ``name`` of ``adata`` (mappings as plain dicts)."""
    if name in _MAPPINGS:
        return dict(getattr(adata, name))
    return getattr(adata, name)


def write_anndata_parts(
    group: Group, adata: Any, ctx: WriteContext, order: tuple[str, ...] = ZARR_ORDER
) -> None:
    """Write the parts of ``adata`` into ``group`` in ``order``.

    ``X`` is skipped when ``None``; with :data:`H5AD_ORDER` an absent ``raw`` is skipped too,
    otherwise it is written as ``null`` (anndata's generic writer does that).
    """
    for name in order:
        value = anndata_part(adata, name)
        if name == "X" and value is None:
            continue
        if name == "raw" and value is None and order is H5AD_ORDER:
            continue
        write_elem(group, name, value, part_context(ctx, name))


def part_context(ctx: WriteContext, name: str) -> WriteContext:
    """``ctx`` with the per-part options of ``ctx.options["part_options"][name]`` applied.

    (``write_zarr(chunks=...)`` sets ``chunks`` for a dense ``X`` only.)
    """
    per_part = ctx.options.get("part_options", {}).get(name)
    if not per_part:
        return ctx
    return dataclasses.replace(ctx, dataset_options={**ctx.dataset_options, **per_part})


def _is_anndata(value: Any) -> bool:
    try:
        AnnData, _ = anndata_types()
    except ImportError:
        return False
    return isinstance(value, AnnData)


def _is_raw(value: Any) -> bool:
    try:
        _, Raw = anndata_types()
    except ImportError:
        return False
    return isinstance(value, Raw)


@register_writer(object, spec=ANNDATA, when=_is_anndata)
def write_anndata(group: Group, key: str, adata: Any, ctx: WriteContext) -> Group:
    g = group.create_group(key)
    write_anndata_parts(g, adata, ctx, ZARR_ORDER)
    return g


@register_writer(object, spec=RAW, when=_is_raw)
def write_raw(group: Group, key: str, raw: Any, ctx: WriteContext) -> Group:
    g = group.create_group(key)
    write_elem(g, "X", raw.X, ctx)
    write_elem(g, "var", raw.var, ctx)
    write_elem(g, "varm", dict(raw.varm), ctx)
    return g


def stamp_root(root: Group) -> None:
    """Give the root group its ``anndata`` encoding attributes (unless already present)."""
    stamp(root, ANNDATA)


# ------------------------------------------------------------------------------ the root object


def read_root(root: Group, ctx: ReadContext, *, readers: dict[str, Any] | None = None) -> Any:
    """Read the root ``anndata`` object of a store, upgrading old layouts (``legacy.py``).

    ``readers`` maps ``"X"`` or ``"raw/X"`` to a function ``elem -> value`` used instead of
    the registry (``read_h5ad(as_sparse=...)``). Shapes are checked against ``obs``/``var``
    before the container is built, so a mismatch names the file and element.
    """
    from . import legacy

    readers = readers or {}
    parts: dict[str, Any] = {}
    for k in READ_ORDER:
        try:
            if k in root:
                parts[k] = _read_part(root, k, ctx, readers)
        except AnnscaleError:
            raise
        except Exception as e:  # broken metadata JSON, codec failures, ...
            raise StorageError(
                f"cannot read {k!r}: {type(e).__name__}: {e}", source=root.source, element=f"/{k}"
            ) from e
    old_raw = legacy.legacy_raw(root, parts, ctx)
    if old_raw is not None:
        parts["raw"] = old_raw
    if parts.get("raw") is None:
        parts.pop("raw", None)
    pre_0_7 = "obs" in root and not root["obs"].is_group
    legacy.upgrade_parts(parts, pre_0_7=pre_0_7)
    check_shapes(parts, root)
    return build_anndata(parts)


def _read_part(root: Group, k: str, ctx: ReadContext, readers: dict[str, Any]) -> Any:
    from . import legacy

    if k == "raw" and root[k].is_group and "raw/X" in readers:
        raw_group = root[k]
        return {
            name: readers["raw/X"](raw_group[name])  # type: ignore[index]
            if name == "X"
            else read_elem(raw_group[name], ctx)  # type: ignore[index]
            for name in ("X", "var", "varm")
            if name in raw_group
        }
    if k in readers:
        return readers[k](root[k])
    return legacy.read_root_part(root, k, ctx)


def _shape_of(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return tuple(int(s) for s in shape) if shape is not None else None


def check_shapes(parts: dict[str, Any], root: Group) -> None:
    """Raise :class:`ShapeMismatchError` when a part disagrees with ``obs``/``var`` lengths."""
    from ..errors import ShapeMismatchError

    x_shape = _shape_of(parts.get("X"))
    n_obs = len(parts["obs"]) if "obs" in parts else (x_shape[0] if x_shape else None)
    n_vars = len(parts["var"]) if "var" in parts else (x_shape[1] if x_shape else None)

    def fail(path: str, got: Any, expected: str) -> None:
        raise ShapeMismatchError(
            f"shape {list(got)} disagrees with the object: expected {expected} "
            f"(n_obs={n_obs}, n_vars={n_vars})",
            source=root.source,
            element=path,
        )

    def check(path: str, shape: tuple[int, ...] | None, dims: tuple[Any, ...], what: str):
        if shape is None:
            return
        for have, want in zip(shape, dims):
            if want is not None and have != want:
                fail(path, shape, what)

    if x_shape is not None:
        if len(x_shape) != 2:
            fail("/X", x_shape, "a 2-d matrix")
        check("/X", x_shape, (n_obs, n_vars), "(n_obs, n_vars)")
    for name, dims, what in (
        ("layers", (n_obs, n_vars), "(n_obs, n_vars)"),
        ("obsm", (n_obs,), "n_obs rows"),
        ("varm", (n_vars,), "n_vars rows"),
        ("obsp", (n_obs, n_obs), "(n_obs, n_obs)"),
        ("varp", (n_vars, n_vars), "(n_vars, n_vars)"),
    ):
        mapping = parts.get(name)
        if isinstance(mapping, dict):
            for k, v in mapping.items():
                check(f"/{name}/{k}", _shape_of(v), dims, what)
    raw = parts.get("raw")
    if isinstance(raw, dict):
        raw_n_vars = len(raw["var"]) if "var" in raw else None
        raw_x = _shape_of(raw.get("X"))
        check("/raw/X", raw_x, (n_obs, raw_n_vars), "(n_obs, number of raw.var rows)")
        if isinstance(raw.get("varm"), dict):
            n = raw_n_vars if raw_n_vars is not None else (raw_x[1] if raw_x else None)
            for k, v in raw["varm"].items():
                check(f"/raw/varm/{k}", _shape_of(v), (n,), "raw n_vars rows")
