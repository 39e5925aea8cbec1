"""Run workloads in fresh subprocesses, alternating sides, and collect comparable results.

For each workload: one warm-up run per side (discarded; it also warms the page cache), then
``repeat`` timed rounds, each running side A then side B in new processes. A side that fails in
its warm-up is reported as failing and not run again. Results count only when every run of both
sides returned the same digest (see :mod:`benchmarks.digest`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import digest
from .datasets import cache_dir
from .workloads import Workload

REPO_ROOT = Path(__file__).resolve().parent.parent


def _tail(path: Path, n: int = 400) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][-n:] if lines else ""


def run_once(
    wl: Workload,
    side: str,
    data: dict,
    params: dict,
    timeout_s: float,
    tag: str,
    profile_path: Path | None = None,
) -> dict[str, Any]:
    """Run one side of one workload in a new process; return the runner's result.

    Adds the process's whole wall time and exit code. A process that runs longer than
    ``timeout_s`` is killed with its process group and reported as failed. With
    ``profile_path``, the measured block runs under pyinstrument and its call tree is written
    there (such a run's timing is slower and must not be compared).
    """
    # the harness's pid: two benchmark runs at the same time never share a scratch folder
    scratch = cache_dir() / "scratch" / f"{wl.name}-{side}-{tag}-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    spec = {
        "workload": wl.name,
        "side": side,
        "data": data,
        "params": params,
        "scratch": str(scratch / "work"),
        "result_path": str(scratch / "result.json"),
        "spawns_processes": wl.spawns_processes,
        "profile_path": str(profile_path) if profile_path else None,
    }
    (scratch / "work").mkdir()
    spec_path = scratch / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    log_path = scratch / "output.log"
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.runner", str(spec_path)],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills workers too
            )
            t0 = time.perf_counter()
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except BaseException:  # Ctrl-C: leave no benchmark process behind
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            wall = time.perf_counter() - t0
        result_path = Path(spec["result_path"])
        if timed_out:
            result = {"ok": False, "error": f"timeout after {timeout_s:.0f} s"}
        elif result_path.exists():
            result = json.loads(result_path.read_text())
        else:
            reason = _tail(log_path) or "no output"
            result = {"ok": False, "error": f"exit code {proc.returncode}: {reason}"}
        result["process_wall_s"] = wall
        result["exit_code"] = proc.returncode
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _summary(runs: list[dict]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(r["seconds"] for r in runs),
        "median_peak_rss": statistics.median(r["peak_rss"] for r in runs),
        "median_rss_before": statistics.median(r["rss_before"] for r in runs),
        # what the measured block added on top of the baseline (imports, setup data)
        "median_peak_added": statistics.median(r["peak_rss"] - r["rss_before"] for r in runs),
        "min_s": min(r["seconds"] for r in runs),
        "max_s": max(r["seconds"] for r in runs),
    }


def _strip(run: dict) -> dict:
    """A run as stored in the JSON report (no digest copy per run, short traceback)."""
    out = {k: v for k, v in run.items() if k not in ("digest", "traceback")}
    if "traceback" in run and not run.get("ok"):
        out["traceback"] = run["traceback"][-3000:]
    return out


def run_workload(
    wl: Workload,
    data: dict,
    params: dict,
    repeat: int,
    timeout_s: float,
    log: Callable[[str], None] = print,
    warmup: bool = True,
    slow_s: float | None = None,
) -> dict[str, Any]:
    """Warm up and run both sides of ``wl`` ``repeat`` times each, alternating; compare digests.

    ``warmup=False`` skips the discarded first run of each side (only for tests: timings are
    then not comparable, a cold page cache favours the second side). A side whose warm-up
    process took at least ``slow_s`` seconds is not run again: its warm-up is its one timed
    run (this keeps a full run within its time budget).
    """
    sides = wl.sides
    status: dict[str, dict[str, Any]] = {s: {"runs": [], "error": None} for s in sides}
    digests: dict[str, list] = {s: [] for s in sides}

    def one(side: str, tag: str, timed: bool) -> None:
        run = run_once(wl, side, data, params, timeout_s, tag)
        if not run.get("ok"):
            status[side]["error"] = run.get("error") or "failed"
            status[side]["failed_run"] = _strip(run)
            log(f"    {side:>10} {tag:>7}: fails: {status[side]['error']}")
            return
        log(
            f"    {side:>10} {tag:>7}: {run['seconds']:.3f} s, "
            f"peak {run['peak_rss'] / 2**20:.0f} MiB "
            f"(+{(run['peak_rss'] - run['rss_before']) / 2**20:.0f} over the baseline)"
        )
        digests[side].append(run["digest"])
        status[side]["last_run"] = run
        if timed:
            status[side]["runs"].append(_strip(run))

    for side in sides if warmup else ():
        one(side, "warmup", timed=False)
        if slow_s is not None and status[side]["error"] is None:
            warm = status[side]["last_run"]
            if warm["process_wall_s"] >= slow_s:
                # a run this long is not helped by a warm page cache: it is the timed run
                status[side]["runs"].append(_strip(warm) | {"warmup_counted": True})
                status[side]["done"] = True
                log(f"    {side:>10}  warmup: slow (>= {slow_s:.0f} s): counted, not repeated")
    for i in range(repeat):
        for side in sides:
            if status[side]["error"] is None and not status[side].get("done"):
                one(side, f"run{i + 1}", timed=True)

    result: dict[str, Any] = {
        "name": wl.name,
        "description": wl.description,
        "note": wl.note,
        "kind": wl.kind,
        "sides": list(sides),
        "results": {},
        "equal": None,
        "differences": [],
    }
    for side in sides:
        entry = {"error": status[side]["error"], "runs": status[side]["runs"]}
        if status[side]["error"] is not None:
            entry["failed_run"] = status[side].get("failed_run")
        elif entry["runs"]:
            entry.update(_summary(entry["runs"]))
        result["results"][side] = entry

    # equality: every run of a side agrees with its first run, and the sides agree
    diffs: list[str] = []
    for side in sides:
        for other in digests[side][1:]:
            diffs += [
                f"{side} not deterministic: {d}"
                for d in digest.differences(digests[side][0], other)
            ]
    ok_sides = [s for s in sides if status[s]["error"] is None and digests[s]]
    if len(ok_sides) == 2:
        a, b = (digests[s][0] for s in sides)
        diffs += digest.differences(a, b)
        result["equal"] = not diffs
        result["differences"] = diffs[:20]
        if not diffs:
            ra, rb = (result["results"][s] for s in sides)
            result["time_ratio"] = rb["median_s"] / ra["median_s"] if ra["median_s"] else None
            result["mem_ratio"] = rb["median_peak_rss"] / ra["median_peak_rss"]
        else:
            log(f"    MISMATCH: {'; '.join(diffs[:3])}")
    result["digest"] = next((digests[s][0] for s in sides if digests[s]), None)
    return result


def profile_side(
    wl: Workload,
    side: str,
    data: dict,
    params: dict,
    timeout_s: float,
    path: Path,
    log: Callable[[str], None] = print,
) -> str | None:
    """Run ``side`` of ``wl`` once more under pyinstrument; write the call tree to ``path``.

    Returns the path written, or None when the side failed (the reason is logged).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    run = run_once(wl, side, data, params, timeout_s, "profile", profile_path=path)
    if not run.get("ok") or not path.exists():
        log(f"    {side:>10} profile: fails: {run.get('error') or 'no profile written'}")
        return None
    log(f"    {side:>10} profile: {run['seconds']:.3f} s (profiled), call tree in {path}")
    return str(path)
