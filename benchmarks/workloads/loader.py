"""Minibatches for training: one shuffled epoch over all samples, as torch tensors.

Both sides read the samples from their h5ad files (nothing is loaded up front) and yield
shuffled minibatches of ``BATCH_SIZE`` cells with X as a dense float32 torch tensor.
anndata's ``AnnLoader`` only joins variables with ``join_vars="inner"``, so both sides use
the inner join of the samples' genes. Throughput is cells per second = cells / median time.

The digest does not depend on the order of the cells: it counts cells, sums X, and sums X
weighted by each value's (cell position in the collection, gene) — plus the sum and the sum
of squares of the positions, which show that every cell came exactly once.

anndata's ``AnnLoader`` takes 0.7-2 s per batch on the full samples, so a profile may
time only the first ``n_loader_batches`` minibatches of the shuffled epoch (throughput is then
cells served / time). The two sides then serve different random cells, so the digest keeps only
what both must agree on: batches, cells, distinct cells (no cell twice) and genes per batch.
Whole epochs are checked for exact contents in ``tests/loader``.
"""

from __future__ import annotations

from . import workload

BATCH_SIZE = 256
OPTIONS = {"join": "inner", "label": "sample", "index_unique": "-"}

loader_epoch = workload(
    "loader_epoch_60",
    f"Shuffled minibatches ({BATCH_SIZE} cells, X as dense float32 torch tensors) over all "
    "samples (inner join of genes): the profile's n_loader_batches, or a whole epoch.",
    needs=("samples",),
    note=(
        "anndata: AnnLoader over an AnnCollection of backed='r' samples (shuffle=True); "
        "annscale: annscale.loader(read_collection(...), as_torch=True)"
    ),
)


class _EpochDigest:
    """Order-independent fingerprint of an epoch's minibatches (see module docstring)."""

    def __init__(self, obs_names, n_batches: int | None):
        import pandas as pd

        self.index = pd.Index(obs_names)
        self.n_batches = n_batches
        self.batches = 0
        self.seen: set[int] = set()
        self.n_vars: set[int] = set()
        self.cells = 0
        self.pos_sum = 0
        self.pos_sq = 0
        self.total = 0.0
        self.checksum = 0.0
        self.nnz = 0

    def done(self) -> bool:
        """True once the profile's number of batches has been served."""
        return self.n_batches is not None and self.batches >= self.n_batches

    def add(self, X, names=None, positions=None) -> None:
        import numpy as np

        X = X.numpy() if hasattr(X, "numpy") else np.asarray(X)
        if positions is None:
            positions = self.index.get_indexer(names)
        positions = np.asarray(positions, dtype=np.int64)
        self.batches += 1
        self.seen.update(positions.tolist())
        self.n_vars.add(int(X.shape[1]))
        rows, cols = np.nonzero(X)
        vals = X[rows, cols].astype(np.float64)
        weights = ((positions[rows] * 31 + cols * 17) % 1009 + 1).astype(np.float64)
        self.cells += int(positions.size)
        self.pos_sum += int(positions.sum())
        self.pos_sq += int((positions * positions).sum())
        self.nnz += int(vals.size)
        self.total += float(vals.sum())
        self.checksum += float((vals * weights).sum())

    def result(self) -> dict:
        if self.n_batches is not None:
            return {
                "batches": self.batches,
                "cells": self.cells,
                "distinct_cells": len(self.seen),
                "n_vars": sorted(self.n_vars),
            }
        return {
            "cells": self.cells,
            "positions_sum": self.pos_sum,
            "positions_sum_sq": self.pos_sq,
            "nnz": self.nnz,
            "sum": self.total,
            "checksum": self.checksum,
        }


@loader_epoch.side("anndata")
def _(ctx):
    import anndata as ad
    from anndata.experimental import AnnCollection, AnnLoader

    with ctx.timed():
        adatas = [ad.read_h5ad(p, backed="r") for p in ctx.samples]
        coll = AnnCollection(
            adatas, join_vars="inner", keys=ctx.sample_keys, label="sample", index_unique="-"
        )
        digest = _EpochDigest(coll.obs_names, ctx.params.get("n_loader_batches"))
        for batch in AnnLoader(coll, batch_size=BATCH_SIZE, shuffle=True):
            digest.add(batch.X, names=batch.obs_names)
            if digest.done():
                break
    for a in adatas:
        a.file.close()
    return {"epoch": digest.result()}


@loader_epoch.side("annscale")
def _(ctx):
    import torch  # noqa: F401  (anndata's side imports it with anndata.experimental, untimed)

    import annscale

    with ctx.timed():
        coll = annscale.read_collection(ctx.samples, keys=ctx.sample_keys, **OPTIONS)
        digest = _EpochDigest(coll.obs_names, ctx.params.get("n_loader_batches"))
        for batch in annscale.loader(coll, batch_size=BATCH_SIZE, as_torch=True, seed=0):
            digest.add(batch["X"], positions=batch["index"])
            if digest.done():
                break
    return {"epoch": digest.result()}
