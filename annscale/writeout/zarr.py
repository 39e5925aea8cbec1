"""Writing dask arrays (dense, or with scipy CSR/CSC chunks) into zarr as one task graph.

:func:`write_dask_zarr` creates the target arrays up front (in the calling process), then
builds a graph in which every task opens the store itself from its :class:`Location`
(cached per process, see :mod:`._target`) and writes whole zarr chunks, or whole shards
when the array is sharded. No two tasks ever write the same chunk or shard, which is what
makes concurrent writes safe on every store (zarr's read-modify-write of a partial chunk or
shard is not atomic; see zarr-python #3682 for sharded arrays).

Dense arrays
    The zarr chunk shape defaults to the dask chunk shape. Dask blocks are rechunked, if
    needed, so that every inner block boundary falls on the chunk grid (on the shard grid
    when sharded): each task writes its block, i.e. whole chunks/shards, and nothing else.
    Per task: one block computed and held, one write of its region.

Sparse arrays (CSR by rows, CSC by columns; the major axis is the one blocks are cut along)
    The minor axis is first rechunked to a single block so a block is whole major slices.

    Pass 1 (eager, at call time, skipped when ``nnz`` is given, a resumed manifest has it,
    or the blocks are plain reads of stored sparse groups whose ``indptr`` tells it, see
    :mod:`.stored_nnz`): compute every block and keep only its number of nonzeros. Prefix sums give each
    block's offset in ``data``/``indices`` and the total, which fixes the arrays' lengths
    and dtypes (``indptr`` int64 when the total >= 2**31 - 1, else int32; ``indices`` int32
    unless the minor axis needs int64).

    Pass 2 (the returned graph): each block task computes its block again, writes the
    chunks of ``data``, ``indices`` and ``indptr`` lying wholly inside its range, and
    hands over its partial leading/trailing chunk pieces (at most two per array), saved
    beside the arrays in the store (:mod:`.pieces`; kept in memory only for zip stores). A
    merge task per shared chunk assembles the pieces from the blocks involved and writes
    that chunk once (:func:`annscale.writeout.plan.plan_ownership`).

    Trade-off: every block is computed twice. Keeping blocks between the passes would hold
    the whole matrix (in memory) or write it twice (spilled to disk); recomputing keeps
    memory bounded and costs one extra read of the input, which callers that know the
    counts (e.g. from a stored ``indptr``) avoid by passing ``nnz``.

Memory bound: a block task holds one block (plus its conversion to the major format);
a merge task holds one chunk (or shard); pieces waiting for their merge task are in
storage, whatever order the scheduler runs the blocks in.

Resume: with a :class:`~annscale.writeout.manifest.Manifest`, each task records its id
after writing; with ``resume=True`` on the manifest and an identical plan, recorded tasks
are left out of the graph: a recorded block's saved pieces go straight to the pending merges
(in a zip store, where pieces stay in memory, such a block is recomputed without rewriting
its chunks).

The three arrays of a sparse matrix get no encoding attributes; the group gets ``shape``.
The caller stamps ``encoding-type``/``encoding-version`` (dense: on the array).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
import zarr
from dask.base import tokenize
from dask.delayed import Delayed

from ..errors import CorruptElementError, FormatError
from ..scheduler import compute as _compute
from ..storage.elements import ZarrGroup
from ..storage.location import Location, as_location
from ..storage.open import open_root
from . import plan as _plan
from ._target import ZarrTarget, open_target
from .manifest import ElementManifest, Manifest
from .pieces import (
    PieceRef,
    load_piece,
    piece_ref,
    remove_piece,
    remove_pieces,
    save_piece,
    spillable,
)
from .stored_nnz import stored_block_nnz

__all__ = [
    "write_dask_zarr",
    "sparse_format",
    "block_nnz",
    "count_nonzeros",
    "nnz_graph",
    "DEFAULT_SPARSE_CHUNK",
]

DEFAULT_SPARSE_CHUNK = 2**20
"""Default zarr chunk length (elements) of ``data``, ``indices`` and ``indptr``."""


def sparse_format(x: da.Array) -> Literal["csr", "csc"] | None:
    """``"csr"``/``"csc"`` for a dask array of scipy sparse chunks, None for dense ones.

    Chunks in another sparse format (COO, ...) are written as CSR.
    """
    meta = getattr(x, "_meta", None)
    if meta is None or not sp.issparse(meta):
        return None
    return "csc" if meta.format == "csc" else "csr"


def _as_major(block: Any, fmt: str) -> sp.spmatrix:
    if not sp.issparse(block):
        block = sp.csr_matrix(np.asarray(block))
    return block if block.format == fmt else block.asformat(fmt)


def _nnz_of(block: Any, fmt: str) -> np.ndarray:
    m = _as_major(block, fmt)
    return np.full((1, 1), int(m.indptr[-1]), dtype=np.int64)


def nnz_graph(x: da.Array, fmt: Literal["csr", "csc"]) -> da.Array:
    """A dask array of one integer per major-axis block of ``x``: its nonzeros (lazy).

    ``x`` must be a single block along its minor axis.
    """
    axis = 0 if fmt == "csr" else 1
    nb = len(x.chunks[axis])
    chunks = ((1,) * nb, (1,)) if axis == 0 else ((1,), (1,) * nb)
    return x.map_blocks(
        _nnz_of, fmt, dtype=np.int64, chunks=chunks, meta=np.empty((0, 0), np.int64)
    )


def count_nonzeros(*items: tuple[da.Array, Literal["csr", "csc"]]) -> list[np.ndarray]:
    """Pass 1 for several sparse arrays at once: nonzeros per major-axis block of each.

    Runs one graph on annscale's scheduler; reads every block once and keeps one integer
    per block.
    """
    if not items:
        return []
    out = _compute(*(nnz_graph(x, fmt) for x, fmt in items))
    return [np.asarray(o, dtype=np.int64).reshape(-1) for o in out]


def block_nnz(x: da.Array, fmt: Literal["csr", "csc"]) -> np.ndarray:
    """Pass 1: nonzeros per major-axis block of ``x`` (computed on annscale's scheduler).

    ``x`` must be a single block along its minor axis. Reads every block once and keeps
    one integer per block.
    """
    (out,) = count_nonzeros((x, fmt))
    return out


# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class _SparseBlockJob:
    """What block ``index`` writes: ranges of data/indices (nonzeros) and of indptr."""

    index: int
    fmt: str
    data: ZarrTarget
    indices: ZarrTarget
    indptr: ZarrTarget
    nnz_start: int
    nnz_stop: int
    nz_owned: tuple[int, int]
    nz_pieces: tuple[_plan.Piece, ...]
    ip_start: int
    ip_owned: tuple[int, int]
    ip_pieces: tuple[_plan.Piece, ...]
    data_dtype: str
    indices_dtype: str
    indptr_dtype: str
    write_owned: bool
    manifest: ElementManifest | None
    task_id: str
    #: the sparse group whose pieces go to storage (:mod:`.pieces`); None: kept in memory
    spill_element: str | None = None

    def piece_name(self, kind: str, unit: int) -> str:
        return f"{kind}-{unit}-{self.index}"

    def hand_over(self, kind: str, unit: int, values: tuple[np.ndarray, ...]) -> Any:
        """A piece for a merge task: saved to storage (its reference), or a copy."""
        if self.spill_element is None:
            return tuple(v.copy() for v in values)
        name = self.piece_name(kind, unit)
        return save_piece(self.data.location, self.spill_element, name, values)

    def saved_pieces(self) -> dict[tuple[str, int], Any]:
        """What the block task returned when it ran (and recorded itself) before: its
        pieces, as saved to storage."""
        assert self.spill_element is not None
        loc, element = self.data.location, self.spill_element
        out: dict[tuple[str, int], Any] = {}
        for kind, pieces in (("nz", self.nz_pieces), ("ip", self.ip_pieces)):
            for p in pieces:
                out[(kind, p.unit)] = (
                    p.start,
                    piece_ref(loc, element, self.piece_name(kind, p.unit)),
                )
        return out


def _write_sparse_block(block: Any, job: _SparseBlockJob) -> dict[tuple[str, int], Any]:
    m = _as_major(block, job.fmt)
    nnz = int(m.indptr[-1])
    if nnz != job.nnz_stop - job.nnz_start:
        raise CorruptElementError(
            f"block {job.index} has {nnz} nonzeros but {job.nnz_stop - job.nnz_start} were "
            "planned: the input changed between the counting and the writing pass",
            source=job.data.location.url,
            element=job.data.element.rsplit("/", 1)[0],
        )
    data = np.asarray(m.data[:nnz], dtype=job.data_dtype)
    indices = np.asarray(m.indices[:nnz], dtype=job.indices_dtype)
    local = m.indptr.astype(np.int64) + job.nnz_start
    indptr = (local if job.index == 0 else local[1:]).astype(job.indptr_dtype)
    del m, block, local

    if job.write_owned:
        _write_range(job.data, data, job.nnz_start, job.nz_owned)
        _write_range(job.indices, indices, job.nnz_start, job.nz_owned)
        _write_range(job.indptr, indptr, job.ip_start, job.ip_owned)
    pieces: dict[tuple[str, int], Any] = {}
    for kind, planned, arrays, base in (
        ("nz", job.nz_pieces, (data, indices), job.nnz_start),
        ("ip", job.ip_pieces, (indptr,), job.ip_start),
    ):
        for p in planned:
            a, b = p.start - base, p.stop - base
            values = tuple(v[a:b] for v in arrays)
            pieces[(kind, p.unit)] = (p.start, job.hand_over(kind, p.unit, values))
    if job.write_owned and job.manifest is not None:
        job.manifest.record(job.task_id)
    return pieces


def _write_range(target: ZarrTarget, values: np.ndarray, base: int, rng: tuple[int, int]) -> None:
    start, stop = rng
    if stop > start:
        open_target(target)[start:stop] = values[start - base : stop - base]


@dataclass(frozen=True)
class _MergeJob:
    """Unit ``unit`` (positions ``[start, stop)``) of ``targets``, assembled from pieces."""

    kind: str  # "nz" (data + indices) or "ip" (indptr)
    unit: int
    start: int
    stop: int
    targets: tuple[ZarrTarget, ...]
    dtypes: tuple[str, ...]
    manifest: ElementManifest | None
    task_id: str


def _merge_unit(job: _MergeJob, *parts: dict[tuple[str, int], Any]) -> None:
    n = job.stop - job.start
    bufs = [np.empty(n, dtype=dt) for dt in job.dtypes]
    filled = 0
    saved: list[PieceRef] = []
    for part in parts:
        start, held = part[(job.kind, job.unit)]
        if isinstance(held, PieceRef):
            saved.append(held)
            held = load_piece(held)
        for buf, v in zip(bufs, held):
            buf[start - job.start : start - job.start + len(v)] = v
        filled += len(held[0])
    if filled != n:  # the plan guarantees full coverage; guard against silent garbage
        raise CorruptElementError(
            f"chunk {job.unit} assembled from {filled} of {n} values",
            source=job.targets[0].location.url,
            element=job.targets[0].element,
        )
    for target, buf in zip(job.targets, bufs):
        open_target(target)[job.start : job.stop] = buf
    if job.manifest is not None:
        job.manifest.record(job.task_id)
    for ref in saved:
        remove_piece(ref)


@dataclass(frozen=True)
class _DenseJob:
    target: ZarrTarget
    region: tuple[tuple[int, int], ...]
    manifest: ElementManifest | None
    task_id: str


def _write_dense_block(block: Any, job: _DenseJob) -> None:
    sel = tuple(slice(a, b) for a, b in job.region)
    open_target(job.target)[sel] = np.asarray(block)
    if job.manifest is not None:
        job.manifest.record(job.task_id)


def _finish(*_: Any) -> None:
    return None


def _finish_sparse(location: Location, spill_element: str | None, *_: Any) -> None:
    if spill_element is not None:
        remove_pieces(location, spill_element)


# ----------------------------------------------------------------------------- public


def write_dask_zarr(
    location: Location | str,
    group_path: str,
    key: str,
    x: da.Array,
    *,
    zarr_format: int,
    chunks: int | Sequence[int] | None = None,
    shards: int | Sequence[int] | None = None,
    compressors: Any = "auto",
    manifest: Manifest | None = None,
    compute: bool = True,
    nnz: Sequence[int] | np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
    index_dtype: Any = None,
) -> Delayed | None:
    """Write dask array ``x`` as element ``<group_path>/<key>`` of the zarr store at ``location``.

    Parameters
    ----------
    location
        The (staging) zarr store; it must exist with format ``zarr_format``. Missing groups
        along ``group_path`` are created; an existing ``key`` is replaced.
    x
        Dense (numpy chunks) or sparse (scipy CSR/CSC chunks; see :func:`sparse_format`).
    chunks, shards
        Dense: zarr chunk (and shard, zarr v3 only) shape per dimension; default chunks =
        dask's chunk shape, no shards. Sparse: chunk (and shard) length in elements of
        ``data``/``indices``/``indptr``; default :data:`DEFAULT_SPARSE_CHUNK`, no shards.
    compressors
        Passed to zarr (``"auto"``: zarr's default).
    manifest
        Records completed tasks for resuming (see :mod:`.manifest`).
    compute
        Run the write now (on :func:`annscale.scheduler.compute`) and return None,
        or return the write as one :class:`~dask.delayed.Delayed` (computing it returns
        None). For sparse ``x`` the nonzero-counting pass runs now either way.
    nnz
        Sparse only: nonzeros per major-axis block of ``x`` if known (skips pass 1).
    attrs
        Attributes set on the element when it is created (e.g. its encoding attributes);
        otherwise the caller stamps them (sparse: on the group, which gets ``shape`` here).
    index_dtype
        Sparse only: dtype of ``indices`` and ``indptr`` (anndata writes int64 for dask
        sources); default int32 unless the values need int64.
    """
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    if shards is not None and zarr_format == 2:
        raise ValueError("shards need zarr_format=3")
    loc = as_location(location)
    element = "/".join(p for p in (group_path.strip("/"), key.strip("/")) if p)
    if not element:
        raise ValueError("an element key is required")
    fmt = sparse_format(x)
    if fmt is not None:
        graph = _sparse_graph(
            loc, element, x, fmt, zarr_format, chunks, shards, compressors, manifest, nnz, attrs,
            index_dtype,
        )  # fmt: skip
    else:
        if nnz is not None:
            raise ValueError("nnz is only meaningful for sparse arrays")
        graph = _dense_graph(
            loc, element, x, zarr_format, chunks, shards, compressors, manifest, attrs
        )
    if not compute:
        return graph
    _compute(graph)
    return None


def _prepare_group(loc: Location, element: str, zarr_format: int) -> tuple[ZarrGroup, str]:
    """Open the store, create missing parent groups; returns (parent group, key)."""
    with open_root(loc, "r+", kind="zarr") as root:
        pass
    if not isinstance(root, ZarrGroup):  # pragma: no cover - open_root(kind="zarr") guarantees it
        raise FormatError("not a zarr store", source=loc.url)
    found = root.handle.metadata.zarr_format
    if found != zarr_format:
        raise FormatError(
            f"store is zarr format {found}, but zarr_format={zarr_format} was asked for",
            source=loc.url,
        )
    *parents, key = element.split("/")
    g = root
    for name in parents:
        g = g[name] if name in g else g.create_group(name)
        if not g.is_group:
            raise FormatError(
                f"{name!r} is an array, expected a group", source=loc.url, element=g.path
            )
    return g, key


def _element_manifest(
    manifest: Manifest | None, element: str, plan: dict
) -> ElementManifest | None:
    return None if manifest is None else manifest.element("/" + element, plan)


def _exists_like(g: ZarrGroup, key: str, arrays: dict[str, tuple[tuple[int, ...], str]]) -> bool:
    """Whether ``g/key`` already holds arrays of the given shapes and dtypes (for resume)."""
    try:
        for path, (shape, dtype) in arrays.items():
            node = g.handle[f"{key}/{path}" if path else key]
            if not isinstance(node, zarr.Array):
                return False
            if tuple(node.shape) != tuple(shape) or node.dtype != np.dtype(dtype):
                return False
    except KeyError:
        return False
    return True


def _norm_1d(value: int | Sequence[int] | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    seq = tuple(value)
    if len(seq) != 1:
        raise ValueError(f"{name} of a sparse matrix's 1-d arrays is one length, got {seq}")
    return int(seq[0])


# ----------------------------------------------------------------------------- sparse


def _sparse_graph(
    loc, element, x, fmt, zarr_format, chunks, shards, compressors, manifest, nnz, attrs,
    index_dtype,
):  # fmt: skip
    if x.ndim != 2:
        raise ValueError(f"sparse arrays must be 2-d, got shape {x.shape}")
    major = 0 if fmt == "csr" else 1
    minor = 1 - major
    if len(x.chunks[minor]) > 1:
        x = x.rechunk({minor: -1})
    lengths = np.asarray(x.chunks[major], dtype=np.int64)
    n_blocks = len(lengths)

    cache_key = f"{x.name}:{fmt}"
    if nnz is None and manifest is not None:
        nnz = manifest.lookup("/" + element, cache_key)
    if nnz is None:
        nnz = stored_block_nnz(x, fmt)
    if nnz is None:
        nnz = block_nnz(x, fmt)
    counts = np.asarray(nnz, dtype=np.int64).reshape(-1)
    if len(counts) != n_blocks:
        raise ValueError(
            f"nnz has {len(counts)} entries, but x has {n_blocks} blocks along axis {major}"
        )
    offsets = _plan.block_offsets(counts)
    total = int(offsets[-1])
    n_major, n_minor = x.shape[major], x.shape[minor]
    ip_dtype = _plan.indptr_dtype(total) if index_dtype is None else np.dtype(index_dtype)
    ix_dtype = _plan.indices_dtype(n_minor) if index_dtype is None else np.dtype(index_dtype)
    _plan.check_index_dtype(ip_dtype, total, ix_dtype, n_minor)
    dt = np.dtype(x.dtype)

    chunk = _norm_1d(chunks, "chunks")
    shard = _norm_1d(shards, "shards")
    target = chunk or DEFAULT_SPARSE_CHUNK
    if shard is not None and shard % target:
        raise ValueError(f"shard length {shard} is not a multiple of the chunk length {target}")

    def layout(length: int) -> tuple[int, int | None, int]:
        """(chunk, shard, unit) of a 1-d array of ``length`` elements."""
        if shard is not None:
            return target, shard, shard
        c = _plan.default_unit(length, target)
        return c, None, c

    nz_chunk, nz_shard, nz_unit = layout(total)
    ip_chunk, ip_shard, ip_unit = layout(n_major + 1)
    plan = {
        "kind": "sparse",
        "format": fmt,
        "shape": list(x.shape),
        "dtype": dt.str,
        "blocks": lengths.tolist(),
        "nnz": counts.tolist(),
        "layout": [nz_chunk, nz_shard, ip_chunk, ip_shard],
        "dtypes": [ip_dtype.str, ix_dtype.str],
        "zarr_format": zarr_format,
        "compressors": repr(compressors),
    }
    g, key = _prepare_group(loc, element, zarr_format)
    em = _element_manifest(manifest, element, plan)
    arrays = {
        "data": ((total,), dt),
        "indices": ((total,), ix_dtype),
        "indptr": ((n_major + 1,), ip_dtype),
    }
    if em is not None and em.resumed and not _exists_like(g, key, arrays):
        em = Manifest(manifest.location, resume=False).element("/" + element, plan)
    if em is None or not em.resumed:
        if key in g:
            g.delete(key)
        sg = g.create_group(key)
        sg.set_attrs({"shape": [int(s) for s in x.shape], **(attrs or {})})
        for name, (shape, dtype) in arrays.items():
            c, s, _ = (nz_chunk, nz_shard, 0) if name != "indptr" else (ip_chunk, ip_shard, 0)
            sg.create_array(
                name,
                shape=shape,
                dtype=dtype,
                chunks=(c,),
                shards=(s,) if s else None,
                compressors=compressors,
            )
    if manifest is not None:
        manifest.remember("/" + element, cache_key, counts.tolist())
    done = em.done() if em is not None else frozenset()

    token = tokenize(loc.token, element, em.fingerprint if em else plan, x.name)
    targets = {name: ZarrTarget(loc, f"{element}/{name}", token) for name in arrays}
    nz_plan = _plan.plan_ownership(offsets, nz_unit)
    ip_plan = _plan.plan_ownership(_plan.indptr_bounds(lengths), ip_unit)

    merges: list[_MergeJob] = []
    merge_blocks: list[tuple[int, ...]] = []
    for kind, p, names in (("nz", nz_plan, ("data", "indices")), ("ip", ip_plan, ("indptr",))):
        for unit, contributors in p.merges.items():
            task_id = f"merge-{kind}-{unit}"
            if task_id in done:
                continue
            start, stop = p.unit_range(unit)
            merges.append(
                _MergeJob(
                    kind,
                    unit,
                    start,
                    stop,
                    tuple(targets[n] for n in names),
                    tuple(np.dtype(arrays[n][1]).str for n in names),
                    em,
                    task_id,
                )
            )
            merge_blocks.append(contributors)
    needed_by_merge = {b for bs in merge_blocks for b in bs}

    blocks = x.to_delayed().reshape(-1)
    name = f"annscale-write-zarr-{token}"
    spill = spillable(loc)
    block_tasks: dict[int, Delayed] = {}
    for b in range(n_blocks):
        task_id = f"block-{b}"
        owned_done = task_id in done
        if owned_done and b not in needed_by_merge:
            continue
        job = _SparseBlockJob(
            index=b,
            fmt=fmt,
            data=targets["data"],
            indices=targets["indices"],
            indptr=targets["indptr"],
            nnz_start=int(offsets[b]),
            nnz_stop=int(offsets[b + 1]),
            nz_owned=nz_plan.owned[b],
            nz_pieces=nz_plan.pieces[b],
            ip_start=int(ip_plan.bounds[b]),
            ip_owned=ip_plan.owned[b],
            ip_pieces=ip_plan.pieces[b],
            data_dtype=dt.str,
            indices_dtype=ix_dtype.str,
            indptr_dtype=ip_dtype.str,
            write_owned=not owned_done,
            manifest=em,
            task_id=task_id,
            spill_element=element if spill else None,
        )
        if owned_done and spill:
            # recorded: its chunks are written and its pieces saved, nothing to compute
            block_tasks[b] = job.saved_pieces()
            continue
        block_tasks[b] = dask.delayed(_write_sparse_block)(
            blocks[b], job, dask_key_name=(name, "block", b)
        )
    merge_tasks = [
        dask.delayed(_merge_unit)(
            job, *(block_tasks[b] for b in bs), dask_key_name=(name, f"merge-{job.kind}", job.unit)
        )
        for job, bs in zip(merges, merge_blocks)
    ]
    # the final task depends on block tasks only when no merge does, so pieces are freed
    # as soon as their merge has run
    tail = [t for b, t in block_tasks.items() if b not in needed_by_merge]
    return dask.delayed(_finish_sparse)(
        loc, element if spill else None, *tail, *merge_tasks, dask_key_name=(name, "done")
    )


# ----------------------------------------------------------------------------- dense


def _dense_layout(x: da.Array, chunks, shards) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    if chunks is None:
        chunks = tuple(max(1, int(c)) for c in x.chunksize)
    elif isinstance(chunks, (int, np.integer)):
        chunks = (int(chunks),) * x.ndim
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) != x.ndim or min(chunks, default=1) < 1:
        raise ValueError(f"chunks {chunks} do not fit an array of shape {x.shape}")
    if shards is not None:
        if isinstance(shards, (int, np.integer)):
            shards = (int(shards),) * x.ndim
        shards = tuple(int(s) for s in shards)
        if len(shards) != x.ndim or any(s % c for s, c in zip(shards, chunks)):
            raise ValueError(f"shards {shards} must be multiples of chunks {chunks}")
    return chunks, shards


def _dense_graph(loc, element, x, zarr_format, chunks, shards, compressors, manifest, attrs):
    if x.dtype.kind in "OUSTV":
        raise TypeError(f"write_dask_zarr writes numeric arrays; got dtype {x.dtype}")
    zchunks, zshards = _dense_layout(x, chunks, shards)
    units = zshards or zchunks
    aligned = tuple(_plan.aligned_chunks(c, u) for c, u in zip(x.chunks, units))
    if aligned != x.chunks:
        x = x.rechunk(aligned)
    plan = {
        "kind": "dense",
        "shape": list(x.shape),
        "dtype": np.dtype(x.dtype).str,
        "chunks": list(zchunks),
        "shards": list(zshards) if zshards else None,
        "blocks": [list(c) for c in x.chunks],
        "zarr_format": zarr_format,
        "compressors": repr(compressors),
    }
    g, key = _prepare_group(loc, element, zarr_format)
    em = _element_manifest(manifest, element, plan)
    if em is not None and em.resumed and not _exists_like(g, key, {"": (x.shape, x.dtype)}):
        em = Manifest(manifest.location, resume=False).element("/" + element, plan)
    if em is None or not em.resumed:
        if key in g:
            g.delete(key)
        arr = g.create_array(
            key,
            shape=x.shape,
            dtype=x.dtype,
            chunks=zchunks,
            shards=zshards,
            compressors=compressors,
        )
        if attrs:
            arr.set_attrs(dict(attrs))
    done = em.done() if em is not None else frozenset()

    token = tokenize(loc.token, element, em.fingerprint if em else plan, x.name)
    target = ZarrTarget(loc, element, token)
    name = f"annscale-write-zarr-{token}"
    starts = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in x.chunks]
    blocks = x.to_delayed()
    tasks = []
    for idx in np.ndindex(*blocks.shape):
        task_id = "block-" + "-".join(map(str, idx))
        region = tuple((int(s[i]), int(s[i + 1])) for s, i in zip(starts, idx))
        if task_id in done or any(a == b for a, b in region):
            continue
        job = _DenseJob(target, region, em, task_id)
        tasks.append(dask.delayed(_write_dense_block)(blocks[idx], job, dask_key_name=(name, *idx)))
    return dask.delayed(_finish)(*tasks, dask_key_name=(name, "done"))
