"""Running annscale graphs (reads, reductions, writes) on the active scheduler.

``annscale.settings.scheduler`` picks it: ``None`` means dask's active scheduler (the
threaded one by default, a :class:`distributed.Client` when one is the default client);
``"threads"``, ``"processes"`` or ``"synchronous"`` force a local one; an address such as
``"tcp://host:8786"`` connects a client to that scheduler (one per process, reused).

:func:`compute` runs whole graphs (zarr writes). :func:`ordered_results` computes blocks
with bounded lookahead and yields them in order to one consumer (the HDF5 writer).
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask

from ._settings import settings
from .progress import local_progress, wait_with_progress

__all__ = [
    "compute",
    "compute_one",
    "active_client",
    "default_scheduler",
    "close_clients",
    "local_scheduler",
    "ordered_results",
]

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _is_address(name: str) -> bool:
    return "://" in name


def active_client() -> Any | None:
    """The :class:`distributed.Client` annscale computes on, or None for a local scheduler."""
    name = settings.scheduler
    if name is not None:
        if not _is_address(name):
            return None
        with _clients_lock:
            client = _clients.get(name)
            if client is None or client.status not in ("running", "connecting"):
                from distributed import Client

                client = _clients[name] = Client(name, set_as_default=False)
            return client
    if "distributed" not in sys.modules and not dask.config.get("scheduler", None):
        # no client can exist before distributed is imported; asking dask would import it
        # (about half a second on the first compute of a process)
        return None
    # dask's own choice: a default distributed client wins unless dask.config names another
    get = dask.base.get_scheduler()
    owner = getattr(get, "__self__", None)
    if owner is not None and type(owner).__name__ == "Client":
        return owner
    return None


def close_clients() -> None:
    """Close the clients this process opened for ``settings.scheduler`` addresses."""
    with _clients_lock:
        while _clients:
            _, client = _clients.popitem()
            client.close()


def local_scheduler() -> str | None:
    """The local scheduler name to pass to dask (None: dask's default)."""
    name = settings.scheduler
    return None if name is None or _is_address(name) else name


def _local_get(name: str | None) -> Any:
    """The scheduler to pass to ``dask.compute`` when no client runs annscale's graphs.

    Named local schedulers are passed as their ``get`` functions, and dask's default (the
    threaded scheduler for arrays) is too when neither dask.config nor an imported
    distributed can change it: given a name or nothing, dask imports distributed to look for
    a client (about half a second on the first compute of a process).
    """
    if name is None:
        if "distributed" in sys.modules or dask.config.get("scheduler", None):
            return None  # dask's own choice
        name = "threads"
    key = name.lower()
    if key in ("threads", "threading"):
        from dask.threaded import get as threaded_get

        return threaded_get
    if key in ("sync", "synchronous", "single-threaded"):
        from dask.local import get_sync

        return get_sync
    if key in ("processes", "multiprocessing"):
        from dask.multiprocessing import get as processes_get

        return processes_get
    return name


def default_scheduler() -> Any:
    """What to pass as ``scheduler=`` to ``dask.compute`` to run on annscale's scheduler:
    the active client, a local scheduler's ``get`` function, or None (dask's own choice)."""
    client = active_client()
    if client is not None:
        return client
    return _local_get(local_scheduler())


def compute(*graphs: Any, progress: bool | None = None) -> tuple[Any, ...]:
    """Compute dask collections on annscale's scheduler; returns their results.

    Shows a progress bar when ``settings.progress`` (or ``progress``) is true and the
    computation lasts more than about a second.
    """
    if not graphs:
        return ()
    client = active_client()
    if client is not None:
        futures = client.compute(list(graphs))
        try:
            # distributed.wait/progress use the current client: make it this one (an
            # address in settings.scheduler gets a client that is not the default)
            with client.as_current():
                wait_with_progress(futures, progress)
            return tuple(client.gather(futures))
        finally:
            for f in futures:
                f.release()
    with local_progress(progress):
        return dask.compute(*graphs, scheduler=_local_get(local_scheduler()))


def compute_one(graph: Any) -> Any:
    """Compute one dask collection on annscale's scheduler (no progress bar)."""
    return compute(graph, progress=False)[0]


def ordered_results(blocks: Sequence[Any], lookahead: int) -> Iterator[tuple[int, Any]]:
    """Compute dask ``blocks`` in parallel, yielding ``(i, value)`` in order.

    At most ``lookahead`` blocks are being computed or waiting to be consumed at any time
    (the one just yielded included), so memory held is bounded by ``lookahead`` blocks
    whatever ``len(blocks)`` is. Locally each block runs synchronously on one of
    ``lookahead`` threads (or on the process pool with ``scheduler="processes"``); with a
    distributed client each block is a future released once consumed.

    Blocks are computed independently, so work shared by several blocks (e.g. an input
    chunk split between two output blocks by a rechunk) is done once per block.
    """
    if lookahead < 1:
        raise ValueError(f"lookahead must be at least 1, got {lookahead}")
    n = len(blocks)
    client = active_client()
    if client is not None:
        submit = client.compute

        def take(f):
            try:
                return f.result()
            finally:
                f.release()

        yield from _window(blocks, lookahead, submit, take, cancel=lambda f: f.cancel())
        return
    sched = local_scheduler()
    if sched in ("synchronous", "sync", "single-threaded") or lookahead == 1 or n <= 1:
        for i, blk in enumerate(blocks):
            (value,) = dask.compute(blk, scheduler=_local_get(sched or "sync"))
            yield i, value
            del value
        return
    inner = "processes" if sched == "processes" else "sync"
    with ThreadPoolExecutor(max_workers=lookahead, thread_name_prefix="annscale-h5") as pool:
        yield from _window(
            blocks,
            lookahead,
            lambda b: pool.submit(_compute_one, b, inner),
            lambda f: f.result()[0],
            cancel=lambda f: f.cancel(),
        )


def _compute_one(block: Any, scheduler: str) -> tuple[Any]:
    return dask.compute(block, scheduler=_local_get(scheduler))


def _window(blocks, lookahead, submit, take, cancel=None) -> Iterator[tuple[int, Any]]:
    """Keep ``lookahead`` submitted; only the queue references futures (and so results)."""
    queue: deque[Any] = deque()
    nxt = 0
    n = len(blocks)
    try:
        while nxt < n and len(queue) < lookahead:
            queue.append(submit(blocks[nxt]))
            nxt += 1
        i = 0
        while queue:
            value = take(queue.popleft())
            yield i, value
            del value  # the consumer is done with it: only then start the next block
            i += 1
            if nxt < n:
                queue.append(submit(blocks[nxt]))
                nxt += 1
    finally:  # stopped early (error in the consumer): drop what is still queued
        for f in queue:
            if cancel is not None:
                cancel(f)
        queue.clear()
