"""Progress bars for long writes, shown only when a write takes more than about a second.

* local schedulers: :class:`dask.diagnostics.ProgressBar` with a one-second threshold;
* a distributed client: :func:`distributed.progress` on the futures, once they have run
  for a second without finishing;
* the single-writer HDF5 loop: :class:`BlockProgress`, a text bar counting blocks written;
* command-line jobs: :class:`LineProgress` (a bar on a terminal, a log line every
  :data:`LOG_INTERVAL_SECONDS` elsewhere) and :class:`TaskProgress` (counts the tasks of
  local dask computations with it).

``annscale.settings.progress = False`` turns all of them off.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TextIO

from ._settings import settings

__all__ = [
    "MINIMUM_SECONDS",
    "local_progress",
    "wait_with_progress",
    "BlockProgress",
    "LOG_INTERVAL_SECONDS",
    "LineProgress",
    "TaskProgress",
    "is_terminal",
    "line_progress",
]

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


# --------------------------------------------------------------------------- line progress
# Progress for command-line jobs: a bar redrawn in place on a terminal, or, when the stream
# is not a terminal (a log file, a workflow manager capturing stderr), one log line every
# ``interval`` seconds so logs stay readable and small.

LOG_INTERVAL_SECONDS = 10.0
"""Seconds between progress log lines when the stream is not a terminal."""


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (progress bars) or not (log lines)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class LineProgress:
    """Progress over ``total`` units (None: unknown) shown as a bar or as periodic log lines.

    On a terminal: a bar redrawn in place once ``MINIMUM_SECONDS`` have passed. Elsewhere:
    a line ``annscale: <label>: <done>/<total> <unit> (<pct>), <elapsed>s`` every
    ``interval`` seconds, and a final line on :meth:`close` if any line was written.
    ``total`` may grow while running (:meth:`add_total`).
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        *,
        unit: str = "",
        enabled: bool | None = None,
        out: TextIO | None = None,
        interval: float | None = None,
        width: int = 30,
    ):
        self.total = total
        self.label = label
        self.unit = unit
        self.enabled = settings.progress if enabled is None else enabled
        self.out = out if out is not None else sys.stderr
        self.terminal = is_terminal(self.out)
        self.interval = LOG_INTERVAL_SECONDS if interval is None else interval
        self.width = width
        self.done = 0
        self._start = time.monotonic()
        self._last = self._start
        self._shown = False
        self._logged = -1
        self._lock = threading.Lock()

    def add_total(self, n: int) -> None:
        self.total = (self.total or 0) + n

    def update(self, n: int = 1) -> None:
        with self._lock:  # dask callbacks run in the scheduler's threads
            self.done += n
            if not self.enabled:
                return
            now = time.monotonic()
            if self.terminal:
                if now - self._start >= MINIMUM_SECONDS or self._shown:
                    self._draw(now)
            elif now - self._last >= self.interval:
                self._log(now)

    def _counts(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if not self.total:
            return f"{self.done}{unit}"
        return f"{self.done}/{self.total}{unit} ({min(self.done / self.total, 1):.0%})"

    def _draw(self, now: float) -> None:
        frac = min(self.done / self.total, 1.0) if self.total else 0.0
        bar = "#" * round(frac * self.width)
        self.out.write(
            f"\r[{bar:<{self.width}}] {self.label}: {self._counts()} {now - self._start:.1f}s"
        )
        self.out.flush()
        self._shown = True

    def _log(self, now: float) -> None:
        self.out.write(f"annscale: {self.label}: {self._counts()}, {now - self._start:.1f}s\n")
        self.out.flush()
        self._last = now
        self._logged = self.done
        self._shown = True

    def close(self) -> None:
        if not (self.enabled and self._shown):
            return
        if self.terminal:
            self._draw(time.monotonic())
            self.out.write("\n")
            self.out.flush()
        elif self._logged != self.done:
            self._log(time.monotonic())


@contextmanager
def line_progress(total: int | None, label: str, **kwargs: Any) -> Iterator[LineProgress]:
    """A :class:`LineProgress`, closed (final line written) on exit."""
    bar = LineProgress(total, label, **kwargs)
    try:
        yield bar
    finally:
        bar.close()


class TaskProgress:
    """Counts the tasks of every local dask computation run inside ``with TaskProgress(...)``.

    Writers compute strip after strip (one ``dask.compute`` each), so the total number of
    tasks grows as the job goes; the progress shows tasks finished out of tasks started.
    Local schedulers only: a distributed client runs tasks elsewhere (see
    :func:`wait_with_progress`).
    """

    def __init__(self, label: str = "computing", **kwargs: Any):
        from dask.callbacks import Callback

        self.bar = LineProgress(None, label, unit="tasks", **kwargs)
        bar = self.bar

        class _Counter(Callback):
            def _start_state(self, dsk: Any, state: Any) -> None:
                bar.add_total(len(state["ready"]) + len(state["waiting"]) + len(state["finished"]))

            def _posttask(self, *args: Any) -> None:
                bar.update(1)

        self._callback = _Counter()

    def __enter__(self) -> TaskProgress:
        self._callback.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._callback.__exit__(*exc)
        self.bar.close()
