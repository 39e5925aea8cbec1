"""Compressed sparse matrices: ``csr_matrix`` and ``csc_matrix`` 0.1.0.

On disk a sparse matrix is a group with attribute ``shape`` (``[n_rows, n_cols]``, int64) and
three 1-d children written in this order: ``data``, ``indices``, ``indptr``. The children carry
no encoding attributes (as anndata writes them). In HDF5 the three arrays are chunked and
resizable (``maxshape=(None,)``) so that blocks can be appended.

Reading validates the structure before building the matrix (see :func:`validate`), so a
corrupt group raises :class:`~annscale.errors.CorruptElementError` naming the file and element
instead of crashing scipy or returning wrong data. Reads return ``scipy.sparse.csr_matrix`` /
``csc_matrix`` (as anndata 0.12 does by default).

Dask arrays with sparse chunks are written by the write-out engine (:mod:`annscale.writeout`),
block by block along the major axis, never gathered whole.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from ..errors import CorruptElementError, FormatError
from ..storage.elements import Array, Element, Group, H5Array
from .registry import IOSpec, ReadContext, WriteContext, register_reader, register_writer

__all__ = ["read_sparse_group", "validate", "write_sparse", "append_block"]

CSR = IOSpec("csr_matrix", "0.1.0")
CSC = IOSpec("csc_matrix", "0.1.0")

Format = Literal["csr", "csc"]


# ------------------------------------------------------------------------------ reading


@register_reader("group", CSR)
def _read_csr(elem: Element, ctx: ReadContext) -> sp.csr_matrix:
    return read_sparse_group(elem, "csr", elem.attrs.get("shape"))


@register_reader("group", CSC)
def _read_csc(elem: Element, ctx: ReadContext) -> sp.csc_matrix:
    return read_sparse_group(elem, "csc", elem.attrs.get("shape"))


def read_sparse_group(group: Group, fmt: Format, shape: Any) -> sp.csr_matrix | sp.csc_matrix:
    """Read ``data``/``indices``/``indptr`` of ``group`` (all of them) and validate them."""
    if shape is None or len(shape) != 2:
        raise FormatError(
            f"sparse {fmt} group needs a 'shape' attribute [n_rows, n_cols], found {shape!r}",
            source=group.source,
            element=group.path,
        )
    shape = (int(shape[0]), int(shape[1]))
    parts = {}
    for name in ("data", "indices", "indptr"):
        child = group.require(name, f"the {name!r} array of a sparse {fmt} matrix")
        if child.is_group or child.ndim != 1:
            raise CorruptElementError(
                f"{name!r} of a sparse matrix must be a 1-d array",
                source=group.source,
                element=child.path,
            )
        parts[name] = _read_whole(child)
    validate(parts["data"], parts["indices"], parts["indptr"], shape, fmt, group)
    cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    return cls((parts["data"], parts["indices"], parts["indptr"]), shape=shape)


def _read_whole(child: Array) -> np.ndarray:
    """All of 1-d ``child``. An uncompressed dataset of a local ``.h5ad`` file is read
    straight from the file into one buffer (:mod:`annscale.lazy.h5raw`), much faster than
    HDF5's chunk-by-chunk read; anything else through the element layer."""
    if isinstance(child, H5Array) and child.shape[0]:
        # imported here: the lazy engine builds on spec, not the other way round
        from ..lazy.h5raw import read_ranges

        out = read_ranges(child.handle, np.zeros(1, np.int64), np.array([child.shape[0]]))
        if out is not None:
            return out
    return np.asarray(child.read())


def validate(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    shape: tuple[int, int],
    fmt: Format,
    group: Element,
) -> None:
    """Check a compressed sparse structure; raise :class:`CorruptElementError` if broken.

    Checks: ``len(indptr) == n_major + 1``; ``indptr[0] == 0``; ``indptr`` non-decreasing;
    ``indptr[-1] == nnz == len(data) == len(indices)``; ``0 <= indices < n_minor``.
    """
    major, minor = (shape[0], shape[1]) if fmt == "csr" else (shape[1], shape[0])
    where = {"source": group.source}

    def fail(msg: str, child: str) -> None:
        raise CorruptElementError(msg, element=f"{group.path.rstrip('/')}/{child}", **where)

    if len(indptr) != major + 1:
        fail(
            f"indptr has {len(indptr)} entries, expected {major + 1} "
            f"(number of {'rows' if fmt == 'csr' else 'columns'} + 1 for shape {list(shape)})",
            "indptr",
        )
    if len(data) != len(indices):
        fail(f"data has {len(data)} entries but indices has {len(indices)}", "indices")
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        fail(f"indptr/indices must be integers, found {indptr.dtype}/{indices.dtype}", "indptr")
    if len(indptr):
        if indptr[0] != 0:
            fail(f"indptr starts at {indptr[0]}, expected 0", "indptr")
        if np.any(np.diff(indptr.astype(np.int64)) < 0):
            bad = int(np.argmax(np.diff(indptr.astype(np.int64)) < 0))
            fail(f"indptr is not monotonic (decreases after position {bad})", "indptr")
        if int(indptr[-1]) != len(data):
            fail(f"indptr ends at {int(indptr[-1])} but nnz (len(data)) is {len(data)}", "indptr")
    if len(indices):
        # one pass: negative signed indices are huge as unsigned
        unsigned = indices.view(indices.dtype.str.replace("i", "u"))
        if int(unsigned.max()) >= minor:
            lo, hi = int(indices.min()), int(indices.max())
            fail(
                f"indices must lie in [0, {minor}) (the number of "
                f"{'columns' if fmt == 'csr' else 'rows'}), found values in [{lo}, {hi}]",
                "indices",
            )


# ------------------------------------------------------------------------------ writing


def _format_of(value: Any) -> Format:
    return "csr" if value.format == "csr" else "csc"


def write_sparse(
    group: Group,
    key: str,
    value: sp.csr_matrix | sp.csc_matrix | sp.csr_array | sp.csc_array,
    ctx: WriteContext,
    *,
    index_dtype: Any = None,
) -> Group:
    """Write one in-memory CSR/CSC matrix as a ``csr_matrix``/``csc_matrix`` group.

    ``index_dtype`` forces the dtype of ``indices`` and ``indptr`` (used for dask sources,
    which are always written with int64 indices, as anndata does).
    """
    options = dict(ctx.dataset_options)
    indptr_dtype = options.pop("indptr_dtype", index_dtype or value.indptr.dtype)
    g = group.create_group(key)
    g.set_attrs({"shape": np.asarray(value.shape, dtype=np.int64)})
    for name in ("data", "indices", "indptr"):
        arr = getattr(value, name)
        if name == "indptr":
            arr = arr.astype(indptr_dtype, copy=False)
        elif name == "indices" and index_dtype is not None:
            arr = arr.astype(index_dtype, copy=False)
        g.create_array(name, arr, resizable=True, **options)
    return g


for _cls in (sp.csr_matrix, sp.csr_array):
    register_writer(_cls, spec=CSR)(write_sparse)
for _cls in (sp.csc_matrix, sp.csc_array):
    register_writer(_cls, spec=CSC)(write_sparse)


def append_block(group: Group, block: sp.csr_matrix | sp.csc_matrix) -> None:
    """Append ``block`` along the major axis of the sparse group written by :func:`write_sparse`.

    Resizes ``data``/``indices`` by the block's nnz and ``indptr`` by its major length, and
    updates the ``shape`` attribute. The minor dimension must match.
    """
    fmt = _format_of(block)
    shape = [int(s) for s in group.attrs["shape"]]
    major_axis = 0 if fmt == "csr" else 1
    minor_axis = 1 - major_axis
    if block.shape[minor_axis] != shape[minor_axis]:
        raise ValueError(
            f"cannot append a block of shape {block.shape} to a {fmt} matrix of shape {shape}"
        )
    data: Array = group["data"]  # type: ignore[assignment]
    indices: Array = group["indices"]  # type: ignore[assignment]
    indptr: Array = group["indptr"]  # type: ignore[assignment]
    nnz = data.shape[0]
    n_major = indptr.shape[0] - 1
    add = int(block.nnz)
    data.resize((nnz + add,))
    indices.resize((nnz + add,))
    if add:
        data.write(slice(nnz, nnz + add), block.data)
        indices.write(slice(nnz, nnz + add), block.indices.astype(indices.dtype, copy=False))
    m = block.shape[major_axis]
    indptr.resize((n_major + 1 + m,))
    if m:
        tail = block.indptr[1:].astype(np.int64) + nnz
        indptr.write(slice(n_major + 1, n_major + 1 + m), tail.astype(indptr.dtype))
    shape[major_axis] += m
    group.set_attrs({"shape": np.asarray(shape, dtype=np.int64)})


def write_dask_sparse(group: Group, key: str, value: Any, ctx: WriteContext) -> Element:
    """Write a dask array of CSR (or CSC) chunks through the write-out engine.

    Blocks along the major axis are written by the engine's tasks (zarr: chunk-owned writes
    after a nonzero-counting pass) or, for HDF5, written in place by the tasks when every
    block's nonzeros are known from the stored inputs, else appended in order by one writer
    with bounded lookahead; the matrix is never gathered whole (see :mod:`annscale.writeout`).
    """
    from ..writeout.dispatch import write_dask_element

    return write_dask_element(group, key, value, ctx)


def _register_dask() -> None:
    import dask.array as da

    def sparse_meta(fmt: str):
        return lambda v: sp.issparse(getattr(v, "_meta", None)) and v._meta.format == fmt

    register_writer(da.Array, spec=CSR, when=sparse_meta("csr"))(write_dask_sparse)
    register_writer(da.Array, spec=CSC, when=sparse_meta("csc"))(write_dask_sparse)


_register_dask()
