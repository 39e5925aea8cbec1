"""Write-out engine: parallel, bounded-memory, resumable writes of dask arrays.

Building blocks the format writers call (they stamp encoding attributes and publish the
staged store atomically):

* :func:`write_dask_zarr` (:mod:`.zarr`): one task graph, tasks own whole chunks/shards;
* :func:`write_dask_h5` (:mod:`.h5`): parallel compute, one in-order writer, bounded lookahead;
* :class:`Manifest` (:mod:`.manifest`): records completed tasks so zarr writes can resume;
* :func:`compute` (:mod:`annscale.scheduler`): runs graphs on annscale's scheduler with progress;
* :mod:`.plan`: the pure planning functions (offsets, dtypes, chunk ownership).
"""

from ..scheduler import compute
from .h5 import write_dask_h5
from .manifest import Manifest
from .zarr import sparse_format, write_dask_zarr

__all__ = ["Manifest", "compute", "sparse_format", "write_dask_h5", "write_dask_zarr"]
