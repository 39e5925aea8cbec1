"""annscale.loader over lazily opened stores, collections and in-memory objects."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annscale
from annscale.errors import ElementNotFoundError, FormatError
from annscale.minibatch import Loader

OBS_KEYS = ["cell_type", "score", "flag", "label"]


def _expected(stores, kind):
    samples = stores["samples"]
    if kind in ("collection", "collection-blocks", "urls", "glob"):
        return ad.concat(samples)
    return samples[0]


def _opened(stores, kind):
    tmp = stores["tmp"]
    if kind == "h5ad":
        return annscale.read_lazy(stores["h5ad"][0])
    if kind == "zarr-v3":
        return annscale.read_lazy(tmp / "s0-v3.zarr")
    if kind == "zarr-v2":
        return annscale.read_lazy(tmp / "s0-v2.zarr")
    if kind == "url":
        return str(stores["h5ad"][0])
    if kind in ("collection", "collection-blocks"):
        return annscale.concat([annscale.read_lazy(p) for p in stores["h5ad"]])
    if kind == "urls":
        return [str(p) for p in stores["h5ad"]]  # opened with read_collection
    if kind == "glob":
        return str(stores["tmp"] / "s?.h5ad")
    if kind == "memory":
        return annscale.read_h5ad(stores["h5ad"][0])
    if kind == "view":
        return annscale.read_lazy(stores["h5ad"][0])[:, 3:30]
    raise AssertionError(kind)


def check_batch(batch, exp, obs_keys=OBS_KEYS):
    """The batch equals the in-memory object indexed at the batch's cells."""
    names = batch.obs_names
    e = exp[names]
    assert type(batch.X) is sp.csr_matrix
    assert batch.X.shape == e.X.shape and (batch.X != e.X).nnz == 0
    assert list(batch.var_names) == list(exp.var_names)
    # categoricals keep every category of the loaded object (codes agree between batches)
    pd.testing.assert_frame_equal(batch.obs, exp.obs.loc[names, obs_keys])
    np.testing.assert_array_equal(batch.obsm["emb"], e.obsm["emb"])


def check_epoch(loader, exp):
    """One epoch of ``loader`` holds every row of ``exp`` once, each batch equal to ``exp``'s."""
    batches = list(loader)
    names = np.concatenate([b.obs_names for b in batches])
    assert sorted(names) == sorted(exp.obs_names)
    for b in batches:
        check_batch(b, exp)
    return batches


@pytest.mark.parametrize(
    ("kind", "block_size"),
    [
        ("h5ad", None),
        ("h5ad", 37),
        ("zarr-v3", 50),
        ("zarr-v2", 64),
        ("url", 29),
        ("collection", None),
        ("collection-blocks", 45),
        ("urls", None),
        ("glob", 60),
        ("memory", 40),
        ("view", 33),
    ],
)
def test_epoch_covers_every_row_once_and_matches_memory(stores, kind, block_size):
    exp = _expected(stores, kind)
    data = _opened(stores, kind)
    if kind == "view":
        exp = exp[:, 3:30]
    loader = annscale.loader(
        data, batch_size=32, obs_keys=OBS_KEYS, obsm_keys="emb", block_size=block_size,
        seed=5, fetch_blocks=3,
    )  # fmt: skip
    assert isinstance(loader, Loader)
    assert loader.n_obs == exp.n_obs
    if block_size is not None:
        assert loader.block_rows.max() <= block_size
    # a collection with a block_size pushes every block down to its inputs
    assert (loader.source.matrix is None) == (kind in ("collection-blocks", "glob"))
    batches = list(loader)
    assert len(batches) == len(loader) == -(-exp.n_obs // 32)
    assert [b.n_obs for b in batches[:-1]] == [32] * (len(batches) - 1)
    names = np.concatenate([b.obs_names for b in batches])
    assert sorted(names) == sorted(exp.obs_names)  # every row exactly once
    assert list(names) != list(exp.obs_names)  # shuffled
    for b in batches:
        check_batch(b, exp)


def test_seed_reproduces_epochs_and_epochs_differ(stores):
    def names(loader):
        return [list(b.obs_names) for b in loader]

    data = annscale.read_lazy(stores["h5ad"][2])
    a = annscale.loader(data, batch_size=50, seed=11, block_size=20, fetch_blocks=4)
    b = annscale.loader(data, batch_size=50, seed=11, block_size=20, fetch_blocks=4)
    a0, a1 = names(a), names(a)
    assert (a.epoch, a0, a1) == (2, names(b), names(b))
    assert a0 != a1
    a.set_epoch(0)
    assert names(a) == a0
    other = annscale.loader(data, batch_size=50, seed=12, block_size=20, fetch_blocks=4)
    assert names(other) != a0
    ordered = annscale.loader(data, batch_size=50, shuffle=False, block_size=20)
    assert [n for ns in names(ordered) for n in ns] == list(data.obs_names)


@pytest.mark.parametrize("n_shards", [2, 3, 5])
def test_shards_are_disjoint_and_cover_every_row(stores, n_shards):
    data = annscale.concat([annscale.read_lazy(p) for p in stores["h5ad"]])
    loader = annscale.loader(data, batch_size=16, seed=3, block_size=25, fetch_blocks=2)
    for epoch in (0, 1):
        parts = [
            np.concatenate(
                [b.obs_names for b in loader.iter_epoch(epoch, shard=k, n_shards=n_shards)]
            )
            for k in range(n_shards)
        ]
        allnames = np.concatenate(parts)
        assert len(allnames) == len(set(allnames)) == data.n_obs
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert [len(p) for p in parts] == [loader.shard_rows(k, n_shards) for k in range(n_shards)]


def test_drop_last_and_layer(stores):
    exp = stores["samples"][1]  # 170 rows
    data = annscale.read_lazy(stores["h5ad"][1])
    loader = annscale.loader(data, batch_size=40, layer="dense", drop_last=True, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 4 and {b.n_obs for b in batches} == {40}
    for b in batches:
        assert type(b.X) is np.ndarray
        np.testing.assert_array_equal(b.X, exp[b.obs_names].layers["dense"])


def test_prefetch_zero_reads_in_the_consuming_thread(stores):
    data = annscale.read_lazy(stores["h5ad"][0])
    a = [list(b.obs_names) for b in annscale.loader(data, seed=4, block_size=30, prefetch=0)]
    b = [list(b.obs_names) for b in annscale.loader(data, seed=4, block_size=30, prefetch=3)]
    assert a == b  # timing never changes the batches


def test_errors_name_the_element(stores):
    data = annscale.read_lazy(stores["h5ad"][0])
    path = str(stores["h5ad"][0])
    with pytest.raises(ElementNotFoundError, match="/obs/nope") as e:
        annscale.loader(data, obs_keys=["cell_type", "nope"])
    assert path in str(e.value)
    with pytest.raises(ElementNotFoundError, match="/obsm/nope"):
        annscale.loader(data, obsm_keys=["nope"])
    with pytest.raises(ElementNotFoundError, match="/layers/nope"):
        annscale.loader(data, layer="nope")
    with pytest.raises(ValueError, match="batch_size"):
        annscale.loader(data, batch_size=0)
    with pytest.raises(ValueError, match="block_size"):
        annscale.loader(data, block_size=-3)
    with pytest.raises(TypeError, match="loader"):
        annscale.loader(42)


def test_csc_matrix_is_refused(stores, tmp_path):
    a = stores["samples"][0].copy()
    a.X = sp.csc_matrix(a.X)
    a.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(FormatError, match="csc") as e:
        annscale.loader(annscale.read_lazy(tmp_path / "csc.h5ad"))
    assert "csc.h5ad" in str(e.value) and "/X" in str(e.value)


def test_importing_the_package_never_shadows_the_function():
    code = (
        "import annscale.minibatch.plan\n"
        "import annscale\n"
        "assert callable(annscale.loader), annscale.loader\n"
        "assert 'loader' in dir(annscale)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
