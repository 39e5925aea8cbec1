"""The lazy engine: chunk planning, chunk readers, sparse chunk types and reductions.

``annscale.read_lazy`` (in :mod:`annscale.lazy.open`) opens a store with X, layers, obsm,
obsp and raw.X as deferred sources that become chunked dask arrays on first access.
"""

from __future__ import annotations

from .reductions import count_nonzero
from .sparse_chunks import CSCChunk, CSRChunk

__all__ = ["count_nonzero", "CSRChunk", "CSCChunk"]
