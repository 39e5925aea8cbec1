"""Every exception and warning annscale raises.

All errors derive from :class:`AnnscaleError` and also from the builtin a user of
anndata would already catch (``ValueError``, ``KeyError``, ``OSError``), so existing
``except`` clauses keep working. Errors about stored data carry the file (``source``)
and the element path inside it (``element``) and name both in their message.
"""

from __future__ import annotations

__all__ = [
    "AnnscaleError",
    "StorageError",
    "FormatError",
    "UnknownEncodingError",
    "CorruptElementError",
    "ElementNotFoundError",
    "ShapeMismatchError",
    "NamesNotFoundError",
    "WriteConflictError",
    "ImplicitModificationWarning",
    "OldFormatWarning",
    "WriteWarning",
    "ExperimentalFeatureWarning",
]


class AnnscaleError(Exception):
    """Base class of every annscale error.

    Parameters
    ----------
    message
        What was wrong and what was expected.
    source
        The file or store URL the problem was found in, if any.
    element
        The element path inside that file (e.g. ``/X/indptr``), if any.
    """

    def __init__(self, message: str, *, source: str | None = None, element: str | None = None):
        self.message = message
        self.source = source
        self.element = element
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source is not None:
            where.append(f"file {self.source!r}")
        if self.element is not None:
            where.append(f"element {self.element!r}")
        if not where:
            return self.message
        return f"{self.message} ({', '.join(where)})"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self._render()

    def __reduce__(self):  # keep source/element when errors travel from dask workers
        return (_rebuild, (type(self), self.message, self.source, self.element))


def _rebuild(cls, message, source, element):
    return cls(message, source=source, element=element)


class StorageError(AnnscaleError, OSError):
    """A file or store cannot be opened or read: missing, truncated, not HDF5/zarr."""


class FormatError(AnnscaleError, ValueError):
    """Stored data does not follow the anndata on-disk format."""


class UnknownEncodingError(FormatError):
    """An element's ``encoding-type``/``encoding-version`` has no reader (or writer)."""


class CorruptElementError(FormatError):
    """An element is internally inconsistent (e.g. ``indptr`` not monotonic)."""


class ElementNotFoundError(AnnscaleError, KeyError):
    """A required element or child is missing from a store."""


class ShapeMismatchError(AnnscaleError, ValueError):
    """An array's shape disagrees with the object it is attached to."""


class NamesNotFoundError(AnnscaleError, KeyError):
    """Indexing by names that are not in ``obs_names``/``var_names``."""


class WriteConflictError(AnnscaleError, OSError):
    """A write would overwrite something it is still reading, or a target is in use."""


class ImplicitModificationWarning(UserWarning):
    """A view was modified and therefore turned into an independent copy."""


class OldFormatWarning(UserWarning):
    """An element was read from a legacy (pre-0.8) layout without encoding attributes."""


class WriteWarning(UserWarning):
    """Something could not be written as asked (anndata's ``WriteWarning``)."""


class ExperimentalFeatureWarning(Warning):
    """An experimental feature was used (anndata's ``ExperimentalFeatureWarning``)."""
