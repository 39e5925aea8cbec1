"""Dense arrays and scalars: ``array``, ``string-array``, ``rec-array``, ``numeric-scalar``,
``string``, ``null`` (and the read-only ``bytes``).

What is written (the same as anndata 0.12):

* ``array`` 0.2.0 — numeric/bool n-d arrays (numpy, masked arrays with the mask dropped,
  lists via ``np.array``, dense dask arrays written by the write-out engine);
* ``string-array`` 0.2.0 — numpy ``U``/``O``/``T`` arrays as variable-length UTF-8;
* ``rec-array`` 0.2.0 — structured arrays: in HDF5 string fields become vlen UTF-8, in zarr
  fixed-length ``<U{max length}`` (zarr has no vlen strings inside structs);
* ``numeric-scalar`` / ``string`` 0.2.0 — 0-d arrays; 0-d numpy arrays are written as scalars;
* ``null`` 0.1.0 — ``None`` (an empty HDF5 dataset, or a 0-d zarr bool with no chunk).

Values marked deferred (``__annscale_deferred__ = True``, from the container) are materialised
into dask arrays and written block by block like any dask array.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from ..storage.elements import Element, Group
from .registry import (
    IOSpec,
    ReadContext,
    WriteContext,
    expect_array,
    register_reader,
    register_writer,
    write_elem,
)

__all__ = ["write_dask_dense", "decode_structured"]

ARRAY = IOSpec("array", "0.2.0")
STRING_ARRAY = IOSpec("string-array", "0.2.0")
REC_ARRAY = IOSpec("rec-array", "0.2.0")
NUMERIC_SCALAR = IOSpec("numeric-scalar", "0.2.0")
STRING = IOSpec("string", "0.2.0")
NULL = IOSpec("null", "0.1.0")
BYTES = IOSpec("bytes", "0.2.0")

_STRING_KINDS = ("U", "O", "T")


# ------------------------------------------------------------------------------ readers


@register_reader("array", ARRAY)
def read_array(elem: Element, ctx: ReadContext) -> np.ndarray:
    """Read the whole array into memory (numeric; strings if a writer mislabelled them)."""
    arr = expect_array(elem, "an 'array' element")
    out = arr.read()
    return np.asarray(out) if not isinstance(out, np.ndarray) else out


@register_reader("array", STRING_ARRAY)
def read_string_array(elem: Element, ctx: ReadContext) -> np.ndarray:
    """Read a string array as a numpy ``object`` array of ``str``."""
    out = expect_array(elem, "a 'string-array' element").read()
    if isinstance(out, str):  # a 0-d string array
        return np.array(out, dtype=object)
    out = np.asarray(out)
    if out.dtype.kind == "S":
        out = out.astype(str)
    return out.astype(object, copy=False)


@register_reader("array", NUMERIC_SCALAR)
@register_reader("array", BYTES)
def read_numeric_scalar(elem: Element, ctx: ReadContext) -> Any:
    """Read a 0-d array as a Python scalar (as anndata does)."""
    value = expect_array(elem, "a scalar").read(())
    return value.item() if hasattr(value, "item") else value


@register_reader("array", STRING)
def read_string(elem: Element, ctx: ReadContext) -> str:
    value = expect_array(elem, "a 'string' element").read(())
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        value = value[()]
    return str(value)


@register_reader("array", NULL)
def read_null(elem: Element, ctx: ReadContext) -> None:
    return None


@register_reader("array", REC_ARRAY)
def read_rec_array(elem: Element, ctx: ReadContext) -> np.ndarray:
    """Read a structured array; string fields come back as ``object`` fields of ``str``."""
    arr = expect_array(elem, "a 'rec-array' element")
    return decode_structured(arr.handle[()], arr.handle.dtype)


def decode_structured(value: np.ndarray, stored_dtype: np.dtype | None = None) -> np.ndarray:
    """Turn the string fields of a structured array into Python ``str``.

    Fixed-length byte fields (``S``) become ``U`` of the same length, fixed-length unicode
    fields stay ``U`` and variable-length (``O``, HDF5 vlen) fields become ``object`` fields
    holding ``str`` (h5py returns ``bytes`` for those, which are decoded here).
    """
    stored_dtype = stored_dtype if stored_dtype is not None else value.dtype
    fields = []
    for name in value.dtype.names:
        dt = value.dtype.fields[name][0]
        base = dt.base
        if base.kind == "S":
            fields.append((name, np.dtype(f"U{base.itemsize}"), dt.shape))
        elif base.kind == "O" or h5py.check_string_dtype(base) is not None:
            fields.append((name, np.dtype(object), dt.shape))
        else:
            fields.append((name, base, dt.shape))
    out = value.astype([(n, t, s) if s else (n, t) for n, t, s in fields])
    for name in out.dtype.names:
        if out.dtype.fields[name][0].kind == "O":
            col = out[name]
            flat = col.reshape(-1)
            for i, v in enumerate(flat):
                if isinstance(v, bytes):
                    flat[i] = v.decode("utf-8")
            out[name] = flat.reshape(col.shape)
    return out


# ------------------------------------------------------------------------------ writers


def _options(ctx: WriteContext) -> dict[str, Any]:
    return dict(ctx.dataset_options)


def _is_numeric(v: np.ndarray) -> bool:
    return v.dtype.kind in "biufcmM"


@register_writer(np.ndarray, spec=NUMERIC_SCALAR, when=lambda v: v.ndim == 0 and _is_numeric(v))
def _write_zero_dim(group: Group, key: str, value: np.ndarray, ctx: WriteContext) -> Element:
    return write_elem(group, key, value[()], ctx)


@register_writer(
    np.ndarray, spec=STRING, when=lambda v: v.ndim == 0 and v.dtype.kind in _STRING_KINDS
)
def _write_zero_dim_str(group: Group, key: str, value: np.ndarray, ctx: WriteContext) -> Element:
    return write_elem(group, key, str(value[()]), ctx)


@register_writer(np.recarray, spec=REC_ARRAY)
@register_writer(np.ndarray, spec=REC_ARRAY, when=lambda v: v.dtype.kind == "V")
def write_rec_array(group: Group, key: str, value: np.ndarray, ctx: WriteContext) -> Element:
    value = np.asarray(value)
    if group.backend == "hdf5":
        data = _structured_with(value, lambda dt, col: h5py.string_dtype("utf-8"))
        return group.create_array(key, data, **_options(ctx))
    data = _structured_with(value, _fixed_unicode)
    return group.create_array(key, data, **_options(ctx))


def _fixed_unicode(dt: np.dtype, col: np.ndarray) -> np.dtype:
    if dt.kind == "U":
        return dt
    longest = max((len(str(x)) for x in col.reshape(-1)), default=1)
    return np.dtype(f"U{max(longest, 1)}")


def _structured_with(value: np.ndarray, string_type) -> np.ndarray:
    """``value`` with its string (``U``/``O``) fields retyped by ``string_type(dtype, col)``."""
    fields = []
    for name in value.dtype.names:
        dt, _ = value.dtype.fields[name][:2]
        if dt.base.kind in ("U", "O"):
            fields.append((name, string_type(dt.base, value[name]), dt.shape))
        else:
            fields.append((name, dt.base, dt.shape))
    return value.astype([(n, t, s) if s else (n, t) for n, t, s in fields])


@register_writer(
    np.ndarray, spec=STRING_ARRAY, when=lambda v: v.ndim > 0 and v.dtype.kind in _STRING_KINDS
)
def write_string_array(group: Group, key: str, value: np.ndarray, ctx: WriteContext) -> Element:
    if value.dtype.kind == "O":
        bad = [type(x).__name__ for x in value.reshape(-1)[:1000] if not isinstance(x, str)]
        if bad:
            raise TypeError(
                f"cannot write an object array holding {bad[0]} values as strings "
                f"({group.path.rstrip('/')}/{key} in {group.source})"
            )
    return group.create_array(key, value, **_options(ctx))


@register_writer(np.ma.MaskedArray, spec=ARRAY)
@register_writer(np.ndarray, spec=ARRAY, when=lambda v: v.ndim > 0 and _is_numeric(v))
def write_array(group: Group, key: str, value: np.ndarray, ctx: WriteContext) -> Element:
    # Masked arrays lose their mask, as in anndata.
    return group.create_array(key, np.asarray(value), **_options(ctx))


@register_writer(list, tuple, spec=ARRAY)
def write_list(group: Group, key: str, value: list, ctx: WriteContext) -> Element:
    return write_elem(group, key, np.array(value), ctx)


_NUMERIC_SCALARS: tuple[type, ...] = (bool, int, float, complex, np.bool_, np.number)


@register_writer(*_NUMERIC_SCALARS, spec=NUMERIC_SCALAR)
def write_numeric_scalar(group: Group, key: str, value: Any, ctx: WriteContext) -> Element:
    return group.create_array(key, np.array(value))


@register_writer(str, np.str_, spec=STRING)
def write_string(group: Group, key: str, value: str, ctx: WriteContext) -> Element:
    return group.create_array(key, str(value))


@register_writer(type(None), spec=NULL)
def write_null(group: Group, key: str, value: None, ctx: WriteContext) -> Element:
    return group.create_null(key)


# ------------------------------------------------------------------------------ dask / deferred


def _is_dask(value: Any) -> bool:
    return type(value).__module__.startswith("dask.")


def _is_deferred(value: Any) -> bool:
    return getattr(value, "__annscale_deferred__", False) is True


@register_writer(object, spec=ARRAY, when=_is_deferred)
def write_deferred(group: Group, key: str, value: Any, ctx: WriteContext) -> Element:
    """Materialise a deferred value into a dask array and write that (block by block)."""
    return write_elem(group, key, value.materialize(), ctx)


def _register_dask() -> None:
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a dependency
        return

    def is_dense(v: Any) -> bool:
        return isinstance(getattr(v, "_meta", None), np.ndarray)

    register_writer(da.Array, spec=ARRAY, when=is_dense)(write_dask_dense)


def write_dask_dense(group: Group, key: str, value: Any, ctx: WriteContext) -> Element:
    """Write a dense dask array through the write-out engine (:mod:`annscale.writeout`).

    Numeric arrays are written block by block by the engine's tasks (zarr) or by one
    in-order writer with bounded lookahead (HDF5); nothing is gathered whole. String and
    0-d arrays are computed and written like numpy arrays.
    """
    if value.dtype.kind in _STRING_KINDS or value.ndim == 0:
        from ..scheduler import compute

        (computed,) = compute(value, progress=False)
        return write_elem(group, key, np.asarray(computed), ctx)
    from ..writeout.dispatch import write_dask_element

    return write_dask_element(group, key, value, ctx)


_register_dask()
