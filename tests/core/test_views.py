"""Indexing and view semantics, compared with anndata 0.12.19."""

from __future__ import annotations

import copy
import pickle
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
from _core_helpers import assert_same, make_parts
from scipy import sparse

import annscale as ad
from annscale.errors import ImplicitModificationWarning, NamesNotFoundError


@pytest.fixture
def pair():
    return ad.AnnData(**make_parts()), anndata.AnnData(**make_parts())


INDEXES = [
    np.s_[:],
    np.s_[...],
    np.s_[1:4],
    np.s_[::2],
    np.s_[::-1],
    np.s_[-3:],
    np.s_[2],
    np.s_[-1],
    np.s_["cell_3"],
    np.s_["cell_1":"cell_4"],
    np.s_[[True, False, True, False, True, True]],
    np.s_[np.array([True, False, True, False, True, True])],
    np.s_[[0, -1, 2, 2]],
    np.s_[np.array([4, 1])],
    np.s_[["cell_5", "cell_0"]],
    np.s_[pd.Index(["cell_2", "cell_1"])],
    np.s_[:, 1],
    np.s_[:, "g2"],
    np.s_[:, "g1":"g3"],
    np.s_[:, [True, False, True, True]],
    np.s_[..., [3, 0]],
    np.s_[[1, 3], ["g3", "g0"]],
    np.s_[np.array([5, 0, 2]), np.array([2, 1])],
    np.s_[2:5, ::2],
    np.s_[-1, -1],
    np.s_[[], :],
    np.s_[[0, 1], []],
]


@pytest.mark.parametrize("index", INDEXES, ids=[str(i) for i in range(len(INDEXES))])
def test_indexing_matches_anndata(pair, index):
    ours, theirs = pair
    v_ours, v_theirs = ours[index], theirs[index]
    assert v_ours.is_view and v_theirs.is_view
    assert_same(v_ours, v_theirs)
    assert repr(v_ours) == repr(v_theirs)
    assert_same(v_ours.copy(), v_theirs.copy())


def test_series_masks_match_anndata(pair):
    ours, theirs = pair
    mask = ours.obs["cell_type"] == "T"
    assert_same(ours[mask], theirs[theirs.obs["cell_type"] == "T"])
    assert_same(ours[mask, :], theirs[theirs.obs["cell_type"] == "T", :])
    unaligned = pd.Series(mask.values, index=mask.index[::-1])
    assert_same(ours[unaligned], theirs[unaligned])
    vmask = ours.var["gene"].isin(["G0", "G3"])
    assert_same(ours[:, vmask], theirs[:, vmask])


def test_views_of_views_compose(pair):
    ours, theirs = pair
    chain_ours = ours[1:][::2][:, [2, 0]][[1, 0]]
    chain_theirs = theirs[1:][::2][:, [2, 0]][[1, 0]]
    assert_same(chain_ours, chain_theirs)
    assert chain_ours._view.ref is ours  # indices composed onto the original object
    # a view of a view never subsets the intermediate view's data
    mid = ours[1:]
    _ = mid[::2].X
    assert "X" not in mid._view_cache


def test_missing_names(pair):
    ours, _ = pair
    with pytest.raises(NamesNotFoundError, match="nope"):
        ours[["cell_1", "nope"]]
    with pytest.raises(KeyError, match="nope"):
        ours[:, "nope"]


def test_index_errors(pair):
    ours, theirs = pair
    for bad in (np.s_[6], np.s_[:, 4], np.s_[[True, False]], np.s_[1, 2, 3]):
        with pytest.raises(IndexError):
            ours[bad]
        with pytest.raises(IndexError):
            theirs[bad]


def test_view_reads_are_cached_and_cheap(pair):
    ours, _ = pair
    v = ours[[1, 2]]
    assert v.X is v.X
    assert v.layers["counts"] is v.layers["counts"]
    assert v.obs is v.obs
    # creating a view subsets nothing
    w = ours[np.arange(3)]
    assert w._view_cache == {}
    assert w.shape == (3, 4) and w.obs_names.tolist() == ["cell_0", "cell_1", "cell_2"]
    assert w._view_cache == {}


def test_unused_categories_removed_like_anndata(pair):
    ours, theirs = pair
    for a in (ours, theirs):
        a.obs["cell_type"] = a.obs["cell_type"].astype("category")
        a.uns["cell_type_colors"] = ["red", "green", "blue"]  # B, NK, T
    v_ours, v_theirs = ours[[0, 3]], theirs[[0, 3]]
    assert v_ours.obs["cell_type"].cat.categories.tolist() == ["T"]
    pd.testing.assert_frame_equal(pd.DataFrame(v_ours.obs), pd.DataFrame(v_theirs.obs))
    np.testing.assert_array_equal(v_ours.uns["cell_type_colors"], v_theirs.uns["cell_type_colors"])
    assert ours.obs["cell_type"].cat.categories.tolist() == ["B", "NK", "T"]
    assert list(ours.uns["cell_type_colors"]) == ["red", "green", "blue"]


def modifications():
    return {
        "obs column": lambda v: v.obs.__setitem__("new", 1),
        "obs del column": lambda v: v.obs.__delitem__("score"),
        "obs loc": lambda v: v.obs.loc.__setitem__((v.obs_names[0], "score"), -1.0),
        "obs index": lambda v: setattr(v.obs, "index", [f"x{i}" for i in range(v.n_obs)]),
        "obs drop inplace": lambda v: v.obs.drop(columns="score", inplace=True),
        "var column": lambda v: v.var.__setitem__("new", 1),
        "X set": lambda v: setattr(v, "X", np.zeros(v.shape)),
        "X item": lambda v: v.X.__setitem__((0, 0), 99),
        "layer item": lambda v: v.layers["dense"].__setitem__((0, 0), 99),
        "sparse layer item": lambda v: v.layers["counts"].__setitem__((0, 0), 99),
        "layers set": lambda v: v.layers.__setitem__("new", np.zeros(v.shape)),
        "layers del": lambda v: v.layers.__delitem__("counts"),
        "obsm set": lambda v: v.obsm.__setitem__("new", np.zeros((v.n_obs, 1))),
        "obsm del": lambda v: v.obsm.__delitem__("pca"),
        "obsm item": lambda v: v.obsm["pca"].__setitem__((0, 0), 99),
        "varm set": lambda v: v.varm.__setitem__("new", np.zeros((v.n_vars, 1))),
        "obsp item": lambda v: v.obsp["conn"].__setitem__((0, 0), 99),
        "uns set": lambda v: v.uns.__setitem__("new", 1),
        "uns del": lambda v: v.uns.__delitem__("a"),
        "uns nested": lambda v: v.uns["nested"].__setitem__("c", 2),
        "uns nested array": lambda v: v.uns["nested"]["b"].__setitem__(0, 99),
    }


MODS = modifications()


@pytest.mark.parametrize("name", list(MODS))
@pytest.mark.parametrize("index", [np.s_[1:4], np.s_[[0, 2, 4], :], np.s_[:, 1:3]])
def test_modifying_view_actualises_and_spares_parent(name, index):
    parent = ad.AnnData(**make_parts())
    reference = ad.AnnData(**make_parts())
    v = parent[index]
    with pytest.warns(ImplicitModificationWarning, match="initializing view as actual"):
        MODS[name](v)
    assert not v.is_view
    assert_same(parent, reference)
    assert parent.uns["a"] == 1 and set(parent.uns["nested"]) == {"b"}
    np.testing.assert_array_equal(parent.uns["nested"]["b"], np.arange(3))


def test_modification_lands_in_actualised_object():
    parent = ad.AnnData(**make_parts())
    v = parent[1:3]
    with pytest.warns(ImplicitModificationWarning):
        v.obs["new"] = [5, 6]
    assert v.obs["new"].tolist() == [5, 6]
    w = parent[1:3]
    with pytest.warns(ImplicitModificationWarning):
        w.X[0, 0] = 123
    assert w.X[0, 0] == 123 and parent.X[1, 0] != 123
    u = parent[:2]
    with pytest.warns(ImplicitModificationWarning):
        u.uns["nested"]["c"] = 2
    assert u.uns["nested"]["c"] == 2 and "c" not in parent.uns["nested"]
    x = parent[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # arithmetic on a view's X is not a modification
        doubled = x.X * 2
    np.testing.assert_array_equal(doubled, parent.X[:2] * 2)
    with pytest.warns(ImplicitModificationWarning):
        x.X += 1
    np.testing.assert_array_equal(x.X, parent.X[:2] + 1)


@pytest.mark.parametrize(
    "action",
    [
        lambda v: setattr(v, "obs_names", [f"x{i}" for i in range(v.n_obs)]),
        lambda v: setattr(v, "var_names", [f"y{i}" for i in range(v.n_vars)]),
        lambda v: setattr(v, "obs", pd.DataFrame(index=[f"x{i}" for i in range(v.n_obs)])),
        lambda v: setattr(v, "uns", {"z": 1}),
        lambda v: setattr(v, "obsm", {}),
        lambda v: delattr(v, "raw"),
    ],
)
def test_whole_element_setters_actualise_like_anndata(action):
    parent = ad.AnnData(**make_parts())
    reference = ad.AnnData(**make_parts())
    v = parent[1:4]
    action(v)  # anndata replaces whole elements of a view without a warning
    assert not v.is_view
    assert_same(parent, reference)


def test_copy_is_independent():
    parent = ad.AnnData(**make_parts())
    c = parent[:3].copy()
    assert not c.is_view
    c.X[0, 0] = -5
    c.obsm["pca"][0, 0] = -5
    c.uns["nested"]["b"][0] = -5
    assert parent.X[0, 0] != -5 and parent.obsm["pca"][0, 0] != -5
    assert parent.uns["nested"]["b"][0] == 0
    full = parent.copy()
    full.layers["counts"][0, 0] = 77
    assert parent.layers["counts"][0, 0] != 77
    assert type(c.X) is np.ndarray and type(c.layers["counts"]) is sparse.csr_matrix


def test_view_values_pickle_and_copy_as_plain():
    v = ad.AnnData(**make_parts())[:3]
    assert type(v.X.copy()) is np.ndarray
    assert type(copy.deepcopy(v.uns)) is dict
    assert type(pickle.loads(pickle.dumps(v.X))) is np.ndarray
    assert type(v.layers["counts"].copy()) is sparse.csr_matrix
    assert type(pd.DataFrame(v.obs).copy()) is pd.DataFrame
    roundtrip = pickle.loads(pickle.dumps(v))
    assert roundtrip.is_view and roundtrip.shape == (3, 4)


def test_inplace_subset():
    a = ad.AnnData(**make_parts())
    a._inplace_subset_obs([0, 1])
    a._inplace_subset_var(["g3"])
    assert a.shape == (2, 1) and not a.is_view
