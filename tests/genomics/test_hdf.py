"""``read_hdf``: a dataset of a plain HDF5 file as X, as ``anndata.io.read_hdf``."""

from __future__ import annotations

import warnings

import anndata.io
import h5py
import numpy as np
import pandas as pd
import pytest
from genomics_compare import assert_same

import annscale as ad
from annscale.errors import ElementNotFoundError, FormatError


@pytest.fixture
def h5(tmp_path):
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        f["X"] = np.arange(12, dtype="f4").reshape(3, 4)
        f["ints"] = np.arange(6, dtype="i8").reshape(2, 3)
        f["row_names"] = np.array(["r1", "r2", "r3"], dtype=h5py.string_dtype())
        f["col_names"] = np.array([b"a", b"b", b"c", b"d"])
        f["vector"] = np.arange(3)
    return path


def _theirs(path, key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = anndata.io.read_hdf(path, key)
    # anndata keeps stored byte strings as bytes names; annscale decodes them
    for attr in ("obs_names", "var_names"):
        names = getattr(out, attr)
        setattr(out, attr, [n.decode() if isinstance(n, bytes) else n for n in names])
    return out


def test_matches_anndata_with_names(h5):
    ours = ad.io.read_hdf(h5, "X")
    assert ours.obs_names.tolist() == ["r1", "r2", "r3"]
    assert ours.var_names.tolist() == list("abcd")
    assert_same(ours, _theirs(h5, "X"))


def test_matches_anndata_without_names(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["m"] = np.arange(6, dtype="i8").reshape(2, 3)
    ours = ad.read_hdf(path, "m")
    assert ours.X.dtype == np.int64
    assert_same(ours, _theirs(path, "m"))
    assert isinstance(ours.obs.index, pd.Index) and ours.obs_names.tolist() == ["0", "1"]


def test_errors_name_file_and_key(h5):
    with pytest.raises(ValueError, match="stores the following sheets"):
        ad.read_hdf(h5, "")
    with pytest.raises(ElementNotFoundError, match="missing 'nope'") as e:
        ad.read_hdf(h5, "nope")
    assert str(h5) in str(e.value)
    with pytest.raises(FormatError, match="2-d dataset"):
        ad.read_hdf(h5, "vector")
    with pytest.raises(ValueError, match="rows"):  # names do not fit the matrix
        ad.read_hdf(h5, "ints")
