"""Smoke test of benchmarks/: one workload end to end at toy size, and the memory measurement.

The only test that imports ``benchmarks``. It runs each side in fresh processes exactly as
``python -m benchmarks`` does, with data and scratch folders in a temporary directory.
Timings are never asserted (see DEVELOPERS.md); the results' equality and the measured memory
of a block that allocates a known amount are.
"""

from __future__ import annotations

import pytest

from benchmarks import datasets, harness, report
from benchmarks.__main__ import prepare_data
from benchmarks.profiles import TOY
from benchmarks.workloads import load

MiB = 2**20


@pytest.fixture
def bench_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path))
    return tmp_path


def _run(name: str, data: dict) -> dict:
    wl = load()[name]
    return harness.run_workload(
        wl, data, TOY.params(), repeat=1, timeout_s=60, log=lambda _: None, warmup=False
    )


def test_open_lazy_toy_sides_agree(bench_cache):
    data = prepare_data(TOY, {"matrix"}, log=lambda _: None)
    row = _run("open_lazy", data)
    for side in row["sides"]:
        assert row["results"][side]["error"] is None, row["results"][side]
    assert row["equal"] is True, row["differences"]
    assert row["time_ratio"] > 0
    assert row["mem_ratio"] > 0
    table = report.compare_table([row])
    assert "| open_lazy |" in table
    assert "fails" not in table


def test_peak_rss_counts_what_the_block_allocates(bench_cache):
    row = _run("rss_sanity", {})
    added = {side: row["results"][side]["median_peak_added"] for side in row["sides"]}
    # the block touches 256 / 512 MiB in a thread and frees it before it ends
    assert 250 * MiB <= added["alloc_256MiB"] <= 290 * MiB, added
    assert 505 * MiB <= added["alloc_512MiB"] <= 550 * MiB, added
    assert row["equal"] is True
