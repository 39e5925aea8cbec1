from __future__ import annotations

import pickle

import pytest

import annscale
from annscale import errors
from annscale.errors import CorruptElementError, ElementNotFoundError, FormatError


def test_settings_override_validate_and_reset():
    s = annscale.settings
    assert s.zarr_write_format in (2, 3)
    with s.override(zarr_write_format=2, progress=False):
        assert s.zarr_write_format == 2 and s.progress is False
    assert s.progress is True
    with pytest.raises(ValueError, match="zarr_write_format"):
        s.zarr_write_format = 4
    with pytest.raises(AttributeError, match="no setting"):
        s.not_a_setting = 1
    with pytest.raises(AttributeError):
        s.not_a_setting  # noqa: B018


def test_errors_subclass_builtins_and_name_the_place():
    e = CorruptElementError("indptr is not monotonic", source="a.h5ad", element="/X/indptr")
    assert isinstance(e, ValueError) and isinstance(e, FormatError)
    assert isinstance(e, errors.AnnscaleError)
    assert str(e) == "indptr is not monotonic (file 'a.h5ad', element '/X/indptr')"
    k = ElementNotFoundError("missing 'obs'", source="b.zarr", element="/")
    assert isinstance(k, KeyError)
    assert str(k) == "missing 'obs' (file 'b.zarr', element '/')"  # not repr-quoted
    back = pickle.loads(pickle.dumps(e))  # errors travel from dask workers
    assert type(back) is CorruptElementError and back.element == "/X/indptr" and str(back) == str(e)
