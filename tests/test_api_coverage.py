"""annscale is a drop-in for anndata: every public name of anndata exists in annscale, and
every public method of ``anndata.AnnData``/``Raw`` and function of ``anndata.io`` accepts the
same arguments (parameter names, positions, defaults) in annscale.

Names deliberately left out are listed below, each with the reason.
"""

from __future__ import annotations

import inspect
import warnings

import anndata
import anndata.abc
import anndata.experimental
import anndata.io
import anndata.typing
import pytest

import annscale
import annscale.abc
import annscale.experimental
import annscale.io
import annscale.typing

# name in dir(anndata) -> why annscale does not have it
NOT_IN_ANNSCALE = {
    "TYPE_CHECKING": "typing.TYPE_CHECKING imported by anndata's __init__, not API",
    "annotations": "the `from __future__ import annotations` feature object, not API",
    "module_get_attr_redirect": "anndata's internal helper for deprecated names (not in __all__)",
    "compat": "anndata's internal compatibility shims (not in __all__, undocumented)",
    "logging": "anndata's internal logging helpers (not in __all__, undocumented)",
    "utils": "anndata's internal utilities (not in __all__, undocumented)",
}

# name in anndata.experimental -> why annscale.experimental does not have it
NOT_IN_EXPERIMENTAL = {
    "AnnCollection": "superseded by annscale.read_collection (lazy, out-of-core concatenation)",
    "AnnLoader": "a PyTorch DataLoader over AnnCollection; annscale does not depend on torch",
    "Dataset2DIlocIndexer": "indexer of anndata's xarray-backed lazy frames; annscale's lazy "
    "obs/var are pandas DataFrames",
    "MappingProxyType": "types.MappingProxyType imported by anndata.experimental, not API",
    "TYPE_CHECKING": "typing.TYPE_CHECKING, not API",
    "annotations": "the __future__ feature object, not API",
    "module_get_attr_redirect": "anndata's internal helper for deprecated names",
    "backed": "anndata's private subpackage implementing read_lazy (xarray Dataset2D)",
    "merge": "anndata's subpackage implementing concat_on_disk",
    "multi_files": "anndata's subpackage implementing AnnCollection",
}


def public(module) -> set[str]:
    """Public names of ``module``; ``tests`` (anndata's own test helpers, an attribute of the
    package only once some test imported ``anndata.tests.helpers``) is not API."""
    return {n for n in dir(module) if not n.startswith("_") and n != "tests"}


def deprecated_names(module) -> set[str]:
    """Names anndata still resolves with a FutureWarning (``module._DEPRECATED``)."""
    return set(getattr(module, "_DEPRECATED", {}))


# ------------------------------------------------------------------------------ modules


def test_every_public_anndata_name_exists():
    names = public(anndata) | set(anndata.__all__) | deprecated_names(anndata)
    assert set(NOT_IN_ANNSCALE) <= names, "an exclusion no longer exists in anndata"
    missing = sorted(n for n in names - set(NOT_IN_ANNSCALE) if not hasattr(annscale, n))
    assert missing == []


def test_exclusions_are_really_not_anndata_api():
    assert not set(NOT_IN_ANNSCALE) & set(anndata.__all__)
    assert not set(NOT_IN_EXPERIMENTAL) & {"read_lazy", "concat_on_disk", "read_elem_lazy"}


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (anndata.io, annscale.io),
        (anndata.abc, annscale.abc),
        (anndata.typing, annscale.typing),
    ],
    ids=["io", "abc", "typing"],
)
def test_submodule_names_exist(theirs, ours):
    missing = sorted(n for n in theirs.__all__ if not hasattr(ours, n))
    assert missing == []
    assert set(theirs.__all__) <= set(dir(ours))


def test_experimental_names_exist():
    names = (public(anndata.experimental) | set(anndata.experimental.__all__)) - set(
        NOT_IN_EXPERIMENTAL
    )
    missing = sorted(n for n in names if not hasattr(annscale.experimental, n))
    assert missing == []
    assert set(NOT_IN_EXPERIMENTAL) <= names | set(NOT_IN_EXPERIMENTAL)
    assert set(NOT_IN_EXPERIMENTAL) <= public(anndata.experimental) | {"AnnLoader"}


@pytest.mark.parametrize("name", sorted(deprecated_names(anndata.experimental)))
def test_experimental_moved_names_warn_like_anndata(name):
    with pytest.warns(FutureWarning, match=f"Importing {name} from `annscale.experimental`"):
        value = getattr(annscale.experimental, name)
    new_home = anndata.experimental._DEPRECATED[name]  # e.g. "io.read_elem"
    module, attr = new_home.rsplit(".", 1)
    assert value is getattr(getattr(annscale, module), attr)


def test_top_level_names_are_the_submodule_ones():
    for name in anndata.io.__all__:
        if hasattr(anndata, name) or name in deprecated_names(anndata):
            assert getattr(annscale, name) is getattr(annscale.io, name), name
    assert annscale.experimental.read_lazy is annscale.read_lazy


def test_types_redirect_like_anndata():
    pytest.importorskip("scverse_misc")
    with pytest.warns(FutureWarning, match="ExtensionNamespace"):
        ours = annscale.types.ExtensionNamespace
    with pytest.warns(FutureWarning):
        assert ours is anndata.types.ExtensionNamespace


def test_warning_classes_match_anndata():
    for name in ("WriteWarning", "ExperimentalFeatureWarning", "ImplicitModificationWarning"):
        ours, theirs = getattr(annscale, name), getattr(anndata, name)
        assert [c.__name__ for c in ours.__mro__[1:]] == [c.__name__ for c in theirs.__mro__[1:]]


# ------------------------------------------------------------------------------ signatures

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _unwrap(fn):
    """anndata.io's write functions are ``(store, adata, *args, **kwargs)`` guards around
    the real function, held in their closure."""
    sig = inspect.signature(fn)
    kinds = {p.kind for p in sig.parameters.values()}
    if inspect.Parameter.VAR_POSITIONAL in kinds and fn.__closure__:
        inner = [c.cell_contents for c in fn.__closure__ if inspect.isfunction(c.cell_contents)]
        if inner:
            return inner[0]
    return fn


def assert_compatible(theirs, ours, where: str) -> None:
    """Every call valid for ``theirs`` binds the same way to ``ours``."""
    t = inspect.signature(_unwrap(theirs)).parameters
    o = inspect.signature(ours).parameters
    t_pos = [p for p in t.values() if p.kind in _POSITIONAL]
    o_pos = [p for p in o.values() if p.kind in _POSITIONAL]
    assert [p.name for p in o_pos[: len(t_pos)]] == [p.name for p in t_pos], where
    for p in o_pos[len(t_pos) :]:
        assert p.default is not inspect.Parameter.empty, f"{where}: extra positional {p.name}"
    o_kinds = {p.kind for p in o.values()}
    for p in t.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            assert inspect.Parameter.VAR_POSITIONAL in o_kinds, f"{where}: *{p.name}"
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            continue  # anndata forwards extra keywords; ours names the ones it supports
        elif p.kind is inspect.Parameter.KEYWORD_ONLY:
            assert p.name in o, f"{where}: keyword {p.name!r} missing"
            assert o[p.name].kind in (
                inspect.Parameter.KEYWORD_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            ), f"{where}: {p.name!r}"
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            if p.default is not inspect.Parameter.empty:
                assert o[p.name].default is not inspect.Parameter.empty, f"{where}: {p.name}"
    for p in o.values():
        if p.name not in t and p.kind is inspect.Parameter.KEYWORD_ONLY:
            assert p.default is not inspect.Parameter.empty, f"{where}: required {p.name!r}"


def _members(cls) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_"))


@pytest.mark.parametrize(
    ("theirs", "ours"), [(anndata.AnnData, annscale.AnnData), (anndata.Raw, annscale.Raw)]
)
def test_class_members_exist_with_compatible_signatures(theirs, ours):
    missing = [n for n in _members(theirs) if not hasattr(ours, n)]
    assert missing == []
    for name in _members(theirs):
        t = inspect.getattr_static(theirs, name)
        o = inspect.getattr_static(ours, name)
        if not (inspect.isfunction(t) or isinstance(t, staticmethod | classmethod)):
            # properties, anndata's aligned-mapping descriptors, class constants: data
            assert not inspect.isfunction(o), name
            continue
        assert callable(getattr(ours, name)), name
        assert_compatible(getattr(theirs, name), getattr(ours, name), f"{theirs.__name__}.{name}")


def test_constructor_signature():
    assert_compatible(anndata.AnnData.__init__, annscale.AnnData.__init__, "AnnData()")


@pytest.mark.parametrize("name", [*anndata.io.__all__, "read_h5ad", "read_zarr"])
def test_io_function_signatures(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(anndata.io, name)
    assert_compatible(theirs, getattr(annscale.io, name), f"io.{name}")


def test_experimental_function_parameters():
    for name in ("read_elem_lazy", "read_dispatched", "write_dispatched"):
        assert_compatible(
            getattr(anndata.experimental, name),
            getattr(annscale.experimental, name),
            f"experimental.{name}",
        )


@pytest.mark.parametrize("name", ["read_10x_h5", "read_10x_mtx"])
def test_scanpy_reader_signatures(name):
    """annscale's 10x readers take what scanpy's take (``sc.read_10x_*`` code keeps working)."""
    sc = pytest.importorskip("scanpy")
    assert_compatible(getattr(sc, name), getattr(annscale, name), f"scanpy.{name}")


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (anndata.concat, annscale.concat),
        (anndata.experimental.concat_on_disk, annscale.concat_on_disk),
        (anndata.experimental.read_lazy, annscale.experimental.read_lazy),
    ],
    ids=["concat", "concat_on_disk", "read_lazy"],
)
def test_lazy_and_concat_function_signatures(theirs, ours):
    assert_compatible(theirs, ours, theirs.__name__)
