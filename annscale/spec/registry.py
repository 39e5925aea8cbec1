"""The registry of element readers and writers, keyed by encoding type and version.

Each encoding of the anndata on-disk format has one reader and one writer, registered
here by the encoding modules (``spec/arrays.py``, ``spec/sparse.py``, ``spec/frames.py``,
``spec/containers.py``, ...). This module:

* dispatches reads on ``(node kind, IOSpec(encoding-type, encoding-version))`` and sends
  elements without encoding attributes to the legacy upgrader;
* dispatches writes on the Python type of the value (MRO order, then a per-writer
  predicate), and stamps ``encoding-type``/``encoding-version`` *after* the element is
  written, without overwriting attributes the writer set (as anndata does);
* wraps any unexpected exception from a reader in a :class:`FormatError` that names the
  file and the element path, so users never see a bare ``KeyError`` from deep inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import AnnscaleError, FormatError, UnknownEncodingError
from ..storage.elements import Array, Element, Group

__all__ = [
    "IOSpec",
    "ReadContext",
    "WriteContext",
    "register_reader",
    "register_writer",
    "read_elem",
    "write_elem",
    "get_spec",
    "registered_specs",
]

NodeKind = Literal["group", "array"]


@dataclass(frozen=True)
class IOSpec:
    encoding_type: str
    encoding_version: str

    def __str__(self) -> str:
        return f"{self.encoding_type} {self.encoding_version}"


@dataclass
class ReadContext:
    """Options for one read call, passed down to every element reader."""

    #: mapping from element path to a callback used by the legacy layer (unused by most readers)
    options: dict[str, Any] = field(default_factory=dict)
    #: ``fn(elem, ctx)`` called instead of the reader for every element (``read_dispatched``)
    dispatch: Callable[[Element, ReadContext], Any] | None = None


@dataclass
class WriteContext:
    """Options for one write call, passed down to every element writer.

    ``dataset_options`` go to ``Group.create_array`` for every non-scalar array
    (``compression``, ``compression_opts``, ``chunks``, ``shards``, ``compressors``).
    """

    dataset_options: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    #: ``fn(group, key, value, ctx)`` called instead of the writer (``write_dispatched``)
    dispatch: Callable[[Group, str, Any, WriteContext], Any] | None = None


Reader = Callable[[Element, ReadContext], Any]
Writer = Callable[[Group, str, Any, WriteContext], Element]

_READERS: dict[tuple[NodeKind, IOSpec], Reader] = {}
_WRITERS: dict[type, list[tuple[Callable[[Any], bool], IOSpec, Writer]]] = {}
_LEGACY_READER: list[Reader] = []


def register_reader(kind: NodeKind, spec: IOSpec) -> Callable[[Reader], Reader]:
    """Register ``fn(elem, ctx) -> value`` as the reader of ``spec`` stored as ``kind``."""

    def deco(fn: Reader) -> Reader:
        _READERS[(kind, spec)] = fn
        return fn

    return deco


def register_writer(
    *types: type, spec: IOSpec, when: Callable[[Any], bool] | None = None
) -> Callable[[Writer], Writer]:
    """Register ``fn(group, key, value, ctx) -> element`` as the writer of ``types``.

    ``when`` narrows the writer to values it accepts (e.g. arrays of a dtype kind). The
    first registered writer whose ``when`` accepts the value wins for a given type.
    """

    def deco(fn: Writer) -> Writer:
        for t in types:
            _WRITERS.setdefault(t, []).append((when or (lambda v: True), spec, fn))
        return fn

    return deco


def register_legacy_reader(fn: Reader) -> Reader:
    """Register the reader for elements without encoding attributes (old files)."""
    _LEGACY_READER[:] = [fn]
    return fn


def registered_specs() -> list[tuple[NodeKind, IOSpec]]:
    return sorted(_READERS, key=lambda k: (k[1].encoding_type, k[1].encoding_version, k[0]))


def get_spec(elem: Element) -> IOSpec:
    """The element's ``IOSpec``; ``IOSpec("", "")`` when it has no encoding attributes."""
    t = elem.attr("encoding-type", "")
    v = elem.attr("encoding-version", "")
    if isinstance(t, bytes):
        t = t.decode()
    if isinstance(v, bytes):
        v = v.decode()
    return IOSpec(str(t), str(v))


def read_elem(elem: Element, ctx: ReadContext | None = None) -> Any:
    """Read one element (recursively) into memory (through ``ctx.dispatch`` when set)."""
    ctx = ctx or ReadContext()
    if ctx.dispatch is not None:
        return ctx.dispatch(elem, ctx)
    return read_elem_direct(elem, ctx)


def read_elem_direct(elem: Element, ctx: ReadContext) -> Any:
    """Read one element with its registered reader (children go through :func:`read_elem`)."""
    spec = get_spec(elem)
    kind: NodeKind = "group" if elem.is_group else "array"
    if spec.encoding_type == "":
        if not _LEGACY_READER:
            raise UnknownEncodingError(
                "element has no encoding attributes", source=elem.source, element=elem.path
            )
        fn = _LEGACY_READER[0]
    else:
        fn = _READERS.get((kind, spec))
        if fn is None:
            known = sorted(
                {s.encoding_version for (_, s) in _READERS if s.encoding_type == spec.encoding_type}
            )
            hint = (
                f"known versions of {spec.encoding_type!r}: {known}"
                if known
                else "this encoding type is unknown to annscale"
            )
            raise UnknownEncodingError(
                f"no reader for encoding {spec.encoding_type!r} version "
                f"{spec.encoding_version!r} stored as {kind} ({hint}); the file may have been "
                "written by a newer anndata",
                source=elem.source,
                element=elem.path,
            )
    try:
        return fn(elem, ctx)
    except AnnscaleError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, OSError, AttributeError) as e:
        raise FormatError(
            f"cannot read element encoded as {spec or 'legacy'}: {type(e).__name__}: {e}",
            source=elem.source,
            element=elem.path,
        ) from e


def _find_writer(value: Any) -> tuple[IOSpec, Writer]:
    for t in type(value).__mro__:
        for when, spec, fn in _WRITERS.get(t, ()):
            if when(value):
                return spec, fn
    raise TypeError(
        f"annscale cannot write values of type {type(value).__module__}.{type(value).__qualname__}"
    )


def write_elem(group: Group, key: str, value: Any, ctx: WriteContext | None = None) -> Element:
    """Write ``value`` as child ``key`` of ``group`` and stamp its encoding attributes.

    An existing child ``key`` is replaced. With ``ctx.dispatch`` set, that is called instead.
    """
    ctx = ctx or WriteContext()
    if ctx.dispatch is not None:
        return ctx.dispatch(group, key, value, ctx)
    return write_elem_direct(group, key, value, ctx)


def write_elem_direct(group: Group, key: str, value: Any, ctx: WriteContext) -> Element:
    """Write with the registered writer (children go through :func:`write_elem`)."""
    try:
        spec, fn = _find_writer(value)
    except TypeError as e:
        raise TypeError(f"{e} (writing {group.path.rstrip('/')}/{key} in {group.source})") from None
    if key in group:
        group.delete(key)
    elem = fn(group, key, value, ctx)
    if elem is not None:  # None: a write_dispatched callback chose not to write
        stamp(elem, spec)
    return elem


def stamp(elem: Element, spec: IOSpec) -> None:
    """Set the encoding attributes unless the writer already set them."""
    attrs = elem.handle.attrs
    new = {}
    if "encoding-type" not in attrs:
        new["encoding-type"] = spec.encoding_type
    if "encoding-version" not in attrs:
        new["encoding-version"] = spec.encoding_version
    if new:
        elem.set_attrs(new)


def expect_array(elem: Element, what: str) -> Array:
    if elem.is_group:
        raise FormatError(
            f"expected {what} to be an array, found a group", source=elem.source, element=elem.path
        )
    return elem  # type: ignore[return-value]
