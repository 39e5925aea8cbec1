"""Background prefetch of fetch groups, with a bounded buffer.

While the training loop consumes the minibatches of one fetch group, the next ``prefetch``
groups are read on background threads (each group computed with dask's synchronous
scheduler on its own thread; on a ``dask.distributed`` cluster when annscale computes there,
see :func:`annscale.scheduler.ordered_results`). Groups are delivered in plan order, so the
minibatches do not depend on timing.

Memory bound: at most ``prefetch + 1`` fetch groups are in memory at once — the one being
cut into minibatches plus ``prefetch`` being read or waiting — that is at most
``(prefetch + 1) * fetch_blocks`` blocks, plus fewer than ``batch_size`` rows carried from
one group into the next minibatch. A new group is started only once the consumer has let
go of an older one. ``prefetch=0`` reads each group in the consuming thread when needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..scheduler import ordered_results

__all__ = ["LazyTasks", "prefetched"]


class LazyTasks(Sequence):
    """``n`` tasks built on demand by ``build(i)`` (so an epoch's graphs are not all built
    up front, only as the buffer advances)."""

    def __init__(self, n: int, build: Callable[[int], Any]):
        self._n = n
        self._build = build

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._build(i)


def prefetched(tasks: Sequence[Any], prefetch: int) -> Iterator[Any]:
    """Compute the dask ``tasks`` in order, reading up to ``prefetch`` ahead of the consumer.

    Yields each task's value; holds at most ``prefetch + 1`` values (see module docstring).
    """
    if prefetch < 0:
        raise ValueError(f"prefetch must be >= 0 fetch groups, got {prefetch}")
    for _, value in ordered_results(tasks, lookahead=prefetch + 1):
        yield value
        del value  # let go before the next group is started (the bound above)
