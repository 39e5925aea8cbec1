"""One small element-access layer over HDF5 (h5py) and zarr (zarr-python 3).

Everything above this module (the format spec, the lazy engine, writers) speaks only
:class:`Group` and :class:`Array`: list children, read/write attributes, create arrays,
read and write slices. The h5py-vs-zarr differences live here and nowhere else:

* attributes are decoded to plain Python values (``str``, ``bool``, ``int``, ``float``,
  ``list``); HDF5 byte-string attributes (Julia/HDF5.jl) are decoded too;
* string arrays read as numpy ``object`` arrays of ``str`` from both backends;
* ``create_array`` takes one vocabulary of options (``compression``, ``compression_opts``,
  ``chunks``, ``resizable``, ``shards``, ``compressors``) and translates it.

Element paths are absolute inside their file (``/obs/cell_type``); errors name them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import h5py
import numpy as np
import zarr

from ..errors import ElementNotFoundError, StorageError

__all__ = ["Element", "Group", "Array", "H5Group", "H5Array", "ZarrGroup", "ZarrArray"]

_STRING_KINDS = ("U", "O", "T")


def _join(path: str, key: str) -> str:
    return f"{path.rstrip('/')}/{key.strip('/')}"


def _decode_attr(value: Any) -> Any:
    """Turn an attribute value from either backend into a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in ("S", "O", "U"):
            return [_decode_attr(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_decode_attr(v) for v in value]
    return value


def _encode_attr_h5(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            # h5py's default for [] is an empty float64 array; anndata writes exactly that.
            return np.array([], dtype=np.float64)
        if all(isinstance(v, str) for v in value):
            return np.array(value, dtype=h5py.string_dtype("utf-8"))
        return np.asarray(value)
    if isinstance(value, bool):
        return np.bool_(value)
    return value


def _encode_attr_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_encode_attr_json(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_encode_attr_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _storage_errors(read):
    """Report failures of the backend while reading stored bytes (truncated or corrupt
    chunks, failing decompression, I/O errors) as :class:`StorageError` naming the element."""

    def wrapper(self, selection: Any = Ellipsis) -> Any:
        try:
            return read(self, selection)
        except (OSError, RuntimeError) as e:
            if isinstance(e, StorageError):
                raise
            raise StorageError(
                f"cannot read stored data ({type(e).__name__}: {e}); the file may be truncated "
                "or corrupt",
                source=self.source,
                element=self.path,
            ) from e

    wrapper.__doc__ = read.__doc__
    return wrapper


class Element:
    """A node in a store: a group or an array, with its file and path for messages."""

    is_group: bool = False

    def __init__(self, handle: Any, source: str, path: str):
        self.handle = handle
        self.source = source
        self.path = path if path.startswith("/") else "/" + path

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def backend(self) -> str:
        """``"hdf5"`` or ``"zarr"``."""
        raise NotImplementedError

    @property
    def attrs(self) -> dict[str, Any]:
        """Attributes as plain Python values."""
        return {k: _decode_attr(v) for k, v in self.handle.attrs.items()}

    def attr(self, name: str, default: Any = None) -> Any:
        """One attribute as a plain Python value (``default`` when absent)."""
        return self.attrs.get(name, default)

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} in {self.source!r}>"


class Array(Element):
    """A stored n-d array (dataset)."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.handle.shape) if self.handle.shape is not None else ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def dtype(self) -> np.dtype:
        return self.handle.dtype

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """Storage chunk shape (inner chunks for sharded zarr), or None if contiguous."""
        return self.handle.chunks

    @property
    def is_string(self) -> bool:
        raise NotImplementedError

    def read(self, selection: Any = Ellipsis) -> Any:
        """Read a selection. Strings come back as ``object`` arrays of ``str``."""
        raise NotImplementedError

    def __getitem__(self, selection: Any) -> Any:
        return self.read(selection)

    def write(self, selection: Any, values: Any) -> None:
        raise NotImplementedError

    def __setitem__(self, selection: Any, values: Any) -> None:
        self.write(selection, values)

    def __len__(self) -> int:
        return self.shape[0]


class Group(Element):
    """A group of elements."""

    is_group = True

    def keys(self) -> list[str]:
        return list(self.handle.keys())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key: str) -> bool:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Group | Array:
        raise NotImplementedError

    def get(self, key: str, default: Any = None) -> Group | Array | Any:
        return self[key] if key in self else default

    def require(self, key: str, expected: str = "an element") -> Group | Array:
        """``self[key]`` or a clear :class:`ElementNotFoundError`."""
        if key not in self:
            raise ElementNotFoundError(
                f"missing {key!r}: expected {expected}", source=self.source, element=self.path
            )
        return self[key]

    def create_group(self, key: str) -> Group:
        raise NotImplementedError

    def create_array(
        self,
        key: str,
        data: Any = None,
        *,
        shape: tuple[int, ...] | None = None,
        dtype: Any = None,
        **options: Any,
    ) -> Array:
        """Create an array from ``data`` or as empty ``shape``/``dtype``.

        Options: ``compression``/``compression_opts`` (HDF5 filters; for zarr ``"gzip"``
        maps to a gzip codec), ``chunks``, ``resizable`` (HDF5 ``maxshape=None``),
        ``allocate`` (HDF5: contiguous storage reserved at creation and never filled, for
        writers that write its bytes in place; no data, filters or chunks),
        ``shards`` and ``compressors`` (zarr). Options the backend has no use for are ignored.
        """
        raise NotImplementedError

    def create_null(self, key: str) -> Array:
        """The ``null`` element: an empty HDF5 dataset or a 0-d zarr bool with no chunk."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        del self.handle[key]

    @property
    def store_format(self) -> str:
        """``"h5ad"``, ``"zarr2"`` or ``"zarr3"``."""
        raise NotImplementedError


# ----------------------------------------------------------------------------- HDF5


class _H5Mixin:
    @property
    def backend(self) -> str:
        return "hdf5"

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        for k, v in attrs.items():
            self.handle.attrs[k] = _encode_attr_h5(v)

    @property
    def attrs(self) -> dict[str, Any]:
        out = {}
        for k in self.handle.attrs.keys():
            try:
                v = _h5_attr(self.handle, k)
            except OSError:  # unreadable (e.g. empty) attribute
                continue
            out[k] = v if isinstance(v, h5py.Reference) else _decode_attr(v)
        return out

    def attr(self, name: str, default: Any = None) -> Any:
        if not h5py.h5a.exists(self.handle.id, name.encode()):
            return default
        v = _h5_attr(self.handle, name)
        return v if isinstance(v, h5py.Reference) else _decode_attr(v)


#: memory types for reading variable-length string attributes, by character set
_VLEN_STRING_TYPES = {
    h5py.h5t.CSET_UTF8: h5py.h5t.py_create(h5py.string_dtype("utf-8")),
    h5py.h5t.CSET_ASCII: h5py.h5t.py_create(h5py.string_dtype("ascii")),
}


def _h5_attr(obj: Any, name: str) -> Any:
    """Attribute ``name`` of an h5py object as ``obj.attrs[name]`` returns it.

    A scalar variable-length string (every encoding attribute anndata writes) is read with
    a few low-level calls: ~25 instead of ~60 microseconds, which adds up over the dozens of
    attributes opening a file reads. Anything else goes through h5py.
    """
    attr = h5py.h5a.open(obj.id, name.encode())
    tid = attr.get_type()
    if attr.shape == () and isinstance(tid, h5py.h5t.TypeStringID) and tid.is_variable_str():
        mtype = _VLEN_STRING_TYPES.get(tid.get_cset())
        if mtype is not None:
            buf = np.zeros((), dtype=h5py.string_dtype())
            attr.read(buf, mtype=mtype)
            value = buf[()]
            return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    return obj.attrs[name]


#: numpy's variable-width string dtype, which h5py (>= 3.14) decodes into in one pass
_STRING_DTYPE = getattr(np.dtypes, "StringDType", None)


def _read_vlen_strings(ds: h5py.Dataset, selection: Any) -> Any:
    """Variable-length HDF5 strings as an object array of ``str`` (or one ``str``).

    Decoding into numpy's StringDType and converting is ~25 % faster than ``asstr()``, which
    makes a Python ``str`` per element inside h5py (150,000 obs names: 53 vs 70 ms).
    """
    if _STRING_DTYPE is not None:
        try:
            out = ds.astype(_STRING_DTYPE())[selection]
        except (TypeError, ValueError):  # an h5py that cannot decode into StringDType
            pass
        else:
            return out.astype(object) if isinstance(out, np.ndarray) else out
    return ds.asstr()[selection]


class H5Array(_H5Mixin, Array):
    @property
    def is_string(self) -> bool:
        return h5py.check_string_dtype(self.handle.dtype) is not None

    @property
    def is_empty(self) -> bool:
        return self.handle.shape is None

    @_storage_errors
    def read(self, selection: Any = Ellipsis) -> Any:
        ds = self.handle
        if ds.shape is None:  # h5py.Empty
            return None
        if ds.dtype.kind == "O" or (ds.dtype.kind == "S" and h5py.check_string_dtype(ds.dtype)):
            info = h5py.check_string_dtype(ds.dtype)
            if info is not None and ds.dtype.kind == "O":
                out = _read_vlen_strings(ds, selection)
                return out if np.ndim(out) else (out.item() if isinstance(out, np.ndarray) else out)
        out = ds[selection]
        return out

    def write(self, selection: Any, values: Any) -> None:
        self.handle[selection] = values

    def resize(self, shape: tuple[int, ...]) -> None:
        self.handle.resize(shape)


class H5Group(_H5Mixin, Group):
    def __contains__(self, key: str) -> bool:
        return key in self.handle

    def __getitem__(self, key: str) -> Group | Array:
        try:
            node = self.handle[key]
        except KeyError:
            raise ElementNotFoundError(
                f"no element {key!r}", source=self.source, element=self.path
            ) from None
        path = _join(self.path, key)
        if isinstance(node, h5py.Group):
            return H5Group(node, self.source, path)
        return H5Array(node, self.source, path)

    def create_group(self, key: str, *, track_order: bool | None = None) -> H5Group:
        g = self.handle.create_group(key, track_order=track_order)
        return H5Group(g, self.source, _join(self.path, key))

    def create_array(self, key, data=None, *, shape=None, dtype=None, **options) -> H5Array:
        kw: dict[str, Any] = {}
        if data is not None:
            data = np.asarray(data) if not isinstance(data, (str, bytes)) else data
            if isinstance(data, str) or (
                isinstance(data, np.ndarray) and data.dtype.kind in _STRING_KINDS
            ):
                dtype = h5py.string_dtype("utf-8")
                if isinstance(data, np.ndarray):
                    data = data.astype(object)
            shape = np.shape(data)
        elif dtype is not None and np.dtype(dtype).kind in _STRING_KINDS:
            dtype = h5py.string_dtype("utf-8")
        scalar = shape == ()
        if not scalar:
            if options.get("compression") is not None:
                kw["compression"] = options["compression"]
                if options.get("compression_opts") is not None:
                    kw["compression_opts"] = options["compression_opts"]
            if options.get("resizable"):
                kw["maxshape"] = (None,) * len(shape)
                if options.get("chunks") is None and 0 in shape:
                    kw["chunks"] = (1024,) * len(shape) if len(shape) == 1 else True
            if options.get("chunks") is not None:
                kw["chunks"] = options["chunks"]
            if options.get("allocate"):
                if data is not None or kw:
                    raise ValueError("allocate=True is for contiguous, unfiltered empty arrays")
                # contiguous bytes reserved now and never filled by HDF5: written in place
                # by other writers (annscale.lazy.h5raw.write_at) at the offset HDF5 reports
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
                kw.update(dcpl=dcpl, fill_time="never")
        try:
            ds = self.handle.create_dataset(key, data=data, shape=shape, dtype=dtype, **kw)
        except (TypeError, ValueError) as e:
            raise StorageError(
                f"cannot create array {key!r} ({e})", source=self.source, element=self.path
            ) from e
        return H5Array(ds, self.source, _join(self.path, key))

    def create_null(self, key: str) -> H5Array:
        ds = self.handle.create_dataset(key, data=h5py.Empty("f"))
        return H5Array(ds, self.source, _join(self.path, key))

    @property
    def store_format(self) -> str:
        return "h5ad"


# ----------------------------------------------------------------------------- zarr


class _ZarrMixin:
    @property
    def backend(self) -> str:
        return "zarr"

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        self.handle.attrs.update({k: _encode_attr_json(v) for k, v in attrs.items()})


class ZarrArray(_ZarrMixin, Array):
    @property
    def is_string(self) -> bool:
        return self.handle.dtype.kind in ("T", "O", "U")

    @property
    def is_empty(self) -> bool:
        return False

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(self.handle.chunks)

    @property
    def shards(self) -> tuple[int, ...] | None:
        return self.handle.shards

    @_storage_errors
    def read(self, selection: Any = Ellipsis) -> Any:
        out = self.handle[selection]
        if isinstance(out, np.ndarray) and out.dtype.kind in ("T", "O"):
            if out.ndim == 0:
                return str(out[()])
            return out.astype(object)
        if isinstance(out, np.str_):
            return str(out)
        return out

    def write(self, selection: Any, values: Any) -> None:
        self.handle[selection] = values

    def resize(self, shape: tuple[int, ...]) -> None:
        self.handle.resize(shape)


def _zarr_compressors(handle: zarr.Group, options: dict[str, Any]) -> Any:
    if "compressors" in options:
        return options["compressors"]
    comp = options.get("compression")
    if comp is None:
        return "auto"
    if comp == "gzip":
        level = options.get("compression_opts") or 4
        if handle.metadata.zarr_format == 2:
            import numcodecs

            return numcodecs.GZip(level=level)
        return zarr.codecs.GzipCodec(level=level)
    return comp


class ZarrGroup(_ZarrMixin, Group):
    def __contains__(self, key: str) -> bool:
        try:
            self.handle[key]
        except KeyError:
            return False
        return True

    def keys(self) -> list[str]:
        return sorted(self.handle.keys())

    def __getitem__(self, key: str) -> Group | Array:
        try:
            node = self.handle[key]
        except KeyError:
            raise ElementNotFoundError(
                f"no element {key!r}", source=self.source, element=self.path
            ) from None
        path = _join(self.path, key)
        if isinstance(node, zarr.Group):
            return ZarrGroup(node, self.source, path)
        return ZarrArray(node, self.source, path)

    def create_group(self, key: str, **_: Any) -> ZarrGroup:
        g = self.handle.create_group(key)
        return ZarrGroup(g, self.source, _join(self.path, key))

    def create_array(self, key, data=None, *, shape=None, dtype=None, **options) -> ZarrArray:
        if data is not None:
            if isinstance(data, str):
                data = np.array(data, dtype=object)
            data = np.asarray(data)
            shape, dtype = data.shape, data.dtype
        if dtype is not None and np.dtype(dtype).kind in _STRING_KINDS:
            dtype = str
            if data is not None:
                data = data.astype(object) if data.dtype.kind == "U" else data
        kw: dict[str, Any] = {}
        scalar = shape == ()
        if not scalar:
            if options.get("chunks") is not None:
                kw["chunks"] = tuple(options["chunks"])
            if self.handle.metadata.zarr_format == 3:
                if options.get("shards") is not None:
                    kw["shards"] = options["shards"]
                elif data is not None and _auto_shard():
                    # only arrays written whole, here: partial writes by concurrent tasks
                    # must own whole shards, which the write-out engine plans itself
                    kw["shards"] = "auto"
            kw["compressors"] = _zarr_compressors(self.handle, options)
        if 0 in (shape or ()) and "chunks" not in kw:
            kw["chunks"] = tuple(max(1, s) for s in shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # zarr's non-spec dtype notes
            arr = self.handle.create_array(key, shape=shape, dtype=dtype, **kw)
        if data is not None and arr.size:
            arr[...] = data
        return ZarrArray(arr, self.source, _join(self.path, key))

    def create_null(self, key: str) -> ZarrArray:
        arr = self.handle.create_array(key, shape=(), dtype=bool, fill_value=False)
        return ZarrArray(arr, self.source, _join(self.path, key))

    @property
    def store_format(self) -> str:
        return f"zarr{self.handle.metadata.zarr_format}"


def _auto_shard() -> bool:
    from .._settings import settings

    return settings.auto_shard_zarr_v3


def wrap(handle: Any, source: str, path: str = "/") -> Group | Array:
    """Wrap an h5py or zarr node."""
    if isinstance(handle, h5py.Group):
        return H5Group(handle, source, path)
    if isinstance(handle, h5py.Dataset):
        return H5Array(handle, source, path)
    if isinstance(handle, zarr.Group):
        return ZarrGroup(handle, source, path)
    if isinstance(handle, zarr.Array):
        return ZarrArray(handle, source, path)
    raise TypeError(f"not an h5py or zarr node: {type(handle).__name__}")
