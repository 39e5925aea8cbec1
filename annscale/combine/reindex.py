"""Pure planning for ``concat``: aligning names, reindex maps and fill values.

Everything here works on in-memory pandas indexes, numpy arrays and scipy sparse matrices
and reads no storage. A :class:`Reindex` maps the positions of one input's names on the
*other* axis (the one not concatenated) to the result's names; applying it to a block of
values is a gather that never densifies sparse data.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, reduce
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "Reindex",
    "align_indices",
    "default_fill_value",
    "dense_reindexed_dtype",
    "is_plain_str_index",
    "merge_indices",
    "reindex_dense",
    "reindex_sparse",
    "resolve_axis",
    "sparse_reindexed_dtype",
]

Join = Literal["inner", "outer"]


def resolve_axis(axis: Any) -> tuple[Literal[0, 1], Literal["obs", "var"]]:
    """``(0, "obs")`` or ``(1, "var")`` for ``axis`` given as a number or a name."""
    if axis in (0, "obs"):
        return 0, "obs"
    if axis in (1, "var"):
        return 1, "var"
    msg = f"`axis` must be either 0, 1, 'obs', or 'var', was {axis!r}"
    raise ValueError(msg)


def merge_indices(indices: Iterable[pd.Index], join: Join) -> pd.Index:
    """The names of the other axis in the result: intersection or (sorted) union.

    The result is pandas' pairwise ``reduce`` of ``Index.intersection``/``Index.union``
    (what anndata computes): an intersection keeps the order of the first index, a union is
    sorted unless all non-empty indexes are equal (then it is the first of them, as is). For
    many indexes of unique strings it is computed from one factorization
    (:func:`align_indices`) instead of one set operation per input.
    """
    return align_indices(indices, join, plans=False)[0]


def align_indices(
    indices: Iterable[pd.Index], join: Join, *, plans: bool = True
) -> tuple[pd.Index, list[Reindex]]:
    """The merged names (as :func:`merge_indices`) and each input's :class:`Reindex` onto them.

    When every index is a plain ``object`` index of unique strings, all names are factorized
    once and both the merged index and the maps come from the codes; otherwise (duplicates,
    other values or dtypes) pandas' set operations and ``get_indexer`` are used, with their
    errors. With ``plans=False`` the maps are not computed (an empty list is returned).
    """
    indices = list(indices)
    if join not in ("inner", "outer"):
        msg = f"`join` must be one of 'inner' or 'outer', got {join!r}"
        raise ValueError(msg)
    fast = _align_unique_strings(indices, join)
    if fast is not None:
        merged, positions = fast
        return merged, [Reindex.from_positions(p, len(merged)) for p in positions] if plans else []
    if join == "inner":
        merged = reduce(lambda x, y: x.intersection(y), indices)
    else:
        merged = reduce(lambda x, y: x.union(y), indices)
    return merged, [Reindex.between(idx, merged) for idx in indices] if plans else []


def is_plain_str_index(idx: pd.Index) -> bool:
    """An ``object`` index holding only strings (no missing values), not a subclass."""
    return (
        type(idx) is pd.Index
        and idx.dtype == object
        and idx.inferred_type in ("string", "empty")  # cached by pandas
    )


def _setop_name(indices: Sequence[pd.Index], join: Join) -> Hashable:
    """The name pandas gives the pairwise ``reduce`` of set operations over ``indices``.

    Pandas keeps a name while the names match (``None`` otherwise); which operand's name is
    kept depends on the branch taken (for a union of an empty index with a non-empty one,
    the non-empty one's), so the same reduce is run over one- or zero-element probes that
    take the same branches as the real indexes.
    """
    names = [idx.name for idx in indices]
    if all(n is names[0] for n in names):
        return names[0]
    if join == "inner":  # every branch of intersection names by (self, other)
        probes = [pd.Index([], dtype=object, name=n) for n in names]
        return reduce(lambda x, y: x.intersection(y), probes).name
    probes = [pd.Index(["-"] if len(idx) else [], dtype=object, name=idx.name) for idx in indices]
    return reduce(lambda x, y: x.union(y), probes).name


def _renamed(idx: pd.Index, name: Hashable) -> pd.Index:
    """``idx`` under ``name``, as pandas' set operations return an operand unchanged."""
    return idx if idx.name is name else idx.rename(name)


def _align_unique_strings(
    indices: Sequence[pd.Index], join: Join
) -> tuple[pd.Index, list[np.ndarray]] | None:
    """The merged index and, per input, the position of each of its names in it (-1: not
    kept), or None when not every index is a plain ``object`` index of unique strings.

    Reproduces pandas' pairwise reduce for such indexes: a union is the first non-empty
    index when every non-empty index equals it, else the sorted union; an intersection is
    the first index's names present in every index, in its order.
    """
    if not indices or not all(is_plain_str_index(idx) for idx in indices):
        return None
    name = _setop_name(indices, join)
    first = indices[0]
    if all(first.equals(idx) for idx in indices[1:]):
        # the common case of inputs sharing their names: no hashing beyond one uniqueness check
        if not first.is_unique:
            return None
        return _renamed(first, name), [np.arange(len(first), dtype=np.intp) for _ in indices]
    lengths = [len(idx) for idx in indices]
    codes, uniques = pd.factorize(np.concatenate([idx._values for idx in indices]))
    codes = codes.astype(np.intp, copy=False)
    n_unique = len(uniques)
    bounds = np.cumsum([0, *lengths])
    per_input = [codes[bounds[i] : bounds[i + 1]] for i in range(len(indices))]
    present = np.zeros(n_unique, dtype=np.intp)  # how many inputs hold each name
    for c in per_input:
        seen = np.bincount(c, minlength=n_unique)
        if len(c) and seen.max() > 1:
            return None  # duplicated names: pandas' own rules (and errors) apply
        present += seen
    position = np.full(n_unique, -1, dtype=np.intp)  # name code -> position in the result
    if join == "inner":
        keep = present[per_input[0]] == len(indices)
        kept = per_input[0][keep]
        position[kept] = np.arange(len(kept))
        if bool(keep.all()):
            merged = _renamed(first, name)
        else:
            merged = pd.Index(first._values[keep], dtype=object, name=name)
    else:
        non_empty = [i for i, n in enumerate(lengths) if n]
        head = non_empty[0] if non_empty else 0
        if all(indices[head].equals(indices[i]) for i in non_empty[1:]):
            merged = _renamed(indices[head], name)
            position[per_input[head]] = np.arange(lengths[head])
        else:
            order = np.argsort(uniques)
            merged = pd.Index(uniques[order], dtype=object, name=name)
            position[order] = np.arange(n_unique)
    return merged, [position[c] for c in per_input]


def default_fill_value(any_sparse: bool) -> float | int:
    """0 when any of the values being joined is sparse, else NaN (anndata's convention)."""
    return 0 if any_sparse else np.nan


@dataclass(frozen=True, eq=False)
class Reindex:
    """Where each position of the result comes from along one axis.

    ``take[j]`` is the position in the input of the result's ``j``-th name, ``-1`` when the
    input lacks it. ``old_len`` is the input's length along the axis.
    """

    take: np.ndarray
    old_len: int
    no_change: bool

    @classmethod
    def between(cls, old: pd.Index, new: pd.Index) -> Reindex:
        """The map from names ``old`` to names ``new`` (names must be unique in ``old``)."""
        take = np.asarray(old.get_indexer(new), dtype=np.intp)
        return cls(take, len(old), bool(new.equals(old)))

    @classmethod
    def from_positions(cls, positions: np.ndarray, new_len: int) -> Reindex:
        """The map for an input whose ``i``-th name is at ``positions[i]`` of a result of
        ``new_len`` names (-1: not kept); the input's names must be unique."""
        take = np.full(new_len, -1, dtype=np.intp)
        kept = positions >= 0
        take[positions[kept]] = np.flatnonzero(kept)
        no_change = len(positions) == new_len and bool(
            (positions == np.arange(new_len, dtype=np.intp)).all()
        )
        return cls(take, len(positions), no_change)

    @classmethod
    def prefix(cls, old_len: int, new_len: int) -> Reindex:
        """Positions ``0..new_len-1`` from an axis of ``old_len`` (truncate or pad)."""
        take = np.arange(new_len, dtype=np.intp)
        take[take >= old_len] = -1
        return cls(take, old_len, old_len == new_len)

    @property
    def new_len(self) -> int:
        return len(self.take)

    @cached_property
    def has_missing(self) -> bool:
        """Whether some result positions have no source (and need filling)."""
        return bool((self.take < 0).any())

    @cached_property
    def destination(self) -> np.ndarray:
        """For each input position, its position in the result, or -1 if dropped."""
        dest = np.full(self.old_len, -1, dtype=np.intp)
        present = self.take >= 0
        dest[self.take[present]] = np.flatnonzero(present)
        return dest

    def is_identity_for(self, length: int) -> bool:
        """Whether applying this map to an axis of ``length`` returns it unchanged."""
        return self.no_change and length == self.old_len

    def restrict(self, start: int, stop: int) -> Reindex:
        """The map for result positions ``start:stop`` only (same input)."""
        take = self.take[start:stop]
        return Reindex(take, self.old_len, False)


# ---------------------------------------------------------------------------- dense


def dense_reindexed_dtype(dtype: np.dtype, plan: Reindex, fill_value: Any) -> np.dtype:
    """The dtype of a dense array after :func:`reindex_dense` (pandas' fill promotion)."""
    probe = np.empty((1, plan.old_len), dtype=dtype)
    return reindex_dense(probe, plan, axis=1, fill_value=fill_value).dtype


def reindex_dense(arr: np.ndarray, plan: Reindex, *, axis: int, fill_value: Any) -> np.ndarray:
    """Gather ``arr`` along ``axis`` by ``plan``; positions without source get ``fill_value``.

    The dtype is promoted only as far as the fill value needs, and only when some position
    is filled (``int`` + NaN gives ``float64``, ``bool`` + NaN gives ``object``).
    """
    if plan.is_identity_for(arr.shape[axis]):
        return arr
    if arr.shape[axis] == 0:
        shape = list(arr.shape)
        shape[axis] = plan.new_len
        return np.broadcast_to(fill_value, tuple(shape))
    return pd.api.extensions.take(arr, plan.take, axis=axis, allow_fill=True, fill_value=fill_value)


# ---------------------------------------------------------------------------- sparse


def _needs_fill(plan: Reindex, fill_value: Any) -> bool:
    return plan.has_missing and not (np.isscalar(fill_value) and fill_value == 0)


def sparse_reindexed_dtype(dtype: np.dtype, plan: Reindex, fill_value: Any) -> np.dtype:
    """The dtype of a sparse matrix after :func:`reindex_sparse`."""
    if _needs_fill(plan, fill_value):
        return np.promote_types(dtype, np.asarray(fill_value).dtype)
    return np.dtype(dtype)


def _gather_major(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, take: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``take`` of a compressed matrix (``-1`` gives an empty row)."""
    present = take >= 0
    src = np.where(present, take, 0)
    starts = indptr[src]
    lengths = np.where(present, indptr[src + 1] - starts, 0)
    new_indptr = np.zeros(len(take) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_indptr[1:])
    total = int(new_indptr[-1])
    pos = np.repeat(starts - new_indptr[:-1], lengths) + np.arange(total)
    return data[pos], indices[pos], new_indptr


def _remap_minor(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    destination: np.ndarray,
    copy: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber the minor axis by ``destination`` (``-1`` drops the entry)."""
    if len(destination) and destination.max() <= np.iinfo(indices.dtype).max:
        destination = destination.astype(indices.dtype, copy=False)  # gather in that width
    new_indices = destination[indices]
    if _keeps_all(destination):  # an outer join or a reordering: nothing is dropped
        return (data.copy(), new_indices, indptr.copy()) if copy else (data, new_indices, indptr)
    keep = new_indices >= 0
    kept = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept[1:])
    return data[keep], new_indices[keep], kept[indptr]


def _keeps_all(destination: np.ndarray) -> bool:
    return bool(destination.size == 0 or destination.min() >= 0)


def _keeps_order(destination: np.ndarray) -> bool:
    """Whether the kept positions' new positions are increasing (order is preserved)."""
    kept = destination[destination >= 0]
    return bool(kept.size < 2 or np.all(kept[1:] > kept[:-1]))


def _fill_matrix(shape: tuple[int, int], positions: np.ndarray, axis: int, value, dtype, cls):
    """A sparse matrix with ``value`` stored at every cell of ``positions`` along ``axis``."""
    n_other = shape[1 - axis]
    other = np.repeat(np.arange(n_other), len(positions))
    along = np.tile(positions, n_other)
    rows, cols = (along, other) if axis == 0 else (other, along)
    vals = np.full(len(rows), value, dtype=dtype)
    return cls(sp.coo_matrix((vals, (rows, cols)), shape=shape))


def reindex_sparse(
    mat: Any, plan: Reindex, *, axis: int, fill_value: Any = 0, copy: bool = True
) -> Any:
    """Gather a CSR/CSC matrix along ``axis`` by ``plan`` without densifying it.

    Positions without source stay implicit zeros when ``fill_value`` is 0; any other fill
    value is stored explicitly there (as anndata does). The result keeps the input's format
    (and matrix/array class), with sorted indices. With ``copy=False`` it may share the
    input's buffers (for inputs nobody else modifies, e.g. freshly read chunks).
    """
    if plan.is_identity_for(mat.shape[axis]):
        return mat
    is_array = isinstance(mat, sp.sparray)
    shape = list(mat.shape)
    shape[axis] = plan.new_len
    shape = tuple(shape)
    if mat.shape[axis] == 0:
        if np.isscalar(fill_value) and fill_value == 0:
            return (sp.csr_array if is_array else sp.csr_matrix)(shape)
        return type(mat)(np.broadcast_to(np.asarray(fill_value), shape))
    fmt = mat.format if mat.format in ("csr", "csc") else "csr"
    mat = mat.asformat(fmt)
    major = 0 if fmt == "csr" else 1
    dtype = sparse_reindexed_dtype(mat.dtype, plan, fill_value)
    data, indices, indptr = mat.data, mat.indices, mat.indptr
    if axis == major:
        data, indices, indptr = _gather_major(data, indices, indptr, plan.take)
    else:
        data, indices, indptr = _remap_minor(data, indices, indptr, plan.destination, copy)
    cls = {
        ("csr", False): sp.csr_matrix,
        ("csc", False): sp.csc_matrix,
        ("csr", True): sp.csr_array,
        ("csc", True): sp.csc_array,
    }[fmt, is_array]
    out = cls((data.astype(dtype, copy=False), indices, indptr), shape=shape)
    if axis != major:
        # renumbering keeps each row's (column's) entries in order when the kept positions
        # keep theirs (e.g. an outer join of sorted names); else they are sorted again
        out.has_sorted_indices = bool(mat.has_sorted_indices) and _keeps_order(plan.destination)
        if not out.has_sorted_indices and np.may_share_memory(out.data, mat.data):
            out.data = out.data.copy()  # sorted in place below: never the input's buffer
        out.sort_indices()
    if _needs_fill(plan, fill_value):
        missing = np.flatnonzero(plan.take < 0)
        out = out + _fill_matrix(shape, missing, axis, fill_value, dtype, cls)
        out = cls(out)
    return out


def concat_names(indices: Sequence[pd.Index]) -> pd.Index:
    """The concatenated axis' names, in input order (duplicates kept)."""
    series = pd.concat([idx.to_series() for idx in indices], ignore_index=True)
    return pd.Index(series)


@dataclass(frozen=True, eq=False)
class GatherStep:
    """How to build one chunk of a reindexed axis from an input's chunks.

    ``blocks`` are the input chunk numbers (along the reindexed axis) to concatenate, in
    order; ``take`` indexes into that concatenation (-1: fill); ``take`` is None when the
    concatenation already is the chunk (no gather needed).
    """

    blocks: tuple[int, ...]
    take: np.ndarray | None
    length: int


def plan_gather(
    take: np.ndarray, in_chunks: Sequence[int], out_chunks: Sequence[int]
) -> list[GatherStep]:
    """Split a reindex map into per-output-chunk steps reading only the input chunks needed.

    ``take`` maps result positions to input positions (-1 where missing); ``in_chunks`` and
    ``out_chunks`` are chunk lengths (in positions) of the input and the result along the axis.
    """
    in_offsets = np.zeros(len(in_chunks) + 1, dtype=np.int64)
    np.cumsum(in_chunks, out=in_offsets[1:])
    steps = []
    start = 0
    for length in out_chunks:
        t = take[start : start + length]
        start += length
        present = t >= 0
        src = t[present]
        blk = np.searchsorted(in_offsets, src, side="right") - 1
        blocks = np.unique(blk)
        sizes = in_offsets[blocks + 1] - in_offsets[blocks]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        local = np.full(len(t), -1, dtype=np.intp)
        where = np.searchsorted(blocks, blk)
        local[present] = src - in_offsets[blk] + starts[where]
        total = int(sizes.sum())
        if total == len(t) and bool(present.all()) and bool((local == np.arange(len(t))).all()):
            local = None
        steps.append(GatherStep(tuple(int(b) for b in blocks), local, int(length)))
    return steps


def uniform_chunks(length: int, size: int) -> tuple[int, ...]:
    """``length`` positions split into chunks of ``size`` (the last may be shorter)."""
    if length == 0:
        return (0,)
    size = max(1, size)
    full, rest = divmod(length, size)
    return (size,) * full + ((rest,) if rest else ())
