"""Run by the public write-out tests in a subprocess: write a lazy object, or measure memory.

``python public_writer.py write <zarr|h5ad> <source> <target> [resume]``
    Opens ``source`` lazily (10-row chunks), slows every block of ``X`` down by
    ``$ANNSCALE_TEST_SLEEP`` seconds and writes the object to ``target`` with the public API
    (killed midway by the test).

``python public_writer.py memory <zarr|h5ad> <source> <target>``
    Writes ``source`` (opened lazily) to ``target`` and prints the peak of memory traced by
    ``tracemalloc`` while writing, in bytes (after a warm-up write of 10 rows, so that
    imports and opened handles are not counted).
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc


def slow(block):
    """Identity, sleeping ``$ANNSCALE_TEST_SLEEP`` seconds (read at run time, so the graph
    and its fingerprint do not depend on it)."""
    time.sleep(float(os.environ.get("ANNSCALE_TEST_SLEEP", "0")))
    return block


def open_slow(source: str):
    """``source`` opened lazily in 10-row chunks, with every block of X slowed down."""
    import annscale

    adata = annscale.read_lazy(source, chunks=10)
    x = adata.X
    adata.X = x.map_blocks(slow, dtype=x.dtype, meta=x._meta)
    return adata


def write(kind: str, adata, target: str, **kw) -> None:
    if kind == "zarr":
        adata.write_zarr(target, **kw)
    else:
        adata.write_h5ad(target, **kw)


def main(argv: list[str]) -> None:
    import annscale

    annscale.settings.progress = False
    mode, kind, source, target = argv[:4]
    if mode == "write":
        kw = {"resume": True} if argv[4:] == ["resume"] else {}
        write(kind, open_slow(source), target, **kw)
        print("finished", flush=True)
        return
    adata = annscale.read_lazy(source)
    # warm up (imports, opened handles) on a small subset, so only the write is measured
    write(kind, adata[:10], target + ".warmup")
    # zarr: chunks of data/indices much smaller than X (the default, 2**20 values, is
    # about all of this small test matrix; a merge task holds one chunk)
    kw = {"chunks": 2**14} if kind == "zarr" else {}
    tracemalloc.start()
    write(kind, adata, target, **kw)
    _, peak = tracemalloc.get_traced_memory()
    print(peak, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
