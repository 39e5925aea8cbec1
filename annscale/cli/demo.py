"""``annscale demo``: the main job on a built-in example (the README's first command).

It creates a small dataset, writes it as .h5ad and zarr, reopens it lazily, subsets and
reduces it without loading the matrix, concatenates two samples lazily and writes the result.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .arguments import new_command
from .output import Console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(sub, "demo", "run the main job on a built-in example", __doc__, run)
    p.add_argument("--dir", help="where to write the example files (default: a temp dir)")
    p.add_argument("--cells", type=int, default=5000, help="cells per sample")
    p.add_argument("--genes", type=int, default=2000, help="genes")


def _example(n_obs: int, n_vars: int, seed: int, sample: str):
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from ..core.anndata import AnnData

    rng = np.random.default_rng(seed)
    # skewed library sizes, like real cells: a few cells hold many counts
    per_row = rng.lognormal(mean=3.0, sigma=0.8, size=n_obs).astype(int).clip(1, n_vars)
    indptr = np.concatenate([[0], np.cumsum(per_row)])
    indices = np.concatenate([np.sort(rng.choice(n_vars, k, replace=False)) for k in per_row])
    data = rng.poisson(2.0, size=indptr[-1]).astype(np.float32) + 1
    X = sp.csr_matrix((data, indices, indptr), shape=(n_obs, n_vars))
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["T cell", "B cell", "NK", "Monocyte"], n_obs)),
            "n_counts": np.asarray(X.sum(axis=1)).ravel(),
        },
        index=[f"{sample}-cell{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(index=[f"Gene{j}" for j in range(n_vars)])
    return AnnData(X=X, obs=obs, var=var, uns={"sample": sample})


def run(args: argparse.Namespace, console: Console) -> int:
    import annscale as ad

    out = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="annscale-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def step(msg: str) -> None:
        console.result(f"[{time.perf_counter() - t0:6.2f}s] {msg}")

    a = _example(args.cells, args.genes, 0, "A")
    b = _example(args.cells, args.genes, 1, "B")
    step(
        f"created two samples of {a.n_obs} cells x {a.n_vars} genes ({a.X.nnz + b.X.nnz} nonzeros)"
    )
    a.write_h5ad(out / "A.h5ad", compression="gzip")
    b.write_zarr(out / "B.zarr")
    step(f"wrote {out / 'A.h5ad'} and {out / 'B.zarr'} (anndata reads both)")

    la = ad.read_h5ad(out / "A.h5ad", backed="r")
    lb = ad.read_lazy(out / "B.zarr")
    step(
        f"opened both lazily: X is a dask array of {la.X.numblocks[0]} row chunk(s) of scipy "
        "CSR; no matrix data read yet"
    )

    nk = la[la.obs["cell_type"] == "NK", :100]
    step(f"subset A to NK cells x first 100 genes: {nk.shape} (lazy view)")
    sums = lb.X.sum(axis=0).compute()
    step(f"per-gene sums over B computed chunk by chunk: total {float(sums.sum()):.0f}")

    both = ad.concat({"A": la, "B": lb}, label="sample", index_unique="-")
    step(f"concatenated lazily: {both.shape}, obs columns {list(both.obs.columns)}")
    both.write_h5ad(out / "combined.h5ad")
    step(f"wrote {out / 'combined.h5ad'}")

    mem = nk.to_memory()
    step(f"NK subset to memory: {type(mem.X).__name__} {mem.shape}, nnz={mem.X.nnz}")
    back = ad.read_h5ad(out / "combined.h5ad")
    assert back.shape == both.shape
    step(
        f"re-read combined.h5ad eagerly: {back.n_obs} obs x {back.n_vars} vars. Done; files in {out}"
    )
    return 0
