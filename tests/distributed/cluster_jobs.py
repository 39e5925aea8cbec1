"""The concatenation write the fault-tolerance tests run (also as a separate client process).

``python cluster_jobs.py ADDRESS OUT SAMPLE...`` writes the lazy concatenation of the samples' ``X``
to the zarr store ``OUT`` on the cluster at ``ADDRESS``, recording completed tasks in the
store's manifest; it is what the client-loss test kills.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import annscale as ad
from annscale.storage.open import open_root
from annscale.writeout import Manifest, write_dask_zarr

ROWS_PER_CHUNK = 20
"""Rows per lazy chunk of each input (small, so the job has many tasks)."""

ZARR_CHUNK = 400
"""Elements per zarr chunk of data/indices/indptr."""

CONCAT = {"join": "outer", "label": "sample", "index_unique": "-"}


def lazy_concat(paths: Sequence[str], rows: int | None = ROWS_PER_CHUNK):
    """The samples opened lazily (``rows`` per chunk; None: ``settings.chunk_target_bytes``)
    and concatenated; nothing is read but metadata."""
    return ad.concat([ad.read_lazy(p, chunks=rows) for p in paths], **CONCAT)


def write_x(
    paths: Sequence[str],
    out: str,
    *,
    rows: int | None = ROWS_PER_CHUNK,
    resume: bool = False,
    compute: bool = True,
):
    """Write ``X`` of the lazy concatenation as a CSR element ``X`` of zarr store ``out``.

    A fresh write creates the store; ``resume=True`` reuses it and its manifest. With
    ``compute=False`` returns the write's graph (a ``Delayed``) instead of running it.
    """
    x = lazy_concat(paths, rows).X
    if not resume:
        with open_root(out, "w", kind="zarr", zarr_format=3):
            pass
    manifest = Manifest.in_staging(out, resume=resume)
    graph = write_dask_zarr(
        out, "/", "X", x, zarr_format=3, chunks=ZARR_CHUNK, manifest=manifest, compute=compute
    )
    with open_root(out, "r+", kind="zarr") as root:
        root["X"].set_attrs({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
    return graph


def main(argv: list[str]) -> None:
    address, out, *paths = argv
    ad.settings.scheduler = address
    ad.settings.progress = False
    write_x(paths, out)


if __name__ == "__main__":
    main(sys.argv[1:])
