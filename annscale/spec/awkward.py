"""Ragged arrays: ``awkward-array`` 0.1.0 (needs the optional ``awkward`` package).

A group with attributes ``form`` (the awkward Form as a JSON string) and ``length`` (number
of outer entries), and one ``array`` child per buffer of ``ak.to_buffers(ak.to_packed(a))``
(keys like ``node1-offsets``, ``node2-data``). Reading one without ``awkward`` installed
raises a :class:`~annscale.errors.FormatError` naming the element and the missing package.
"""

from __future__ import annotations

from typing import Any

from ..errors import FormatError
from ..storage.elements import Element, Group
from .registry import (
    IOSpec,
    ReadContext,
    WriteContext,
    read_elem,
    register_reader,
    register_writer,
    write_elem,
)

__all__ = ["AWKWARD"]

AWKWARD = IOSpec("awkward-array", "0.1.0")


def _awkward(elem: Element) -> Any:
    try:
        import awkward as ak
    except ImportError:
        raise FormatError(
            "reading an 'awkward-array' element needs the 'awkward' package "
            "(pip install 'annscale[awkward]')",
            source=elem.source,
            element=elem.path,
        ) from None
    return ak


@register_reader("group", AWKWARD)
def read_awkward(elem: Element, ctx: ReadContext) -> Any:
    ak = _awkward(elem)
    attrs = elem.attrs
    buffers = {k: read_elem(elem[k], ctx) for k in elem.keys()}  # type: ignore[attr-defined]
    return ak.from_buffers(attrs["form"], int(attrs["length"]), buffers)


def write_awkward(group: Group, key: str, value: Any, ctx: WriteContext) -> Group:
    import awkward as ak

    form, length, buffers = ak.to_buffers(ak.to_packed(value))
    g = group.create_group(key)
    g.set_attrs({"length": int(length), "form": form.to_json()})
    for k, v in buffers.items():
        write_elem(g, k, v, ctx)
    return g


def _is_awkward_array(value: Any) -> bool:
    # checked by type name so that importing annscale does not import awkward
    cls = type(value)
    return cls.__module__.split(".")[0] == "awkward" and cls.__name__ == "Array"


register_writer(object, spec=AWKWARD, when=_is_awkward_array)(write_awkward)
