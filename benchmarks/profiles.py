"""Sizes of the benchmark data and selections: the full profile and the ``--quick`` one.

Every number that changes a generated file is part of a spec dataclass, so a cached file is
reused exactly when its spec (and :data:`GENERATOR_VERSION`) is unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: bump when the generator code changes what it writes for the same spec
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class MatrixSpec:
    """One large CSR float32 h5ad with skewed row sizes (nonzeros per row ~ lognormal)."""

    n_obs: int
    n_vars: int
    mean_nnz_per_row: float  # before removing duplicate columns within a row
    block_rows: int  # rows generated and appended per step (bounds generator memory)
    seed: int = 0

    def key(self) -> dict:
        return {"kind": "matrix", "version": GENERATOR_VERSION, **asdict(self)}


@dataclass(frozen=True)
class SamplesSpec:
    """Many small h5ad samples; sample ``i`` holds genes ``[i * shift, i * shift + n_vars)``."""

    n_samples: int
    n_obs: int
    n_vars: int
    shift: int
    mean_nnz_per_row: float
    seed: int = 1

    @property
    def n_universe(self) -> int:
        return (self.n_samples - 1) * self.shift + self.n_vars

    def key(self) -> dict:
        return {"kind": "samples", "version": GENERATOR_VERSION, **asdict(self)}


@dataclass(frozen=True)
class Profile:
    """Data sizes, selection sizes and run settings of one benchmark mode."""

    name: str
    matrix: MatrixSpec
    samples: SamplesSpec
    n_rows_subset: int  # rows_10k_to_memory
    n_genes_subset: int  # genes_500_to_memory
    n_rows_remote: int  # s3_open_row_subset
    #: loader_epoch_60 times this many minibatches (None: a whole epoch); anndata's AnnLoader
    #: takes 0.7-2 s per batch on the full samples (a whole epoch, 703 batches: up to half an hour)
    n_loader_batches: int | None
    repeat: int  # timed runs per side, after one warm-up
    timeout_s: float  # per subprocess
    #: a side whose warm-up process takes this long (s) is timed once: the warm-up counts
    slow_s: float | None = None
    selection_seed: int = 42
    cell_type: str = "B cell"  # obs_mask_selection and collection_filter_60
    extra: dict = field(default_factory=dict)

    def params(self) -> dict:
        """What a workload subprocess needs to know besides dataset paths (JSON-able)."""
        return {
            "profile": self.name,
            "n_obs": self.matrix.n_obs,
            "n_vars": self.matrix.n_vars,
            "n_rows_subset": self.n_rows_subset,
            "n_genes_subset": self.n_genes_subset,
            "n_rows_remote": self.n_rows_remote,
            "n_loader_batches": self.n_loader_batches,
            "selection_seed": self.selection_seed,
            "cell_type": self.cell_type,
        }


FULL = Profile(
    name="full",
    matrix=MatrixSpec(n_obs=150_000, n_vars=20_000, mean_nnz_per_row=480.0, block_rows=10_000),
    samples=SamplesSpec(
        n_samples=60, n_obs=3_000, n_vars=15_000, shift=250, mean_nnz_per_row=700.0
    ),
    n_rows_subset=10_000,
    n_genes_subset=500,
    n_rows_remote=1_000,
    n_loader_batches=30,
    repeat=2,  # with the warm-up, 3 runs per side: the whole run fits in ~25 min on 2 cores
    timeout_s=900.0,
    slow_s=60.0,
)

QUICK = Profile(
    name="quick",
    matrix=MatrixSpec(n_obs=40_000, n_vars=10_000, mean_nnz_per_row=200.0, block_rows=10_000),
    # as many files as the full profile (per-file costs matter in concatenation), smaller ones
    samples=SamplesSpec(n_samples=60, n_obs=300, n_vars=2_000, shift=25, mean_nnz_per_row=100.0),
    n_rows_subset=2_000,
    n_genes_subset=100,
    n_rows_remote=200,
    n_loader_batches=20,
    repeat=1,
    timeout_s=300.0,
    slow_s=30.0,
)

#: tiny sizes for the smoke test (seconds, not minutes)
TOY = Profile(
    name="toy",
    matrix=MatrixSpec(n_obs=600, n_vars=200, mean_nnz_per_row=20.0, block_rows=250),
    samples=SamplesSpec(n_samples=3, n_obs=50, n_vars=80, shift=10, mean_nnz_per_row=10.0),
    n_rows_subset=50,
    n_genes_subset=10,
    n_rows_remote=20,
    n_loader_batches=None,
    repeat=1,
    timeout_s=120.0,
)

PROFILES = {p.name: p for p in (FULL, QUICK, TOY)}
