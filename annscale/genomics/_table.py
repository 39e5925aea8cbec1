"""Numeric text tables (``.csv``, ``.tsv``, ``.txt``) with optional row and column names.

The layout is guessed the way :func:`anndata.io.read_text` guesses it:

* lines starting with ``#`` are comments; if the file has no header line, the last
  comment line (split at whitespace) names the columns;
* the first non-comment line is a header when its last field is not a number;
* the first column holds row names when its value is not a number (checked on the first
  two data lines) or when ``first_column_names=True``;
* a first line of numbers that is one field shorter than the next line is a header of
  integer column names above rows that start with integer row names;
* surrounding double quotes are stripped from names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, ShapeMismatchError

__all__ = ["Table", "parse_table"]


@dataclass
class Table:
    data: np.ndarray  # (rows, columns) of the requested dtype
    row_names: np.ndarray  # object array of str
    col_names: np.ndarray  # object array of str


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Non-empty lines without their line break, with 1-based line numbers."""
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if line:
            yield number, line


class _Rows:
    """Accumulates data rows, converting each to ``dtype`` and naming the line on failure."""

    def __init__(self, dtype: np.dtype, source: str | None):
        self.dtype = dtype
        self.source = source
        self.rows: list[np.ndarray] = []
        self.numbers: list[int] = []

    def add(self, fields: list[str], number: int) -> None:
        try:
            row = np.array(fields, dtype=self.dtype)
        except ValueError as e:
            raise FormatError(
                f"line {number}: cannot read values as {self.dtype}: {e}", source=self.source
            ) from e
        self.rows.append(row)
        self.numbers.append(number)


def _strip_quotes(names: Iterable[str]) -> np.ndarray:
    return np.array([str(n).strip('"') for n in names], dtype=object)


def parse_table(
    lines: Iterable[str],
    delimiter: str | None,
    *,
    first_column_names: bool | None,
    dtype: str | np.dtype,
    source: str | None = None,
) -> Table:
    """Parse a text table; ``delimiter=None`` splits at runs of whitespace."""
    dtype = np.dtype(dtype)
    it = _lines(lines)
    rows = _Rows(dtype, source)
    comments: list[str] = []
    col_names: list[str] | None = None
    row_names: list[str] = []

    # 1. comments, then the first line: a header or the first data row
    for number, line in it:
        if line.startswith("#"):
            comment = line.lstrip("# ")
            if comment:
                comments.append(comment)
            continue
        if delimiter is not None and delimiter not in line:
            raise FormatError(
                f"did not find the delimiter {delimiter!r} in the first line", source=source
            )
        fields = line.split(delimiter)
        if not _is_number(fields[-1]):
            col_names = fields
        elif first_column_names or not _is_number(fields[0]):
            first_column_names = True
            row_names.append(fields[0])
            rows.add(fields[1:], number)
        else:
            rows.add(fields, number)
        break

    if col_names is None:
        if comments:
            col_names = comments[-1].split()
        elif rows.rows:
            col_names = [str(i) for i in range(rows.rows[0].size)]
        else:
            raise FormatError("no data lines", source=source)

    # 2. the next line decides whether the first column holds names
    first_column_names = bool(first_column_names)
    for number, line in it:
        fields = line.split(delimiter)
        if first_column_names or not _is_number(fields[0]):
            first_column_names = True
            row_names.append(fields[0])
            rows.add(fields[1:], number)
        else:
            rows.add(fields, number)
        break

    # 3. integer column names over integer row names, seen as two rows of numbers
    if len(rows.rows) > 1 and rows.rows[0].size != rows.rows[1].size:
        first_column_names = True
        col_names = [str(int(v)) for v in rows.rows[0]]
        row_names.append(str(int(rows.rows[1][0])))
        rows.rows = [rows.rows[1][1:]]
        rows.numbers = rows.numbers[1:]

    # 4. the rest
    for number, line in it:
        fields = line.split(delimiter)
        if first_column_names:
            row_names.append(fields[0])
            rows.add(fields[1:], number)
        else:
            rows.add(fields, number)

    if not rows.rows:
        raise FormatError("no data lines", source=source)
    width = rows.rows[0].size
    for row, number in zip(rows.rows, rows.numbers):
        if row.size != width:
            raise FormatError(
                f"line {number} has {row.size} values, the first data line has {width}",
                source=source,
            )
    data = np.array(rows.rows, dtype=dtype)

    names_r = (
        _strip_quotes(row_names)
        if row_names
        else np.array([str(i) for i in range(data.shape[0])], dtype=object)
    )
    names_c = list(col_names)
    if len(names_c) > data.shape[1]:  # a header cell above the row-name column
        names_c = names_c[1:]
    if len(names_c) != data.shape[1]:
        raise ShapeMismatchError(
            f"{len(names_c)} column names for {data.shape[1]} columns of data", source=source
        )
    return Table(data=data, row_names=names_r, col_names=_strip_quotes(names_c))
