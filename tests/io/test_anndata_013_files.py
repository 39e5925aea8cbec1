"""Files as anndata 0.13 writes them (with pandas 3) read correctly.

anndata 0.13 is not installed (0.12.19 is the test peer), so the files are made the way 0.13
makes them (``docs/anndata-format.md`` §1.3-1.8b): anndata 0.12.19 writes a zarr v3 store
with automatic sharding (the 0.13 default), then the string index and string columns are
rewritten as 0.13 + pandas 3 writes them: ``nullable-string-array`` with ``na-value: "NaN"``
(pandas 3 ``str`` dtype), sharded like every other array, and the metadata consolidated
inline again.
"""

from __future__ import annotations

import json
import warnings

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import zarr

import annscale

OBS_LABEL = ["a", None, "c", "a", "b", None]
VAR_NOTE = ["x", "y", None, "z"]


def _nullable_strings(group, key: str, values: list, na_value: str, *, sharded: bool) -> None:
    """Write ``values`` as anndata 0.13 writes a pandas 3 ``str`` array."""
    if key in group:
        del group[key]
    mask = np.array([v is None for v in values])
    strings = np.array(["" if v is None else v for v in values], dtype=object)
    attrs = {"encoding-type": "nullable-string-array", "encoding-version": "0.1.0"}
    if isinstance(group, h5py.Group):
        g = group.create_group(key)
        g.create_dataset("values", data=strings, dtype=h5py.string_dtype("utf-8"))
        g.create_dataset("mask", data=mask)
    else:
        g = group.create_group(key)
        kw = {"shards": (len(values),)} if sharded else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = g.create_array("values", shape=strings.shape, dtype=str, chunks=(1,), **kw)
            m = g.create_array("mask", shape=mask.shape, dtype=bool, chunks=(1,), **kw)
        v[...] = strings
        m[...] = mask
    g["values"].attrs.update({"encoding-type": "string-array", "encoding-version": "0.2.0"})
    g["mask"].attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    g.attrs.update({**attrs, "na-value": na_value})


def _dataframes(root, path=""):
    """Paths of every dataframe group below ``root``."""
    for key in root.keys() if hasattr(root, "keys") else ():
        child = root[key]
        if not hasattr(child, "keys"):
            continue
        sub = f"{path}/{key}"
        if child.attrs.get("encoding-type") == "dataframe":
            yield sub
        yield from _dataframes(child, sub)


def _as_013(root, *, sharded: bool) -> None:
    """Every string index and string column becomes a pandas 3 ``str`` array; adds two
    columns with missing values (one with ``na-value: "NA"``, pandas' ``string``)."""
    for path in list(_dataframes(root)):
        frame = root[path.lstrip("/")]
        for key in [frame.attrs["_index"], *frame.attrs["column-order"]]:
            if frame[key].attrs.get("encoding-type") == "string-array":
                values = [str(v) for v in anndata.io.read_elem(frame[key])]
                _nullable_strings(frame, key, values, "NaN", sharded=sharded)
    _nullable_strings(root["obs"], "label", OBS_LABEL, "NaN", sharded=sharded)
    _nullable_strings(root["var"], "note", VAR_NOTE, "NA", sharded=sharded)
    for frame, col in (("obs", "label"), ("var", "note")):
        order = [str(c) for c in root[frame].attrs["column-order"]] + [col]
        root[frame].attrs["column-order"] = order


@pytest.fixture(params=["zarr3-sharded", "h5ad"])
def file_013(request, tmp_path, compat):
    """(path of the 0.13-style file, what anndata 0.12.19 reads from the file it wrote)."""
    adata = compat.build(anndata, compat.rich_parts())
    if request.param == "h5ad":
        path = tmp_path / "a013.h5ad"
        adata.write_h5ad(path)
        expected = compat.read_with(anndata, path)
        with h5py.File(path, "r+") as f:
            _as_013(f, sharded=False)
        return path, expected
    path = tmp_path / "a013.zarr"
    with (
        anndata.settings.override(
            zarr_write_format=3, auto_shard_zarr_v3=True, allow_write_nullable_strings=True
        ),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        adata.write_zarr(path)
        expected = compat.read_with(anndata, path)
        root = zarr.open_group(path, mode="r+", use_consolidated=False)
        _as_013(root, sharded=True)
        zarr.consolidate_metadata(path)
    meta = json.loads((path / "X" / "data" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "sharding_indexed"
    assert "consolidated_metadata" in json.loads((path / "zarr.json").read_text())
    return path, expected


def _frames(adata):
    yield adata.obs
    yield adata.var
    if adata.raw is not None:
        yield adata.raw.var
    yield from (v for v in adata.obsm.values() if isinstance(v, pd.DataFrame))
    yield from (v for v in adata.uns.values() if isinstance(v, pd.DataFrame))


def _strings_as_objects(adata) -> None:
    """pandas 3 ``str`` indexes/columns as the object strings anndata 0.12 gives (in place)."""
    for df in _frames(adata):
        df.index = pd.Index(df.index.astype(object), name=df.index.name)
        for col in df.columns:
            if isinstance(df[col].dtype, pd.StringDtype):
                assert df[col].dtype.na_value is np.nan, col
                df[col] = df[col].astype(object)


def test_reads_0_13_files(file_013, compat):
    path, expected = file_013
    got = compat.read_with(annscale, path)
    assert got.obs_names.tolist() == [f"cell{i}" for i in range(6)]
    assert got.var_names.tolist() == [f"gene{j}" for j in range(4)]
    assert got.var.index.name == "gene_symbol"
    assert got.obs["str_unique"].dtype == pd.StringDtype(na_value=np.nan)
    # pandas 3 ``str`` semantics (na-value NaN) and pandas' ``string`` (na-value NA)
    label, note = got.obs.pop("label"), got.var.pop("note")
    assert label.dtype == pd.StringDtype(na_value=np.nan)
    assert label.isna().tolist() == [v is None for v in OBS_LABEL]
    assert label.dropna().tolist() == [v for v in OBS_LABEL if v is not None]
    assert note.dtype == pd.StringDtype() and note.isna().tolist() == [False, False, True, False]
    assert note[note.notna()].tolist() == ["x", "y", "z"]
    _strings_as_objects(got)
    compat.assert_adata_equal(got, expected)


def test_lazy_read_of_0_13_files(file_013):
    path, expected = file_013
    lazy = annscale.read_lazy(path)
    np.testing.assert_array_equal(lazy.X.compute().toarray(), expected.X.toarray())
    np.testing.assert_array_equal(lazy.layers["dense"].compute(), expected.layers["dense"])
    assert lazy.obs["label"].dtype == pd.StringDtype(na_value=np.nan)
    assert lazy.obs_names.tolist() == expected.obs_names.tolist()
