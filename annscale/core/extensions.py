"""``register_anndata_namespace``: user-defined accessors on :class:`~annscale.AnnData`.

As in anndata (via ``scverse_misc``)::

    @annscale.register_anndata_namespace("spatial")
    class Spatial:
        def __init__(self, adata: AnnData):
            self._adata = adata

    adata.spatial  # a Spatial(adata), created on first access and cached on the object

The name may not be an existing attribute of ``AnnData`` (``AttributeError``); registering a
name twice replaces the first namespace with a ``UserWarning``. The class's ``__init__`` must
take the object as a second parameter named ``adata`` annotated as ``AnnData``.
"""

from __future__ import annotations

import inspect
import typing
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .anndata import AnnData

__all__ = ["register_anndata_namespace"]

NameSpT = TypeVar("NameSpT")

_RESERVED = frozenset(dir(AnnData))


class _Accessor:
    """Non-data descriptor: builds the namespace on first access, then caches it."""

    def __init__(self, name: str, ns_class: type) -> None:
        self._name = name
        self._ns = ns_class

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self._ns
        ns = self._ns(instance)
        instance.__dict__[self._name] = ns
        return ns


def _check_signature(ns_class: type) -> None:
    params = list(inspect.signature(ns_class.__init__).parameters.values())
    if len(params) < 2:
        raise TypeError(
            "Namespace initializer must accept a AnnData instance as the second parameter."
        )
    param = params[1]
    if param.annotation is inspect.Parameter.empty:
        raise AttributeError(
            "Namespace initializer's second parameter must be annotated as the 'AnnData' class, "
            "got empty annotation."
        )
    try:
        annotation = typing.get_type_hints(ns_class.__init__).get(param.name, param.annotation)
    except NameError:
        annotation = param.annotation
    problems = []
    if param.name != "adata":
        problems.append(f"must be named 'adata', got {param.name!r}")
    if annotation is not AnnData and annotation != "AnnData":
        shown = getattr(annotation, "__name__", str(annotation))
        problems.append(f"must be annotated as the 'AnnData' class, got {shown!r}")
    if problems:
        raise TypeError("Namespace initializer's second parameter " + " and ".join(problems) + ".")


def register_anndata_namespace(name: str) -> Callable[[type[NameSpT]], type[NameSpT]]:
    """Register the decorated class as namespace ``name`` on every :class:`AnnData`."""

    def decorator(ns_class: type[NameSpT]) -> type[NameSpT]:
        _check_signature(ns_class)
        if name in _RESERVED:
            raise AttributeError(f"cannot override reserved attribute {name!r}")
        if hasattr(AnnData, name):
            warnings.warn(
                f"Overriding existing custom namespace {name!r} (on 'AnnData')",
                UserWarning,
                stacklevel=2,
            )
        setattr(AnnData, name, _Accessor(name, ns_class))
        return ns_class

    return decorator
