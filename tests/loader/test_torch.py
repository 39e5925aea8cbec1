"""as_torch batches and the torch IterableDataset across DataLoader workers and DDP ranks."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset

import annscale
from annscale.errors import FormatError


@pytest.fixture
def collection(stores):
    import anndata as ad

    data = annscale.concat([annscale.read_lazy(p) for p in stores["h5ad"]])
    return data, ad.concat(stores["samples"])


def test_torch_batches_match_memory(collection):
    data, exp = collection
    loader = annscale.loader(
        data, batch_size=64, obs_keys=["cell_type", "score", "flag"], obsm_keys=["emb"],
        as_torch=True, seed=2, block_size=40,
    )  # fmt: skip
    categories = loader.categories
    assert list(categories) == ["cell_type"]
    pd.testing.assert_index_equal(categories["cell_type"], exp.obs["cell_type"].cat.categories)
    assert list(categories["cell_type"]) == ["B", "NK", "T", "x"]
    seen = []
    for batch in loader:
        assert set(batch) == {"X", "index", "cell_type", "score", "flag", "obsm"}
        idx = batch["index"].numpy()
        assert batch["index"].dtype == torch.int64
        seen.append(idx)
        assert batch["X"].dtype == torch.float32 and batch["X"].layout == torch.strided
        np.testing.assert_array_equal(batch["X"].numpy(), exp.X[idx].toarray())
        codes = exp.obs["cell_type"].cat.codes.to_numpy()[idx]
        assert batch["cell_type"].dtype == torch.int64
        np.testing.assert_array_equal(batch["cell_type"].numpy(), codes)
        np.testing.assert_array_equal(
            categories["cell_type"][batch["cell_type"].numpy()], exp.obs["cell_type"].iloc[idx]
        )
        np.testing.assert_array_equal(batch["score"].numpy(), exp.obs["score"].to_numpy()[idx])
        assert batch["flag"].dtype == torch.bool
        np.testing.assert_array_equal(batch["flag"].numpy(), exp.obs["flag"].to_numpy()[idx])
        np.testing.assert_array_equal(batch["obsm"]["emb"].numpy(), exp.obsm["emb"][idx])
    assert sorted(np.concatenate(seen).tolist()) == list(range(exp.n_obs))


def test_torch_sparse_x(stores):
    exp = stores["samples"][0]
    data = annscale.read_lazy(stores["h5ad"][0])
    loader = annscale.loader(data, batch_size=50, as_torch=True, torch_sparse=True, seed=0)
    batch = next(iter(loader))
    assert batch["X"].layout == torch.sparse_csr
    idx = batch["index"].numpy()
    np.testing.assert_array_equal(batch["X"].to_dense().numpy(), exp.X[idx].toarray())
    dense = annscale.loader(data, layer="dense", as_torch=True, torch_sparse=True, seed=0)
    b = next(iter(dense))
    np.testing.assert_array_equal(b["X"].to_dense().numpy(), exp.layers["dense"][b["index"]])


def test_torch_refuses_string_columns_and_clashing_names(stores):
    data = annscale.read_lazy(stores["h5ad"][0])
    data.obs["name"] = data.obs_names.to_numpy(dtype=object)
    with pytest.raises(FormatError, match="/obs/name"):
        annscale.loader(data, obs_keys=["name"], as_torch=True)
    data.obs["X"] = 1.0
    with pytest.raises(ValueError, match="clashes"):
        annscale.loader(data, obs_keys=["X"], as_torch=True)


def _indices(ds, **kw):
    dl = DataLoader(ds, batch_size=None, **kw)
    return [b["index"].numpy() for b in dl]


def test_dataloader_workers_and_ranks_cover_every_row_once(collection):
    data, exp = collection
    loader = annscale.loader(data, batch_size=32, seed=9, block_size=30, fetch_blocks=2)
    parts = []
    for rank in range(2):
        ds = loader.torch_dataset(rank=rank, world_size=2)
        assert isinstance(ds, IterableDataset)
        parts += _indices(ds, num_workers=2, multiprocessing_context="fork")
    allrows = np.concatenate(parts)
    assert sorted(allrows.tolist()) == list(range(exp.n_obs))
    # the same shards, whatever process reads them: here in-process, after a pickle round
    # trip (what spawned workers receive: addresses, not open files)
    again = [
        np.concatenate(
            _indices(pickle.loads(pickle.dumps(loader.torch_dataset(rank=r, world_size=2))))
        )
        for r in range(2)
    ]
    assert sorted(np.concatenate(again).tolist()) == list(range(exp.n_obs))
    assert {frozenset(a.tolist()) for a in again} == {
        frozenset(np.concatenate(_indices(loader.torch_dataset(rank=r, world_size=2))).tolist())
        for r in range(2)
    }


def test_dataset_epochs(stores):
    data = annscale.read_lazy(stores["h5ad"][2])
    ds = annscale.loader(data, batch_size=64, seed=1, block_size=20).torch_dataset()
    e0 = np.concatenate(_indices(ds))
    e1 = np.concatenate(_indices(ds))
    assert sorted(e0.tolist()) == sorted(e1.tolist()) == list(range(data.n_obs))
    assert not np.array_equal(e0, e1)
    ds.set_epoch(0)
    np.testing.assert_array_equal(np.concatenate(_indices(ds)), e0)


def test_ranks_from_torch_distributed(stores, tmp_path):
    data = annscale.read_lazy(stores["h5ad"][0])
    with pytest.raises(ValueError, match="seed"):
        annscale.loader(data).torch_dataset(rank=1, world_size=2)
    with pytest.raises(ValueError, match="rank"):
        annscale.loader(data, seed=0).torch_dataset(rank=2, world_size=2)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        ds = annscale.loader(data, seed=0).torch_dataset()
        assert (ds.rank, ds.world_size) == (0, 1)
        ds = annscale.loader(data, seed=0).torch_dataset(world_size=3)
        assert (ds.rank, ds.world_size) == (0, 3)
    finally:
        dist.destroy_process_group()
