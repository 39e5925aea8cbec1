"""Errors, exit codes, --debug/--quiet, and progress on and off a terminal."""

from __future__ import annotations

import io

import pytest
from cli_helpers import run_cli

from annscale.progress import LineProgress, TaskProgress


def test_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "missing.h5ad"
    plain = run_cli("validate", "--json", missing)  # reported as a problem of that store
    assert plain.returncode == 1
    res = run_cli("subset", missing, "-o", tmp_path / "o.h5ad", "--obs", "a == 1")
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("annscale subset: error: ")
    assert "missing.h5ad" in res.stderr
    debug = run_cli("subset", missing, "-o", tmp_path / "o.h5ad", "--obs", "a == 1", "--debug")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


@pytest.mark.parametrize("args", [
    ["info"],
    ["info", "x.h5ad", "--no-such-option"],
    ["info", "x.h5ad", "--storage-option", "novalue"],
    ["info", "x.h5ad", "--storage-option", "a={not json"],
    ["concat", "a.h5ad", "-o", "o.h5ad", "--merge", "sometimes"],
    ["subset", "a.h5ad", "-o", "o.h5ad", "--obs", "n >"],
])  # fmt: skip
def test_usage_errors_exit_2(tmp_path, args):
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "error" in res.stderr and "Traceback" not in res.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_line_progress_draws_a_bar_on_a_terminal():
    out = _Terminal()
    bar = LineProgress(4, "writing", unit="blocks", enabled=True, out=out)
    bar._start -= 5  # as if it had been running for a while
    for _ in range(4):
        bar.update()
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 5 and text.endswith("\n")
    assert "writing: 4/4 blocks (100%)" in text


def test_line_progress_logs_lines_elsewhere():
    out = io.StringIO()
    bar = LineProgress(None, "reading", unit="files", enabled=True, out=out, interval=0)
    bar.update(2)
    bar.update(1)
    bar.close()  # the last count was already logged: no duplicate line
    assert out.getvalue().splitlines() == [
        line for line in out.getvalue().splitlines() if line.startswith("annscale: reading: ")
    ]
    assert len(out.getvalue().splitlines()) == 2
    assert "\r" not in out.getvalue()

    quiet = io.StringIO()
    silent = LineProgress(3, "x", enabled=False, out=quiet, interval=0)
    silent.update(3)
    silent.close()
    assert quiet.getvalue() == ""


def test_task_progress_counts_local_dask_tasks():
    import dask.array as da

    out = io.StringIO()
    with TaskProgress("summing", enabled=True, out=out, interval=3600) as progress:
        da.ones((40, 40), chunks=10).sum().compute(scheduler="sync")
    assert progress.bar.done == progress.bar.total > 16
    assert out.getvalue() == ""  # shorter than one interval: nothing logged
