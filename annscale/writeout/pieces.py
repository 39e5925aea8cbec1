"""Partial-chunk pieces handed from sparse block tasks to merge tasks, through storage.

A block task writes the zarr chunks lying wholly inside its range of ``data``/``indices``/
``indptr``; its leading and trailing partial chunks (pieces) wait for the neighbouring blocks'
pieces, and a merge task writes each shared chunk once (see :mod:`annscale.writeout.zarr`).

Held in memory, pieces pile up: schedulers do not run blocks in storage order (dask's
ordering interleaves the inputs of a lazy concatenation), so up to two chunks per finished
block wait for a neighbour that has not run yet. Measured on 20 vs 40 concatenated samples
(2 M nonzeros each, chunks of 2**20 elements): the write's own peak grew from +350 to
+600 MiB. So pieces go to storage instead: one small ``.npz`` file per piece under
:data:`PIECES_DIR` inside the (staging) store, which every worker can reach because it
holds the store itself. A merge task loads its pieces, writes the chunk, then deletes them;
the graph's last task removes the folder. Memory per task: one block, or one chunk.

A block task saves its pieces before it is recorded as done, so a resumed write hands the
saved pieces of recorded blocks to the pending merges without computing those blocks again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from ..storage.location import Location

__all__ = [
    "PIECES_DIR",
    "PieceRef",
    "piece_ref",
    "save_piece",
    "load_piece",
    "remove_piece",
    "remove_pieces",
    "spillable",
]

PIECES_DIR = ".annscale-pieces"
"""Folder of the staging store holding pieces between block and merge tasks."""


@dataclass(frozen=True)
class PieceRef:
    """Where a piece was saved: file ``url`` of ``location``'s filesystem."""

    location: Location
    path: str


def spillable(location: Location) -> bool:
    """Pieces can be saved beside the arrays (a directory or prefix, not a zip file)."""
    return not location.path.endswith(".zip")


def _folder(location: Location, element: str) -> str:
    return f"{location.path.rstrip('/')}/{PIECES_DIR}/{element.strip('/')}"


def piece_ref(location: Location, element: str, name: str) -> PieceRef:
    """Where piece ``name`` of ``element`` is saved (names are deterministic, so a resumed
    write finds the pieces of blocks an interrupted one finished)."""
    return PieceRef(location, f"{_folder(location, element)}/{name}.npz")


def save_piece(
    location: Location, element: str, name: str, arrays: tuple[np.ndarray, ...]
) -> PieceRef:
    """Write ``arrays`` as piece ``name`` of ``element``; returns where."""
    fs = location.filesystem()
    ref = piece_ref(location, element, name)
    path = ref.path
    buf = io.BytesIO()
    np.savez(buf, *arrays)
    if location.is_local:
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, buf.getvalue())
    return ref


def load_piece(ref: PieceRef) -> tuple[np.ndarray, ...]:
    """The arrays of a saved piece, in the order they were saved."""
    with np.load(io.BytesIO(ref.location.filesystem().cat_file(ref.path))) as z:
        return tuple(z[f"arr_{i}"] for i in range(len(z.files)))


def remove_piece(ref: PieceRef) -> None:
    ref.location.filesystem().rm_file(ref.path)


def remove_pieces(location: Location, element: str) -> None:
    """Remove the pieces folder of ``element`` (and the pieces root when empty)."""
    fs = location.filesystem()
    folder = _folder(location, element)
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    root = f"{location.path.rstrip('/')}/{PIECES_DIR}"
    try:
        if location.is_local and fs.exists(root) and not fs.ls(root):
            fs.rmdir(root)
    except OSError:
        pass  # another element's pieces are still there: its own last task removes it
