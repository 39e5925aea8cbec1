"""Generate (once) and cache the benchmark files, written by anndata.

Files live under ``benchmarks/.cache/`` (gitignored; ``$ANNSCALE_BENCH_CACHE`` overrides it) in
a folder named by a hash of their spec.
A folder is published by renaming it from a staging name only when complete, so an interrupted
generation is redone, never reused.

The large matrix is generated and appended in row blocks (``anndata.io.write_elem`` for the
first block, ``anndata.io.sparse_dataset(...).append`` for the others), so generation needs
memory for one block only. The result is an ordinary anndata 0.12 h5ad: resizable chunked
``data``/``indices``/``indptr`` datasets, exactly the layout ``AnnData.write_h5ad`` produces.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .profiles import MatrixSpec, SamplesSpec

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / ".cache"
#: environment variable naming another cache folder (the smoke test uses a temporary one)
CACHE_ENV = "ANNSCALE_BENCH_CACHE"


def cache_dir() -> Path:
    """Where generated datasets and run scratch folders live (``$ANNSCALE_BENCH_CACHE``)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


#: cell types and how often they occur (skewed, like a real tissue)
CELL_TYPES = {
    "T cell": 0.28,
    "B cell": 0.12,
    "NK cell": 0.08,
    "monocyte": 0.16,
    "dendritic cell": 0.05,
    "macrophage": 0.07,
    "fibroblast": 0.09,
    "endothelial cell": 0.06,
    "epithelial cell": 0.05,
    "plasma cell": 0.025,
    "mast cell": 0.0125,
    "pDC": 0.0125,
}


@dataclass(frozen=True)
class SampleFiles:
    """The generated samples, in order, with the keys used for ``label``/``keys``."""

    paths: tuple[Path, ...]
    keys: tuple[str, ...]


def _folder(key: dict) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / f"{key['kind']}-{digest}"


def _publish(staging: Path, final: Path, key: dict) -> None:
    (staging / "spec.json").write_text(json.dumps(key, indent=1, sort_keys=True))
    if final.exists():  # another run finished first
        shutil.rmtree(staging)
        return
    os.replace(staging, final)


def _staging(final: Path) -> Path:
    staging = final.with_name(f"{final.name}.staging-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def gene_weights(n_genes: int, seed: int) -> np.ndarray:
    """Probability of each gene being detected in a cell: a power law over a random ranking."""
    rng = np.random.default_rng(seed)
    ranks = rng.permutation(n_genes)
    weights = 1.0 / (ranks + 20.0) ** 0.9
    return weights / weights.sum()


def random_csr(
    rng: np.random.Generator, n_rows: int, p_cols: np.ndarray, mean_nnz_per_row: float
) -> sp.csr_matrix:
    """A CSR float32 block with lognormal row sizes and counts-like values (1, 2, 3, ...).

    Columns are drawn with replacement from ``p_cols`` and duplicates within a row dropped, so
    rows of popular genes saturate like real data; indices are sorted within rows.
    """
    n_cols = p_cols.size
    sigma = 1.0
    mu = np.log(mean_nnz_per_row) - sigma**2 / 2
    sizes = np.clip(rng.lognormal(mu, sigma, n_rows), 1, n_cols // 2).astype(np.int64)
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), sizes)
    cols = rng.choice(n_cols, size=rows.size, p=p_cols)
    flat = np.unique(rows * n_cols + cols)
    rows, cols = np.divmod(flat, n_cols)
    data = rng.geometric(0.4, size=flat.size).astype(np.float32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return sp.csr_matrix((data, cols.astype(np.int32), indptr), shape=(n_rows, n_cols))


def _obs_block(rng: np.random.Generator, block: sp.csr_matrix, start: int) -> pd.DataFrame:
    names = list(CELL_TYPES)
    p = np.array(list(CELL_TYPES.values()))
    n = block.shape[0]
    return pd.DataFrame(
        {
            "cell_type": rng.choice(names, size=n, p=p / p.sum()),
            "batch": np.char.add("batch_", rng.integers(0, 10, n).astype(str)),
            "n_genes": np.diff(block.indptr).astype(np.int32),
            "total_counts": np.asarray(block.sum(axis=1), dtype=np.float32).ravel(),
            "score": rng.normal(size=n),
        },
        index=[f"cell_{i:07d}" for i in range(start, start + n)],
    )


def _finish_obs(obs: pd.DataFrame, categories: list[str] | None = None) -> pd.DataFrame:
    obs = obs.copy()
    obs["cell_type"] = pd.Categorical(obs["cell_type"], categories=categories or sorted(CELL_TYPES))
    obs["batch"] = pd.Categorical(obs["batch"])
    return obs


def _var(names: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "gene_symbol": [n.replace("gene_", "SYM") for n in names],
            "highly_variable": rng.random(len(names)) < 0.1,
        },
        index=names,
    )


def _blocks(spec: MatrixSpec) -> Iterator[tuple[int, sp.csr_matrix, pd.DataFrame]]:
    p_cols = gene_weights(spec.n_vars, spec.seed)
    for i, start in enumerate(range(0, spec.n_obs, spec.block_rows)):
        rng = np.random.default_rng([spec.seed, i])
        n = min(spec.block_rows, spec.n_obs - start)
        block = random_csr(rng, n, p_cols, spec.mean_nnz_per_row)
        yield start, block, _obs_block(rng, block, start)


def _chunks_for(n_elements: int, itemsize: int) -> tuple[int]:
    """h5py's automatic chunk shape for a 1-d dataset of the final size (what anndata gets)."""
    try:
        from h5py._hl.filters import guess_chunk

        return guess_chunk((n_elements,), (None,), itemsize)
    except ImportError:  # pragma: no cover - h5py moved it; its default is fine too
        return (min(n_elements, 1 << 16),)


def write_matrix(spec: MatrixSpec, path: Path) -> None:
    """Write the large matrix as an h5ad at ``path``, block by block."""
    import anndata as ad
    import h5py

    expected_nnz = int(spec.n_obs * spec.mean_nnz_per_row)
    obs_parts = []
    with h5py.File(path, "w") as f:
        for start, block, obs in _blocks(spec):
            if start == 0:
                ad.io.write_elem(
                    f, "X", block, dataset_kwargs={"chunks": _chunks_for(expected_nnz, 4)}
                )
                X = ad.io.sparse_dataset(f["X"])
            else:
                X.append(block)
            obs_parts.append(obs)
        indptr = f["X/indptr"]
        if indptr.dtype != np.int64 and f["X/data"].shape[0] >= 2**31:  # pragma: no cover
            raise RuntimeError("indptr overflow: lower mean_nnz_per_row")
        ad.io.write_elem(f, "obs", _finish_obs(pd.concat(obs_parts)))
        ad.io.write_elem(f, "var", _var([f"gene_{j:05d}" for j in range(spec.n_vars)], spec.seed))
        for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
            ad.io.write_elem(f, key, {})
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"


def write_sample(spec: SamplesSpec, i: int, path: Path) -> None:
    """Write sample ``i``: its own slice of the gene universe and a subset of cell types."""
    import anndata as ad

    rng = np.random.default_rng([spec.seed, i])
    genes = np.arange(i * spec.shift, i * spec.shift + spec.n_vars)
    p_cols = gene_weights(spec.n_universe, spec.seed)[genes]
    X = random_csr(rng, spec.n_obs, p_cols / p_cols.sum(), spec.mean_nnz_per_row)
    obs = _obs_block(rng, X, 0)
    # a few samples lack some rare types: categorical unions matter in concatenation
    present = sorted(set(obs["cell_type"]))
    obs = _finish_obs(obs, categories=present)
    obs.index = [f"cell_{j:05d}" for j in range(spec.n_obs)]
    var = _var([f"gene_{g:05d}" for g in genes], spec.seed + i)
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.obsm["X_pca"] = rng.normal(size=(spec.n_obs, 10)).astype(np.float32)
    adata.uns["sample"] = {"index": i}
    adata.write_h5ad(path)


def matrix(spec: MatrixSpec, log=print) -> Path:
    """Path of the large matrix h5ad, generating it first when it is not cached."""
    key = spec.key()
    final = _folder(key)
    if not final.exists():
        log(f"generating {spec.n_obs:,} x {spec.n_vars:,} matrix in {final} ...")
        staging = _staging(final)
        write_matrix(spec, staging / "matrix.h5ad")
        _publish(staging, final, key)
    return final / "matrix.h5ad"


def samples(spec: SamplesSpec, log=print) -> SampleFiles:
    """Paths of the samples, generating them first when they are not cached."""
    key = spec.key()
    final = _folder(key)
    names = [f"sample_{i:03d}" for i in range(spec.n_samples)]
    if not final.exists():
        log(
            f"generating {spec.n_samples} samples of {spec.n_obs:,} x {spec.n_vars:,} in {final} ..."
        )
        staging = _staging(final)
        for i, name in enumerate(names):
            write_sample(spec, i, staging / f"{name}.h5ad")
        _publish(staging, final, key)
    return SampleFiles(tuple(final / f"{n}.h5ad" for n in names), tuple(names))
