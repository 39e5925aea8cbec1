"""Checking a store against the anndata on-disk format, element by element.

:class:`StoreChecker` walks every element and records :class:`Problem` s (the store is
not what the format says, or cannot be read) and notes (worth knowing, not wrong):

* encodings: every element's ``encoding-type``/``encoding-version`` is one the format
  defines for its node kind (group or array); required children and attributes exist;
* shapes: ``X`` and layers are ``n_obs x n_vars``, ``obsm``/``varm`` rows, ``obsp``/``varp``
  squares, ``raw`` against ``raw/var``, dataframe columns as long as their index;
* sparse matrices: ``indptr`` has ``major + 1`` entries, starts at 0, never decreases and
  ends at ``nnz``; ``indices`` are in ``[0, minor)``; ``data`` and ``indices`` have ``nnz``;
* categoricals: codes in ``[-1, n_categories)``; nullable arrays: values and mask agree;
* zarr chunks: every chunk (or shard) of the grid is stored. zarr omits chunks that equal
  the fill value, so a missing chunk is a problem only where that cannot be what was
  written (sparse ``data``/``indices``/``indptr``, string arrays); elsewhere it is a note.

Arrays are read in blocks of whole storage chunks of at most :data:`BLOCK_ELEMENTS`
elements, so memory stays bounded whatever the size of the store.
"""

from __future__ import annotations

import itertools
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..spec.registry import IOSpec, get_spec, registered_specs
from ..storage.elements import Array, Element, Group
from ..storage.location import Location
from .tree import CONTAINERS, SPARSE, axis_length

__all__ = ["Problem", "StoreChecker", "BLOCK_ELEMENTS"]

BLOCK_ELEMENTS = 1 << 22
"""Most elements of an array read at once (about 32 MiB of int64)."""

#: encodings an element that stores data may carry, besides legacy ones
_LEAF_GROUPS = frozenset(
    {"csr_matrix", "csc_matrix", "categorical", "awkward-array"}
    | {"nullable-integer", "nullable-boolean", "nullable-string-array"}
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store: the element path and what is wrong."""

    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.element}: {self.message}"


def _blocks(arr: Array) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, values)`` blocks of a 1-d array, aligned to its storage chunks."""
    n = arr.shape[0] if arr.shape else 0
    chunk = (arr.chunks or (n or 1,))[0] or 1
    step = max(chunk, BLOCK_ELEMENTS // chunk * chunk)
    for start in range(0, n, step):
        yield start, np.asarray(arr.read(slice(start, min(start + step, n))))


class StoreChecker:
    """Checks one open store (``root``) found at ``location``."""

    def __init__(self, root: Group, location: Location, kind: str):
        self.root = root
        self.location = location
        self.kind = kind  # "h5ad", "zarr" or "zip"
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.checked = 0
        self.legacy = "encoding-type" not in root.attrs
        self._known = set(registered_specs())
        self._zip_names: set[str] | None = None

    # ------------------------------------------------------------------ entry point

    def run(self) -> list[Problem]:
        """Check everything; returns (and keeps) the problems found."""
        spec = get_spec(self.root)
        if self.legacy:
            self.notes.append(
                "the root has no encoding attributes: a legacy (pre-0.8) layout, checked "
                "where the current format applies"
            )
        elif spec != IOSpec("anndata", "0.1.0"):
            self.problem("/", f"root encoding is {spec}, expected anndata 0.1.0")
        for key in ("obs", "var"):
            if key not in self.root:
                self.problem("/", f"missing {key!r}: every AnnData store has obs and var")
        n_obs = axis_length(self.root, "obs")
        n_vars = axis_length(self.root, "var")
        self._walk(self.root)
        self._check_slots(n_obs, n_vars)
        return self.problems

    def problem(self, element: str, message: str) -> None:
        self.problems.append(Problem(element.lstrip("/") or "/", message))

    def _guarded(self, elem: Element, fn, *args: Any) -> None:
        try:
            fn(elem, *args)
        except Exception as e:  # a read failing is itself what validate reports
            self.problem(elem.path, f"cannot be read: {getattr(e, 'message', None) or e}")

    # ------------------------------------------------------------------ walking

    def _walk(self, group: Group) -> None:
        try:
            keys = group.keys()
        except Exception as e:
            self.problem(group.path, f"cannot list children: {e}")
            return
        for key in keys:
            try:
                elem = group[key]
            except Exception as e:
                self.problem(f"{group.path.rstrip('/')}/{key}", f"cannot be opened: {e}")
                continue
            self.checked += 1
            self._guarded(elem, self._check_element)
            if elem.is_group and get_spec(elem).encoding_type in CONTAINERS:
                self._walk(elem)  # type: ignore[arg-type]

    def _check_element(self, elem: Element) -> None:
        spec = get_spec(elem)
        kind = "group" if elem.is_group else "array"
        if spec.encoding_type == "":
            if not self.legacy and not elem.is_group:
                self.problem(elem.path, "has no encoding attributes (encoding-type/-version)")
        elif (kind, spec) not in self._known:
            self.problem(
                elem.path,
                f"unknown encoding {spec.encoding_type!r} version {spec.encoding_version!r} "
                f"for a {kind} (no anndata reader)",
            )
            return
        if not elem.is_group:
            self._check_chunks(elem, spec)  # type: ignore[arg-type]
            if spec.encoding_type in ("numeric-scalar", "string") and elem.shape != ():  # type: ignore[union-attr]
                self.problem(elem.path, f"a {spec.encoding_type} must be 0-d, shape {elem.shape}")  # type: ignore[union-attr]
            if spec.encoding_type == "string-array" and not elem.is_string:  # type: ignore[union-attr]
                self.problem(elem.path, f"string-array with non-string dtype {elem.dtype}")  # type: ignore[union-attr]
            return
        check = {
            "dataframe": self._check_dataframe,
            "categorical": self._check_categorical,
            "csr_matrix": self._check_sparse,
            "csc_matrix": self._check_sparse,
        }.get(spec.encoding_type)
        if spec.encoding_type.startswith("nullable-"):
            check = self._check_nullable
        if check is not None:
            check(elem)  # type: ignore[arg-type]
        if spec.encoding_type in _LEAF_GROUPS:
            for key in elem.keys():  # type: ignore[union-attr]
                child = elem[key]  # type: ignore[index]
                if not child.is_group:
                    self._check_chunks(child, get_spec(child), part_of=spec.encoding_type)

    # ------------------------------------------------------------------ encodings

    def _require(self, group: Group, *keys: str) -> bool:
        missing = [k for k in keys if k not in group]
        for k in missing:
            self.problem(group.path, f"missing child {k!r} required by {get_spec(group)}")
        return not missing

    def _check_dataframe(self, group: Group) -> None:
        attrs = group.attrs
        index_key = attrs.get("_index")
        if not isinstance(index_key, str):
            self.problem(group.path, "dataframe without an '_index' attribute")
            return
        order = attrs.get("column-order")
        if order is None:
            self.problem(group.path, "dataframe without a 'column-order' attribute")
            order = []
        if not self._require(group, index_key, *order):
            return
        n = _length(group[index_key])
        for col in order:
            length = _length(group[col])
            if n is not None and length is not None and length != n:
                self.problem(f"{group.path}/{col}", f"column has {length} rows, the index has {n}")

    def _check_categorical(self, group: Group) -> None:
        if not self._require(group, "codes", "categories"):
            return
        codes, categories = group["codes"], group["categories"]
        n_cat = _length(categories) or 0
        if codes.is_group or np.dtype(codes.dtype).kind not in "iu":  # type: ignore[union-attr]
            self.problem(codes.path, "categorical codes must be an integer array")
            return
        for start, block in _blocks(codes):  # type: ignore[arg-type]
            bad = np.flatnonzero((block < -1) | (block >= n_cat))
            if len(bad):
                i = start + int(bad[0])
                self.problem(
                    codes.path,
                    f"code {int(block[bad[0]])} at position {i} is outside [-1, {n_cat}) "
                    f"({len(bad)} bad codes in this block)",
                )
                return

    def _check_nullable(self, group: Group) -> None:
        if not self._require(group, "values", "mask"):
            return
        values, mask = group["values"], group["mask"]
        if _length(values) != _length(mask):
            self.problem(
                group.path, f"values ({_length(values)}) and mask ({_length(mask)}) differ"
            )
        if not mask.is_group and np.dtype(mask.dtype).kind != "b":  # type: ignore[union-attr]
            self.problem(mask.path, f"mask must be boolean, not {mask.dtype}")  # type: ignore[union-attr]

    def _check_sparse(self, group: Group) -> None:
        spec = get_spec(group)
        shape = group.attrs.get("shape")
        if not (isinstance(shape, list) and len(shape) == 2):
            self.problem(group.path, f"{spec.encoding_type} needs a 'shape' attribute [rows, cols]")
            return
        if not self._require(group, "data", "indices", "indptr"):
            return
        data, indices, indptr = group["data"], group["indices"], group["indptr"]
        major, minor = (shape[0], shape[1]) if spec.encoding_type == "csr_matrix" else shape[::-1]
        nnz = data.shape[0]  # type: ignore[union-attr]
        if indices.shape[0] != nnz:  # type: ignore[union-attr]
            self.problem(group.path, f"data has {nnz} entries but indices {indices.shape[0]}")  # type: ignore[union-attr]
        if indptr.shape[0] != major + 1:  # type: ignore[union-attr]
            self.problem(
                indptr.path,
                f"has {indptr.shape[0]} entries, expected {major + 1} "  # type: ignore[union-attr]
                f"({'rows' if spec.encoding_type == 'csr_matrix' else 'columns'} + 1)",
            )
        self._check_indptr(indptr, nnz)  # type: ignore[arg-type]
        self._check_indices(indices, minor)  # type: ignore[arg-type]

    def _check_indptr(self, indptr: Array, nnz: int) -> None:
        previous = None
        last = None
        for start, block in _blocks(indptr):
            if start == 0 and len(block) and block[0] != 0:
                self.problem(indptr.path, f"starts at {int(block[0])}, expected 0")
            joined = block if previous is None else np.concatenate([[previous], block])
            drops = np.flatnonzero(np.diff(joined.astype(np.int64)) < 0)
            if len(drops):
                i = start + int(drops[0]) - (0 if previous is None else 1)
                self.problem(
                    indptr.path,
                    f"decreases at position {i + 1}: {int(joined[drops[0]])} -> "
                    f"{int(joined[drops[0] + 1])} (indptr must never decrease)",
                )
                return
            if len(block):
                previous = last = block[-1]
        if last is not None and int(last) != nnz:
            self.problem(indptr.path, f"ends at {int(last)}, expected nnz = {nnz}")

    def _check_indices(self, indices: Array, minor: int) -> None:
        for start, block in _blocks(indices):
            if not len(block):
                continue
            bad = np.flatnonzero((block < 0) | (block >= minor))
            if len(bad):
                self.problem(
                    indices.path,
                    f"index {int(block[bad[0]])} at position {start + int(bad[0])} is outside "
                    f"[0, {minor}) ({len(bad)} out of range in this block)",
                )
                return

    # ------------------------------------------------------------------ chunks

    def _stored_keys(self, path: str) -> set[str]:
        """Keys stored under an array's path, relative to it."""
        prefix = path.strip("/")
        if self.kind == "zip":
            if self._zip_names is None:
                with zipfile.ZipFile(self.location.path) as zf:
                    self._zip_names = set(zf.namelist())
            return {n[len(prefix) + 1 :] for n in self._zip_names if n.startswith(prefix + "/")}
        fs = self.location.filesystem()
        base = f"{self.location.path.rstrip('/')}/{prefix}"
        return {p[len(base) + 1 :] for p in fs.find(base)}

    def _check_chunks(self, arr: Array, spec: IOSpec, part_of: str | None = None) -> None:
        if self.kind == "h5ad" or arr.ndim == 0 or arr.size == 0:
            return
        handle = arr.handle
        grid = getattr(handle, "shards", None) or handle.chunks
        counts = [math.ceil(s / c) for s, c in zip(arr.shape, grid)]
        stored = self._stored_keys(arr.path)
        missing = [
            key
            for coords in itertools.product(*(range(c) for c in counts))
            if (key := handle.metadata.encode_chunk_key(coords)) not in stored
        ]
        if not missing:
            return
        what = (
            f"{len(missing)} of {math.prod(counts)} chunks are not stored (first: {missing[0]!r})"
        )
        if part_of in SPARSE or arr.is_string:
            self.problem(arr.path, f"{what}; they would read as the fill value")
        else:
            self.notes.append(
                f"{arr.path.lstrip('/')}: {what}; zarr omits chunks equal to the fill value "
                f"({handle.metadata.fill_value!r}), so this is normal for such regions"
            )

    # ------------------------------------------------------------------ shapes

    def _check_slots(self, n_obs: int | None, n_vars: int | None) -> None:
        root = self.root

        def expect(path: str, dims: tuple[int | None, ...], what: str) -> None:
            elem = root[path]
            shape = _shape(elem)
            if shape is None:
                return
            for axis, (got, want) in enumerate(zip(shape, dims)):
                if want is not None and got != want:
                    self.problem(
                        path,
                        f"shape {tuple(shape)} does not match {what}: axis {axis} has "
                        f"{got}, expected {want}",
                    )
                    return

        obs_var = f"{n_obs} obs x {n_vars} vars"
        if "X" in root:
            expect("X", (n_obs, n_vars), obs_var)
        slots = {
            "layers": ((n_obs, n_vars), obs_var),
            "obsm": ((n_obs,), f"{n_obs} obs"),
            "varm": ((n_vars,), f"{n_vars} vars"),
            "obsp": ((n_obs, n_obs), f"{n_obs} x {n_obs} obs"),
            "varp": ((n_vars, n_vars), f"{n_vars} x {n_vars} vars"),
        }
        for slot, (dims, what) in slots.items():
            if (
                slot in root
                and root[slot].is_group
                and get_spec(root[slot]).encoding_type == "dict"
            ):
                for key in root[slot].keys():  # type: ignore[union-attr]
                    expect(f"{slot}/{key}", dims, what)
        if "raw" in root and root["raw"].is_group:
            raw = root["raw"]
            n_raw = axis_length(raw, "var")  # type: ignore[arg-type]
            if "X" in raw:  # type: ignore[operator]
                expect("raw/X", (n_obs, n_raw), f"{n_obs} obs x {n_raw} raw vars")
            if "varm" in raw and raw["varm"].is_group:  # type: ignore[index]
                for key in raw["varm"].keys():  # type: ignore[index]
                    expect(f"raw/varm/{key}", (n_raw,), f"{n_raw} raw vars")


def _length(elem: Element) -> int | None:
    shape = _shape(elem)
    return shape[0] if shape else None


def _shape(elem: Element) -> tuple[int, ...] | None:
    """An element's shape from metadata (arrays, sparse, dataframes, encoded groups)."""
    if not elem.is_group:
        shape = elem.shape  # type: ignore[union-attr]
        return tuple(int(s) for s in shape) if shape is not None else None
    spec = get_spec(elem)
    attrs = elem.attrs
    if spec.encoding_type in SPARSE:
        shape = attrs.get("shape")
        return tuple(int(s) for s in shape) if isinstance(shape, list) else None
    child = {"categorical": "codes", "dataframe": attrs.get("_index")}.get(spec.encoding_type)
    if spec.encoding_type.startswith("nullable-"):
        child = "values"
    if spec.encoding_type == "awkward-array" and "length" in attrs:
        return (int(attrs["length"]),)
    if isinstance(child, str) and child in elem:  # type: ignore[operator]
        return _shape(elem[child])  # type: ignore[index]
    return None
