"""Run one side of one workload in this (fresh) process and write a JSON result.

Usage (by the harness): ``python -m benchmarks.runner SPEC.json``. The spec names the workload,
the side, dataset paths, parameters, a scratch folder and where to write the result.

Measured here, inside the process, so that imports before and digests after the work do not
count: wall time of the ``ctx.timed()`` block, and the peak resident set size during it. On
Linux the kernel's high-water mark of this process (``VmHWM`` in ``/proc/self/status``) is reset
when the block starts (``/proc/self/clear_refs``) and read when it ends: the peak therefore
includes everything resident when the block starts (interpreter, libraries, data loaded in the
setup) plus whatever the block adds, and excludes transient peaks of imports and setup.
(``getrusage(...).ru_maxrss`` is not used: Linux carries it over from the parent across
fork/exec, so a child of a large harness process would report the harness's size.) For workloads
that start processes (dask workers), a thread also polls the summed RSS of this process and all
its descendants every 10 ms while the block runs, and the peak is the larger of the two.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

POLL_INTERVAL_S = 0.01


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0); False where unsupported."""
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, b"5")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _peak_rss_bytes() -> int:
    """Peak RSS of this process since the last reset (bytes)."""
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    # not Linux: the peak of the whole process (macOS reports bytes, Linux kilobytes)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


class _TreePoller:
    """Peak of the summed RSS of this process and its descendants, sampled every 10 ms."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        """Summed RSS of this process and its descendants now (bytes)."""
        import psutil

        total = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(POLL_INTERVAL_S)

    def __enter__(self) -> _TreePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, self.sample())
        self._stop.set()
        self._thread.join()


class Context:
    """What a side function gets: data paths, parameters, a scratch folder and the timer."""

    def __init__(self, spec: dict) -> None:
        self.params: dict = spec["params"]
        self.data: dict = spec["data"]
        self.scratch = Path(spec["scratch"])
        self._poll_children: bool = spec.get("spawns_processes", False)
        self._profile_path: str | None = spec.get("profile_path")
        self.seconds: float | None = None
        self.rss_before: int | None = None
        self.peak_rss: int | None = None
        self.peak_reset = False

    # -- data ---------------------------------------------------------------------------------
    @property
    def matrix(self) -> str:
        return self.data["matrix"]

    @property
    def samples(self) -> list[str]:
        return self.data["samples"]

    @property
    def sample_keys(self) -> list[str]:
        return self.data["sample_keys"]

    @property
    def s3(self) -> dict:
        """``{"url", "storage_options"}`` of the large h5ad on the harness's S3 server."""
        s3 = self.data.get("s3") or {"error": "no S3 server was started"}
        if "error" in s3:
            raise RuntimeError(s3["error"])
        return s3

    def out(self, name: str) -> str:
        """A path in this run's scratch folder (deleted by the harness afterwards)."""
        return str(self.scratch / name)

    def random_rows(self, n: int | None = None) -> np.ndarray:
        """Sorted distinct random row positions (the same for every side)."""
        n = self.params["n_rows_subset"] if n is None else n
        rng = np.random.default_rng(self.params["selection_seed"])
        return np.sort(rng.choice(self.params["n_obs"], size=n, replace=False))

    def random_genes(self) -> np.ndarray:
        """Sorted distinct random column positions (the same for every side)."""
        rng = np.random.default_rng(self.params["selection_seed"] + 1)
        n = self.params["n_genes_subset"]
        return np.sort(rng.choice(self.params["n_vars"], size=n, replace=False))

    # -- measuring ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Measure the enclosed block: wall seconds and peak RSS up to its end (bytes)."""
        import psutil

        if self.seconds is not None:
            raise RuntimeError("ctx.timed() may be entered only once per run")
        poller = _TreePoller() if self._poll_children else None
        # the baseline: what is resident after imports and setup (with children: all of them)
        self.rss_before = poller.sample() if poller else psutil.Process().memory_info().rss
        self.peak_reset = _reset_peak()
        with poller or contextlib.nullcontext(), self._profiler():
            t0 = time.perf_counter()
            yield
            self.seconds = time.perf_counter() - t0
            self.peak_rss = max(_peak_rss_bytes(), getattr(poller, "peak", 0))

    @contextlib.contextmanager
    def _profiler(self) -> Iterator[None]:
        """With ``profile_path`` in the spec: a pyinstrument profile of the measured block.

        pyinstrument samples the main thread only, so the block runs on dask's synchronous
        scheduler (and annscale's ``settings.scheduler = "synchronous"``): the work of what
        would be worker threads then shows in the call tree. The tree (wall time) is written
        as text to ``profile_path``; a profiled run's timings are not used by the harness.
        """
        if not self._profile_path:
            yield
            return
        import dask
        from pyinstrument import Profiler

        with contextlib.ExitStack() as stack:
            stack.enter_context(dask.config.set(scheduler="synchronous"))
            if "annscale" in sys.modules:
                settings = sys.modules["annscale"].settings
                stack.enter_context(settings.override(scheduler="synchronous"))
            profiler = Profiler(interval=0.001, async_mode="disabled")
            profiler.start()
            try:
                yield
            finally:
                profiler.stop()
                text = profiler.output_text(unicode=False, color=False, show_all=False)
                Path(self._profile_path).write_text(text)


def _preload(library: str) -> None:
    """Import the library before timing, so import time is not part of any workload."""
    if library == "anndata":
        import anndata
        import anndata.experimental  # noqa: F401

        return
    import annscale

    # annscale imports public names on first use; touch them all now. A name whose module does
    # not exist yet fails again, with its real error, when a workload uses it.
    for name in annscale.__all__:
        with contextlib.suppress(Exception):
            getattr(annscale, name)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def run(spec: dict) -> dict:
    from .workloads import load

    wl = load()[spec["workload"]]
    side = spec["side"]
    library = "anndata" if side == "anndata" else "annscale"
    t_start = time.perf_counter()
    ctx = Context(spec)
    result: dict[str, Any] = {"workload": wl.name, "side": side, "pid": os.getpid()}
    try:
        if wl.kind != "check":  # measurement checks use neither library
            _preload(library)
        digest = wl.functions[side](ctx)
        if ctx.seconds is None:
            raise RuntimeError(f"{wl.name}/{side} never entered ctx.timed()")
        result.update(ok=True, digest=digest)
    except BaseException as exc:  # report every failure (ImportError, NotImplementedError, ...)
        result.update(ok=False, error=_one_line(exc), traceback=traceback.format_exc())
    result.update(
        seconds=ctx.seconds,
        rss_before=ctx.rss_before,
        peak_rss=ctx.peak_rss,
        peak_reset=ctx.peak_reset,
        process_seconds=time.perf_counter() - t_start,
    )
    return result


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    result = run(spec)
    tmp = Path(spec["result_path"] + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, spec["result_path"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
