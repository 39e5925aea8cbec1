"""Checks of the measurement itself: blocks that allocate a known amount of memory.

Not part of the default run (``hidden``); run them with ``python -m benchmarks --only
rss_sanity,rss_sanity_children``. Each side touches a known number of bytes and frees them
again before the measured block ends, so the reported peak must exceed the RSS at the start of
the block by about that amount (the final RSS would not show it). The allocation runs in a
worker thread, as dask's threaded scheduler would, and in the second workload in child
processes, as distributed workers would.
"""

from __future__ import annotations

import threading

from . import workload

MiB = 2**20
HOLD_S = 0.3  # long enough for the 10 ms RSS poller to see child processes

sanity = workload(
    "rss_sanity",
    "Measurement check: a thread touches 256 MiB (side 1) or 512 MiB (side 2), then frees it.",
    needs=(),
    sides=("alloc_256MiB", "alloc_512MiB"),
    kind="check",
    hidden=True,
)
sanity_children = workload(
    "rss_sanity_children",
    "Measurement check: 1 or 2 child processes each touch 256 MiB while the block runs.",
    needs=(),
    sides=("1_child_256MiB", "2_children_256MiB"),
    kind="check",
    hidden=True,
    spawns_processes=True,
)


def touch(n_bytes: int) -> None:
    """Allocate ``n_bytes`` and write every page, so all of it becomes resident; free it."""
    import numpy as np

    buf = np.ones(n_bytes, dtype=np.uint8)
    del buf


def _in_thread(n_bytes: int) -> None:
    t = threading.Thread(target=touch, args=(n_bytes,))
    t.start()
    t.join()


def _child(ready, go, n_bytes: int) -> None:
    import time

    import numpy as np

    ready.wait()
    go.wait()
    buf = np.ones(n_bytes, dtype=np.uint8)
    time.sleep(HOLD_S)  # stay resident for many samples of the poller
    del buf


@sanity.side("alloc_256MiB")
def _(ctx):
    with ctx.timed():
        _in_thread(256 * MiB)
    return {"done": True}


@sanity.side("alloc_512MiB")
def _(ctx):
    with ctx.timed():
        _in_thread(512 * MiB)
    return {"done": True}


def _children_side(ctx, n_children: int) -> dict:
    import multiprocessing as mp

    mp_ctx = mp.get_context("spawn")
    ready, go = mp_ctx.Barrier(n_children + 1), mp_ctx.Barrier(n_children + 1)
    procs = [mp_ctx.Process(target=_child, args=(ready, go, 256 * MiB)) for _ in range(n_children)]
    for p in procs:
        p.start()
    ready.wait()  # children started and imported, as a cluster is before the measured block
    with ctx.timed():
        go.wait()
        for p in procs:
            p.join()
    if any(p.exitcode != 0 for p in procs):
        raise RuntimeError("a child process failed")
    return {"done": True}


@sanity_children.side("1_child_256MiB")
def _(ctx):
    return _children_side(ctx, 1)


@sanity_children.side("2_children_256MiB")
def _(ctx):
    return _children_side(ctx, 2)
