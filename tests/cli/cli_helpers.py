"""Helpers of the command-line tests: run ``annscale`` in a subprocess, make small datasets."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 180) -> Result:
    """``annscale ARGS`` as a user runs it: a new process, stderr not a terminal."""
    proc = subprocess.run(
        [sys.executable, "-m", "annscale.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def make_adata(n_obs: int, genes: list[str], seed: int, *, prefix: str = "cell"):
    """A small anndata.AnnData: CSR X, a dense layer, categorical/int/bool obs, obsm, uns."""
    import anndata

    rng = np.random.default_rng(seed)
    X = sp.random(n_obs, len(genes), density=0.3, format="csr", dtype=np.float32, random_state=seed)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["NK", "B cell", "T"], n_obs)),
            "n_counts": np.asarray(X.sum(axis=1)).ravel().astype(np.float64),
            "batch": rng.integers(0, 3, n_obs),
            "is_doublet": rng.random(n_obs) < 0.2,
        },
        index=[f"{prefix}{i}" for i in range(n_obs)],
    )
    adata = anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))
    adata.layers["dense"] = X.toarray()
    adata.obsm["pca"] = rng.normal(size=(n_obs, 3))
    adata.uns["seed"] = seed
    return adata
