"""The one place where old on-disk layouts are upgraded, on read, into the current model.

Element level (registered with the registry):

* elements without encoding attributes (anndata <= 0.7) are read "as stored"
  (:func:`read_basic`, with an :class:`~annscale.errors.OldFormatWarning`): groups become
  dicts, except groups with ``h5sparse_format``/``h5sparse_shape`` (the h5sparse library,
  anndata < 0.7), which become sparse matrices; byte strings are decoded, 1-element byte
  arrays (HDF5) become scalars, compound datasets become structured arrays with ``str`` fields;
* ``dataframe`` 0.1.0 (anndata 0.7): categorical columns are integer codes whose
  ``categories`` attribute points to ``__categories/<column>`` — an HDF5 object reference in
  h5ad, a relative path string in zarr; ``ordered`` sits on the categories dataset.

Root level (:func:`upgrade_parts`, called by ``read_h5ad``/``read_zarr`` on the parts of the
root object before the container is built):

* ``obs``/``var`` stored as compound datasets (anndata < 0.7): first field is the index;
* ``obsm``/``varm`` stored as compound datasets: one entry per field;
* ``raw.X``, ``raw.var``, ``raw.varm`` top-level keys become ``raw`` (an error if a ``raw``
  group exists too);
* categoricals stored as codes with categories in ``uns['<column>_categories']``;
* ``uns['neighbors']['distances'|'connectivities']`` move to ``obsp`` (``FutureWarning``);
* ``uns['obs_keys_multicol']``/``uns['var_keys_multicol']`` columns move to ``obsm``/``varm``.
"""

from __future__ import annotations

import warnings
from typing import Any

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import FormatError, OldFormatWarning
from ..storage.elements import Array, Element, Group, H5Array
from .arrays import decode_structured
from .frames import frame_from_columns
from .registry import IOSpec, ReadContext, read_elem, register_legacy_reader, register_reader
from .sparse import read_sparse_group

__all__ = ["read_basic", "read_structured_frame", "upgrade_parts", "LEGACY_RAW_KEYS"]

DATAFRAME_0_1_0 = IOSpec("dataframe", "0.1.0")
LEGACY_RAW_KEYS = ("raw.X", "raw.var", "raw.varm")


# ------------------------------------------------------------------------------ elements


@register_legacy_reader
def read_basic(elem: Element, ctx: ReadContext) -> Any:
    """Read an element that has no encoding attributes (see the module docstring)."""
    warnings.warn(
        f"Element '{elem.path}' was written without encoding metadata.",
        OldFormatWarning,
        stacklevel=4,
    )
    if elem.is_group:
        attrs = elem.attrs
        if "h5sparse_format" in attrs:
            fmt = attrs["h5sparse_format"]
            if fmt not in ("csr", "csc"):
                raise FormatError(
                    f"unknown h5sparse_format {fmt!r} (expected 'csr' or 'csc')",
                    source=elem.source,
                    element=elem.path,
                )
            return read_sparse_group(elem, fmt, attrs.get("h5sparse_shape"))  # type: ignore[arg-type]
        return {k: read_elem(elem[k], ctx) for k in elem.keys()}  # type: ignore[attr-defined]
    return read_plain_dataset(elem)  # type: ignore[arg-type]


def read_plain_dataset(arr: Array) -> Any:
    """A dataset without encoding attributes, decoded the way anndata decodes it."""
    if isinstance(arr, H5Array) and arr.is_empty:
        return None
    dtype = arr.dtype
    if dtype.names is not None:
        return decode_structured(arr.handle[()], dtype)
    value = arr.read()
    if isinstance(value, (str, bytes)) or not hasattr(value, "dtype"):
        return value.decode("utf-8") if isinstance(value, bytes) else value
    if value.dtype.kind == "S":
        value = value.astype(str)
        if isinstance(arr, H5Array) and value.ndim == 1 and len(value) == 1:
            # anndata < 0.7 stored scalar strings as 1-element byte arrays
            return value[0]
        if not isinstance(arr, H5Array):
            value = value.astype(object)
    if value.shape == ():
        value = value[()]
    return value


@register_reader("group", DATAFRAME_0_1_0)
def read_dataframe_0_1_0(elem: Element, ctx: ReadContext) -> pd.DataFrame:
    """anndata 0.7 data frames: plain column datasets, categoricals via ``__categories``."""
    attrs = elem.attrs
    columns = [str(c) for c in (attrs.get("column-order") or [])]
    index_key = str(attrs["_index"])
    values = {
        c: _read_series(elem, elem.require(c, "a column listed in 'column-order'"), ctx)
        for c in columns
    }  # type: ignore[attr-defined]
    index = _read_series(elem, elem.require(index_key, "the index named by '_index'"), ctx)  # type: ignore[attr-defined]
    return frame_from_columns(values, columns, index, index_key)


def _read_series(frame: Group, child: Element, ctx: ReadContext) -> Any:
    ref = child.handle.attrs.get("categories") if not child.is_group else None
    if ref is None:
        return read_elem(child, ctx)
    cats_elem = _follow_categories(frame, child, ref)
    categories = read_elem(cats_elem, ctx)
    ordered = bool(cats_elem.attrs.get("ordered", False))
    return pd.Categorical.from_codes(read_elem(child, ctx), categories, ordered=ordered)


def _follow_categories(frame: Group, child: Element, ref: Any) -> Element:
    if isinstance(ref, h5py.Reference):
        target = child.handle.file[ref]
        return H5Array(target, child.source, target.name)
    if isinstance(ref, bytes):
        ref = ref.decode()
    if isinstance(ref, str):
        return frame.require(
            ref.strip("/").removeprefix(frame.path.strip("/") + "/"),
            "the categories a legacy categorical column points to",
        )
    raise FormatError(
        f"unsupported 'categories' attribute {ref!r} on a legacy categorical column",
        source=child.source,
        element=child.path,
    )


def read_structured_frame(arr: Array) -> pd.DataFrame:
    """``obs``/``var`` of anndata < 0.7: a compound dataset whose first field is the index."""
    warnings.warn(
        f"'{arr.path}' was written with a very old version of AnnData. Consider rewriting it.",
        OldFormatWarning,
        stacklevel=4,
    )
    value = decode_structured(arr.handle[()], arr.dtype)
    df = pd.DataFrame(value)
    return df.set_index(df.columns[0])


# ------------------------------------------------------------------------------ root


def read_root_part(root: Group, key: str, ctx: ReadContext) -> Any:
    """Read one top-level part, upgrading pre-0.7 data frames (compound datasets)."""
    elem = root[key]
    if key in ("obs", "var", "raw.var") and not elem.is_group:
        return read_structured_frame(elem)  # type: ignore[arg-type]
    return read_elem(elem, ctx)


def legacy_raw(root: Group, parts: dict[str, Any], ctx: ReadContext) -> dict[str, Any] | None:
    """Collect ``raw.X``/``raw.var``/``raw.varm`` top-level keys into a raw dict."""
    present = [k for k in LEGACY_RAW_KEYS if k in root]
    if not present:
        return None
    if parts.get("raw") is not None:
        raise FormatError(
            f"store has both a 'raw' group and legacy {present} keys",
            source=root.source,
            element="/",
        )
    return {k.removeprefix("raw."): read_root_part(root, k, ctx) for k in present}


def upgrade_parts(parts: dict[str, Any], *, pre_0_7: bool) -> dict[str, Any]:
    """Upgrade the in-memory parts of a root object read from an old layout (see module doc)."""
    for m in ("obsm", "varm"):
        if isinstance(parts.get(m), np.ndarray) and parts[m].dtype.names is not None:
            arr = parts[m]
            parts[m] = {name: arr[name] for name in arr.dtype.names}
    raw = parts.get("raw")
    if isinstance(raw, dict) and isinstance(raw.get("varm"), np.ndarray):
        varm = raw["varm"]
        if varm.dtype.names is not None:
            raw["varm"] = {name: varm[name] for name in varm.dtype.names}
    uns = parts.get("uns")
    if isinstance(uns, dict):
        _move_neighbors_graphs(parts, uns)
        _multicol_to_obsm(parts, uns)
        if pre_0_7:
            _categories_from_uns(parts, uns)
    return parts


def _move_neighbors_graphs(parts: dict[str, Any], uns: dict[str, Any]) -> None:
    neighbors = uns.get("neighbors")
    if not isinstance(neighbors, dict):
        return
    obsp = parts.setdefault("obsp", {})
    for k in ("distances", "connectivities"):
        v = neighbors.get(k)
        if (sp.issparse(v) or isinstance(v, np.ndarray)) and v.ndim == 2:
            warnings.warn(
                f"Moving element from .uns['neighbors'][{k!r}] to .obsp[{k!r}].\n\n"
                "This is where adjacency matrices should go now.",
                FutureWarning,
                stacklevel=4,
            )
            obsp[k] = neighbors.pop(k)


def _multicol_to_obsm(parts: dict[str, Any], uns: dict[str, Any]) -> None:
    for axis, bases in (("obs", ("obs", "smp")), ("var", ("var",))):
        keys: list[str] = []
        for k in [f"{p}{b}_keys_multicol" for p in ("", "_") for b in bases]:
            if k in uns:
                keys = [str(x) for x in np.atleast_1d(uns.pop(k))]
                break
        df = parts.get(axis)
        if not keys or not isinstance(df, pd.DataFrame):
            continue
        m = parts.setdefault(f"{axis}m", {})
        for key in keys:
            cols = [c for c in df.columns if c.startswith(key)]
            m[key] = df[cols].to_numpy()
            df.drop(columns=cols, inplace=True)


def _categories_from_uns(parts: dict[str, Any], uns: dict[str, Any]) -> None:
    """Rebuild categoricals stored as codes + ``uns['<col>_categories']`` (anndata < 0.7)."""
    used = set()
    for cats_key, cats in list(uns.items()):
        if not cats_key.endswith("_categories"):
            continue
        name = cats_key.removesuffix("_categories")
        if isinstance(cats, (str, int)):
            cats = [cats]
        for axis in ("obs", "var"):
            df = parts.get(axis)
            if not isinstance(df, pd.DataFrame) or name not in df.columns:
                continue
            codes = np.asarray(df[name].values)
            # which axis the categories belong to is only known by whether the codes fit
            if not np.all(codes < len(cats)):
                continue
            df[name] = pd.Categorical.from_codes(codes, cats)
            used.add(cats_key)
    for k in used:
        del uns[k]
