"""Progress bars for long writes, shown only when a write takes more than about a second.

* local schedulers: :class:`dask.diagnostics.ProgressBar` with a one-second threshold;
* a distributed client: :func:`distributed.progress` on the futures, once they have run
  for a second without finishing;
* the single-writer HDF5 loop: :class:`BlockProgress`, a text bar counting blocks written.

``annscale.settings.progress = False`` turns all of them off.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TextIO

from ._settings import settings

__all__ = ["MINIMUM_SECONDS", "local_progress", "wait_with_progress", "BlockProgress"]

MINIMUM_SECONDS = 1.0
"""Writes shorter than this show no progress bar."""


def local_progress(enabled: bool | None = None):
    """A context manager showing dask's progress bar for local computations (or nothing)."""
    if not (settings.progress if enabled is None else enabled):
        return nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=MINIMUM_SECONDS)


def wait_with_progress(futures: Sequence[Any], enabled: bool | None = None) -> None:
    """Wait for distributed ``futures``; show distributed's text bar if it takes > 1 s."""
    import distributed

    if not futures:
        return
    try:
        distributed.wait(futures, timeout=MINIMUM_SECONDS)
        return
    except (TimeoutError, distributed.TimeoutError):
        pass
    if settings.progress if enabled is None else enabled:
        distributed.progress(futures, notebook=False, multi=False)
    distributed.wait(futures)


class BlockProgress:
    """A text progress bar over ``total`` blocks, printed once ``MINIMUM_SECONDS`` have passed."""

    def __init__(
        self,
        total: int,
        label: str = "writing",
        *,
        enabled: bool | None = None,
        out: TextIO | None = None,
        width: int = 40,
    ):
        self.total = max(int(total), 1)
        self.label = label
        self.enabled = settings.progress if enabled is None else enabled
        self.out = out or sys.stdout
        self.width = width
        self.done = 0
        self._start = time.monotonic()
        self._shown = False

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        elapsed = time.monotonic() - self._start
        if elapsed < MINIMUM_SECONDS and not self._shown:
            return
        self._shown = True
        frac = self.done / self.total
        bar = "#" * round(frac * self.width)
        self.out.write(f"\r[{bar:<{self.width}}] | {frac:4.0%} {self.label} | {elapsed:.1f}s")
        self.out.flush()

    def close(self) -> None:
        if self._shown:
            self.out.write("\n")
            self.out.flush()


@contextmanager
def block_progress(total: int, label: str = "writing") -> Iterator[BlockProgress]:
    bar = BlockProgress(total, label)
    try:
        yield bar
    finally:
        bar.close()
