"""The command line, driven in a subprocess as a user would."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "annscale.cli",
            "demo",
            "--dir",
            str(tmp_path),
            "--cells",
            "400",
            "--genes",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Done" in proc.stdout
    import anndata

    combined = anndata.read_h5ad(tmp_path / "combined.h5ad")
    assert combined.shape == (800, 300)
    assert set(combined.obs["sample"]) == {"A", "B"}
    assert anndata.read_zarr(tmp_path / "B.zarr").shape == (400, 300)


def test_version():
    out = subprocess.run(
        [sys.executable, "-m", "annscale.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("annscale ")
