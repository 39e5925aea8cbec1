"""``annscale concat``: the result equals ``anndata.concat`` of the same inputs; --dry-run."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import anndata
import numpy as np
import pandas as pd
import pytest
from anndata.tests.helpers import assert_equal
from cli_helpers import make_adata, run_cli


@pytest.fixture
def samples(tmp_path):
    """Three h5ad samples with shifted gene sets, an obs dtype conflict and a partial column."""
    adatas = {}
    for i, start in enumerate((0, 10, 5)):
        a = make_adata(20 + 5 * i, [f"g{j}" for j in range(start, start + 30)], i)
        if i == 1:  # a dtype conflict to resolve: int in one input, float in the others
            a.obs["n_counts"] = np.arange(a.n_obs)
        if i == 2:  # a column only one input has
            a.obs["qc_pass"] = True
        key = f"sample{i}"
        a.write_h5ad(tmp_path / f"{key}.h5ad")
        adatas[key] = a
    return adatas


def _expected(adatas, **kwargs):
    return anndata.concat(adatas, **kwargs)


def test_concat_matches_anndata_with_default_keys(samples, tmp_path):
    out = tmp_path / "all.h5ad"
    res = run_cli(
        "concat", tmp_path / "sample*.h5ad", "-o", out,
        "--join", "outer", "--label", "sample", "--index-unique", "-",
        "--merge", "same", "--uns-merge", "first",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    back = anndata.read_h5ad(out)
    # keys default to the file names without extension
    expected = _expected(
        samples, join="outer", label="sample", index_unique="-", merge="same", uns_merge="first"
    )
    assert list(back.obs["sample"].cat.categories) == ["sample0", "sample1", "sample2"]
    assert_equal(back, expected)


def test_concat_inner_to_zarr_with_keys_and_scheduler(samples, tmp_path):
    out = tmp_path / "inner.zarr"
    inputs = [tmp_path / f"sample{i}.h5ad" for i in range(3)]
    res = run_cli(
        "concat", *inputs, "-o", out, "--keys", "a,b,c", "--label", "batch_key",
        "--zarr-format", "2", "--scheduler", "synchronous",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    back = anndata.read_zarr(out)
    expected = _expected(dict(zip("abc", samples.values())), join="inner", label="batch_key")
    assert_equal(back, expected)
    assert json.loads(run_cli("info", "--json", out).stdout)["format"] == "zarr2"


def test_dry_run_prints_the_plan_and_writes_nothing(samples, tmp_path):
    out = tmp_path / "plan.h5ad"
    res = run_cli(
        "concat", tmp_path / "sample*.h5ad", "-o", out, "--dry-run", "--join", "outer", "--json"
    )
    assert res.returncode == 0, res.stderr
    assert not out.exists()
    plan = json.loads(res.stdout)
    adatas = list(samples.values())
    assert [i["n_obs"] for i in plan["inputs"]] == [a.n_obs for a in adatas]
    assert [i["key"] for i in plan["inputs"]] == list(samples)
    union = set().union(*(a.var_names for a in adatas))
    inter = set(adatas[0].var_names).intersection(*(a.var_names for a in adatas[1:]))
    assert plan["var_union"] == len(union)
    assert plan["var_intersection"] == len(inter)
    assert plan["n_vars"] == len(union)
    assert plan["n_obs"] == sum(a.n_obs for a in adatas)
    expected = _expected(samples, join="outer")
    conflicts = {c["column"]: c for c in plan["conflicts"]}
    assert set(conflicts) == {"n_counts", "qc_pass"}
    assert conflicts["n_counts"]["dtypes"] == {
        "float64": ["sample0", "sample2"],
        "int64": ["sample1"],
    }
    assert conflicts["n_counts"]["result"] == str(expected.obs["n_counts"].dtype)
    assert conflicts["qc_pass"]["missing_in"] == ["sample0", "sample1"]
    assert conflicts["qc_pass"]["result"].startswith(str(expected.obs["qc_pass"].dtype))
    assert plan["estimated_nnz"] == sum(a.X.nnz for a in adatas)
    assert plan["estimated_bytes"] > 0
    assert plan["chunks"] == 3
    assert plan["duplicated_obs_names"] > 0  # every sample names its cells cell0, cell1, ...

    text = run_cli("concat", tmp_path / "sample*.h5ad", "-o", out, "--dry-run")
    assert text.returncode == 0, text.stderr
    assert "vars: union 40, intersection 20; inner join keeps 20" in text.stdout
    assert "qc_pass" in text.stdout and "dropped" in text.stdout
    assert "--index-unique" in text.stdout
    assert not out.exists()


def test_concat_usage_errors(samples, tmp_path):
    res = run_cli("concat", tmp_path / "sample*.h5ad", "-o", tmp_path / "o.h5ad", "--keys", "a,b")
    assert res.returncode == 2
    assert "2 keys for 3 inputs" in res.stderr
    res = run_cli("concat", tmp_path / "sample0.h5ad", "-o", tmp_path / "o.h5ad", "--join", "left")
    assert res.returncode == 2
    res = run_cli("concat", tmp_path / "missing*.h5ad", "-o", tmp_path / "o.h5ad")
    assert res.returncode == 2
    assert "no file matches" in res.stderr


def test_concat_progress_lines_when_not_a_terminal(samples, tmp_path):
    res = run_cli(
        "concat", tmp_path / "sample*.h5ad", "-o", tmp_path / "p.zarr", "--progress-interval", "0"
    )
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if "tasks" in line]
    assert lines, res.stderr
    assert all(line.startswith("annscale: writing ") for line in lines)
    assert "\r" not in res.stderr  # no bar redrawn in place: this is a log
    done, total = re.search(r"(\d+)/(\d+) tasks \(100%\)", lines[-1]).groups()
    assert done == total

    quiet = run_cli("concat", tmp_path / "sample*.h5ad", "-o", tmp_path / "q.zarr", "--quiet")
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    assert pd.Index(anndata.read_zarr(tmp_path / "q.zarr").obs_names).size == 75


@pytest.mark.slow
def test_concat_on_a_distributed_scheduler(samples, tmp_path):
    from distributed import LocalCluster

    out = tmp_path / "dist.zarr"
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
        host="127.0.0.1",
    ) as cluster:  # fmt: skip
        res = run_cli(
            "concat", tmp_path / "sample0.h5ad", tmp_path / "sample1.h5ad", "-o", out,
            "--label", "sample", "--scheduler", cluster.scheduler_address,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "tasks" not in res.stderr  # local task counting is off on a cluster
    expected = _expected(dict(list(samples.items())[:2]), label="sample")
    assert_equal(anndata.read_zarr(out), expected)


# ``annscale ARGV...`` with every sparse block write of the zarr engine slowed down, so
# that the test can kill it midway (the graph, hence the write's fingerprint, is unchanged)
SLOW_CLI = """
import sys, time
import annscale.writeout.zarr as wz
real = wz._write_sparse_block
def slow(block, job):
    time.sleep(0.25)
    return real(block, job)
wz._write_sparse_block = slow
from annscale.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _done_records(target) -> list[str]:
    parent, name = os.path.split(str(target))
    return glob.glob(f"{parent}/.{name}.annscale-staging-*/.annscale-manifest/X/done/*")


def test_concat_killed_then_resumed(tmp_path):
    inputs = []
    for i in range(8):  # one X block per input (small files)
        path = tmp_path / f"part{i}.h5ad"
        make_adata(15 + i, [f"g{j}" for j in range(3 * i, 3 * i + 20)], i).write_h5ad(path)
        inputs.append(path)
    args = ["--join", "outer", "--label", "sample", "--index-unique", "-", "--zarr-format", "3"]
    reference = tmp_path / "reference.zarr"
    res = run_cli("concat", *inputs, "-o", reference, *args)
    assert res.returncode == 0, res.stderr

    out = tmp_path / "out.zarr"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, "concat", *map(str, inputs), "-o", str(out), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_done_records(out)) < 2:  # SIGKILL once two blocks are written
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the concatenation made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # nothing published
    done = [os.path.basename(p) for p in _done_records(out)]
    assert 0 < len([n for n in done if n.startswith("block-")]) < 8

    # the same command with --resume finishes the job and equals the uninterrupted run
    res = run_cli("concat", *inputs, "-o", out, *args, "--resume")
    assert res.returncode == 0, res.stderr
    assert_equal(anndata.read_zarr(out), anndata.read_zarr(reference))
    assert [p for p in os.listdir(tmp_path) if ".annscale-" in p] == []


def test_concat_resume_needs_a_zarr_output(samples, tmp_path):
    res = run_cli("concat", tmp_path / "sample*.h5ad", "-o", tmp_path / "o.h5ad", "--resume")
    assert res.returncode == 2
    assert "zarr outputs" in res.stderr
    assert not (tmp_path / "o.h5ad").exists()
