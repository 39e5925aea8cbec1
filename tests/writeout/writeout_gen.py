"""Deterministic dask arrays for the write-out tests, built block by block from a seed.

Blocks are generated inside their tasks (never from one big in-memory array), so memory
measured while writing shows what the writer holds, and the arrays pickle to remote
workers. Also run as a script by the kill/resume test (see ``main``).
"""

from __future__ import annotations

import sys
import time

import dask.array as da
import numpy as np
import scipy.sparse as sp

FAILURES: dict[str, int] = {}


def _sparse_block(n_minor, density, seed, dtype, fmt, sleep, fail_block, empty, block_info=None):
    info = block_info[None]
    major = 0 if fmt == "csr" else 1
    a, b = info["array-location"][major]
    index = info["chunk-location"][major]
    if fail_block is not None and index == fail_block:
        raise RuntimeError(f"block {index} failed on purpose")
    if sleep:
        time.sleep(sleep)
    rng = np.random.default_rng([seed, a])
    n = b - a
    counts = np.zeros(n, dtype=np.int64) if index in empty else rng.binomial(n_minor, density, n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    for i in range(n):
        if counts[i]:
            row = rng.choice(n_minor, size=int(counts[i]), replace=False)
            row.sort()
            indices[indptr[i] : indptr[i + 1]] = row
    data = _uniform(rng, len(indices), dtype, 10, 1)
    m = sp.csr_matrix((data, indices, indptr), shape=(n, n_minor))
    return m if fmt == "csr" else m.T.tocsc()


def sparse_dask(
    shape: tuple[int, int],
    block: int | tuple[int, ...],
    *,
    fmt: str = "csr",
    density: float = 0.1,
    seed: int = 0,
    dtype=np.float32,
    sleep: float = 0.0,
    fail_block: int | None = None,
    empty: tuple[int, ...] = (),
) -> da.Array:
    """A sparse dask array cut in ``block`` major-axis slices (rows for CSR, columns for CSC)."""
    major = 0 if fmt == "csr" else 1
    n_major, n_minor = shape[major], shape[1 - major]
    if isinstance(block, int):
        blocks = tuple(min(block, n_major - s) for s in range(0, n_major, block)) or (0,)
    else:
        blocks = tuple(block)
    chunks = (blocks, (n_minor,)) if major == 0 else ((n_minor,), blocks)
    cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    return da.map_blocks(
        _sparse_block,
        n_minor,
        density,
        seed,
        np.dtype(dtype),
        fmt,
        sleep,
        fail_block,
        tuple(empty),
        chunks=chunks,
        dtype=dtype,
        meta=cls((0, 0), dtype=dtype),
    )


def _dense_block(seed, dtype, fail_block, block_info=None):
    info = block_info[None]
    if fail_block is not None and tuple(info["chunk-location"]) == tuple(fail_block):
        raise RuntimeError(f"block {fail_block} failed on purpose")
    loc = info["array-location"]
    rng = np.random.default_rng([seed, *(a for a, _ in loc)])
    return _uniform(rng, tuple(b - a for a, b in loc), dtype, 100)


def _uniform(rng, shape, dtype, scale, shift=0):
    """Random values made in place, without float64 temporaries for float32 arrays."""
    floating = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float64)
    out = rng.random(shape, dtype=floating)
    out *= scale
    out += shift
    return out.astype(dtype, copy=False)


def dense_dask(shape, chunks, *, seed: int = 0, dtype=np.float32, fail_block=None) -> da.Array:
    """A dense dask array whose blocks are generated from ``seed`` and their position."""
    tmpl = da.empty(shape, chunks=chunks, dtype=dtype)
    return da.map_blocks(
        _dense_block,
        seed,
        np.dtype(dtype),
        fail_block,
        chunks=tmpl.chunks,
        dtype=dtype,
        meta=np.empty((0,) * len(shape), dtype=dtype),
    )


def kill_me_array(sleep: float = 0.0) -> da.Array:
    """The array the kill/resume test writes (slowly in the subprocess)."""
    return sparse_dask((120, 40), 10, density=0.2, seed=7, sleep=sleep)


def main(store: str) -> None:
    """Write ``kill_me_array`` slowly to ``store`` (run as a subprocess, then killed)."""
    from annscale import settings
    from annscale.writeout import Manifest, write_dask_zarr
    from annscale.writeout.zarr import block_nnz

    settings.progress = False
    settings.scheduler = "synchronous"
    nnz = block_nnz(kill_me_array(), "csr")
    write_dask_zarr(
        store,
        "/",
        "X",
        kill_me_array(sleep=0.4),
        zarr_format=3,
        chunks=16,
        manifest=Manifest.in_staging(store),
        nnz=nnz,
    )
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
