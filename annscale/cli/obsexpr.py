"""``--obs`` filters: a small, safe language over obs columns, parsed with :mod:`ast`.

An expression compares obs columns with literal values and combines the comparisons::

    cell_type == "NK" and n_counts >= 1000
    sample in ["A", "B"] and not is_doublet
    `cell type` != "B cell" or (0.1 < pct_mito <= 0.2)

Allowed: column names (plain identifiers, or any name in backticks), literals (strings,
numbers, ``True``/``False``/``None``), lists/tuples/sets of literals after ``in`` /
``not in``, the comparisons ``== != < <= > >=`` (chained comparisons too), ``and``,
``or``, ``not`` and parentheses. A bare boolean column is a condition by itself.

Nothing is ever evaluated as Python: the text is parsed into a syntax tree and every node
is checked against this whitelist (attribute access, calls, subscripts, arithmetic,
comprehensions, lambdas... are refused, imports cannot even be parsed). A refused or
unknown part is reported with its column (1-based character offset) and its text.

Missing values never satisfy a comparison (``x == None`` selects them); ``not`` negates
the result of what it applies to.
"""

from __future__ import annotations

import ast
import difflib
import operator
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd

from .output import UsageError

__all__ = ["ObsExpressionError", "parse", "evaluate", "select"]


class ObsExpressionError(UsageError):
    """An ``--obs`` expression that cannot be parsed, is not allowed, or names no column."""

    def __init__(self, message: str, text: str, start: int | None = None, end: int | None = None):
        self.reason = message
        self.text = text
        self.start = start
        where = ""
        if start is not None:
            snippet = text[start:end] if end is not None and end > start else text[start:]
            snippet = snippet if len(snippet) <= 40 else snippet[:37] + "..."
            where = f" at column {start + 1}: {snippet!r}"
        super().__init__(f"invalid --obs expression: {message}{where}")


# ---------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Span:
    """Character offsets ``[start, end)`` of a part of the expression."""

    start: int
    end: int


@dataclass(frozen=True)
class Compare:
    """``column <op> value``; ``op`` is one of ``== != < <= > >=``."""

    column: str
    op: str
    value: Any
    span: Span
    column_span: Span


@dataclass(frozen=True)
class Member:
    """``column in values`` (or ``not in`` when ``negate``)."""

    column: str
    values: tuple[Any, ...]
    negate: bool
    span: Span
    column_span: Span


@dataclass(frozen=True)
class Flag:
    """A bare boolean column used as a condition."""

    column: str
    span: Span


@dataclass(frozen=True)
class And:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    part: Expr


Expr = Union[Compare, Member, Flag, And, Or, Not]  # noqa: UP007 (recursive alias)

_OPS: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_REFUSED: dict[type, str] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Call: "function calls are not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.NamedExpr: "assignments are not allowed",
    ast.Starred: "starred expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Await: "await is not allowed",
    ast.Dict: "dicts are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
}


# ---------------------------------------------------------------------------- parsing

_PLACEHOLDER = "ǂ"  # a letter Python accepts in identifiers and no one types


class _Source:
    """The text, backtick-quoted names replaced by same-length identifiers, and offsets."""

    def __init__(self, text: str):
        self.text = text
        self.quoted: dict[str, str] = {}
        out, i, n = [], 0, 0
        while i < len(text):
            if text[i] != "`":
                out.append(text[i])
                i += 1
                continue
            end = text.find("`", i + 1)
            if end < 0:
                raise ObsExpressionError("unclosed backtick", text, i)
            name = text[i + 1 : end]
            if not name:
                raise ObsExpressionError("empty column name in backticks", text, i, end + 1)
            token = (_PLACEHOLDER + str(n)).ljust(end + 1 - i, _PLACEHOLDER)
            if len(token) > end + 1 - i:
                raise ObsExpressionError("too many backtick-quoted names", text, i, end + 1)
            self.quoted[unicodedata.normalize("NFKC", token)] = name  # as ast stores names
            out.append(token)
            n += 1
            i = end + 1
        # one logical line (line breaks and tabs become spaces, keeping every offset) parsed
        # without its leading blanks, which Python would take for an indent
        flat = "".join(out).translate({ord("\n"): " ", ord("\r"): " ", ord("\t"): " "})
        self.code = flat.lstrip()
        self.lead = len(flat) - len(self.code)

    def offset(self, col_bytes: int) -> int:
        """Character offset in the text of an ast column (ast columns count UTF-8 bytes)."""
        chars = len(self.code.encode("utf-8")[:col_bytes].decode("utf-8", errors="ignore"))
        return self.lead + chars

    def span(self, node: ast.AST) -> Span:
        start = self.offset(node.col_offset)  # type: ignore[attr-defined]
        end_col = getattr(node, "end_col_offset", None)
        end = self.offset(end_col) if end_col is not None else start + 1
        return Span(start, end)

    def error(self, message: str, node: ast.AST) -> ObsExpressionError:
        s = self.span(node)
        return ObsExpressionError(message, self.text, s.start, s.end)

    def column_name(self, node: ast.Name) -> str:
        return self.quoted.get(node.id, node.id)


def parse(text: str) -> Expr:
    """Parse ``text`` into an expression tree; :class:`ObsExpressionError` if refused."""
    if not text.strip():
        raise ObsExpressionError("the expression is empty", text)
    src = _Source(text)
    try:
        tree = ast.parse(src.code, mode="eval")
    except SyntaxError as e:
        reason = (e.msg or "syntax error").removeprefix("invalid syntax. ")
        if not e.offset:  # Python points nowhere: the text ended early
            raise ObsExpressionError(f"{reason}: the expression ends too early", text) from None
        # SyntaxError offsets count characters from 1
        start = min(src.lead + e.offset - 1, max(len(text) - 1, 0))
        end = None
        if e.end_offset and e.end_offset > e.offset:
            end = start + e.end_offset - e.offset
        raise ObsExpressionError(reason, text, start, end) from None
    return _condition(tree.body, src)


def _condition(node: ast.AST, src: _Source) -> Expr:
    if isinstance(node, ast.BoolOp):
        parts = tuple(_condition(v, src) for v in node.values)
        return And(parts) if isinstance(node.op, ast.And) else Or(parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return Not(_condition(node.operand, src))
    if isinstance(node, ast.Compare):
        return _compare(node, src)
    if isinstance(node, ast.Name):
        return Flag(src.column_name(node), src.span(node))
    if isinstance(node, (ast.Constant, ast.List, ast.Tuple, ast.Set)):
        raise src.error("a value on its own is not a condition; compare a column with it", node)
    raise _refuse(node, src)


def _refuse(node: ast.AST, src: _Source) -> ObsExpressionError:
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.BitAnd):
            return src.error("use 'and' instead of '&'", node)
        if isinstance(node.op, ast.BitOr):
            return src.error("use 'or' instead of '|'", node)
        return src.error("arithmetic is not allowed", node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        return src.error("use 'not' instead of '~'", node)
    for kind, message in _REFUSED.items():
        if isinstance(node, kind):
            return src.error(message, node)
    return src.error(f"{type(node).__name__} is not allowed", node)


def _compare(node: ast.Compare, src: _Source) -> Expr:
    operands = [node.left, *node.comparators]
    parts: list[Expr] = []
    for left, op, right in zip(operands[:-1], node.ops, operands[1:]):
        whole = Span(src.span(left).start, src.span(right).end)
        if isinstance(op, (ast.In, ast.NotIn)):
            if not isinstance(left, ast.Name):
                raise src.error(f"the left side of '{_op_text(op)}' must be an obs column", left)
            if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                raise src.error(
                    f'\'{_op_text(op)}\' needs a list of values, like ["a", "b"]', right
                )
            values = tuple(_literal(v, src) for v in right.elts)
            parts.append(
                Member(
                    src.column_name(left), values, isinstance(op, ast.NotIn), whole, src.span(left)
                )
            )
            continue
        if isinstance(op, (ast.Is, ast.IsNot)):
            raise src.error("use '==' or '!=' instead of 'is'", node)
        symbol = _OPS[type(op)]
        if isinstance(left, ast.Name) and isinstance(right, ast.Name):
            raise src.error("compare an obs column with a value, not with another column", node)
        if isinstance(left, ast.Name):
            column, value, col_node = left, _literal(right, src), left
        elif isinstance(right, ast.Name):
            column, value, col_node = right, _literal(left, src), right
            symbol = _FLIPPED[symbol]
        else:
            bad = left if not _is_literal(left) else right
            if _is_literal(left) and _is_literal(right):
                raise src.error("a comparison needs an obs column on one side", node)
            raise _refuse(bad, src)
        parts.append(Compare(src.column_name(column), symbol, value, whole, src.span(col_node)))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _op_text(op: ast.cmpop) -> str:
    return "not in" if isinstance(op, ast.NotIn) else "in"


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
    )


def _literal(node: ast.AST, src: _Source) -> Any:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, int, float, bool)) or node.value is None:
            return node.value
        raise src.error(f"{type(node.value).__name__} values are not allowed", node)
    if _is_literal(node):
        value = node.operand.value  # type: ignore[attr-defined]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise src.error("a sign needs a number", node)
        return -value if isinstance(node.op, ast.USub) else value  # type: ignore[attr-defined]
    if isinstance(node, ast.Name):
        raise src.error("expected a value here, found a column name", node)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        raise src.error("a list of values is only allowed after 'in' / 'not in'", node)
    raise _refuse(node, src)


# ---------------------------------------------------------------------------- evaluation

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _as_bool(values: Any) -> np.ndarray:
    """A numpy bool mask; missing (NA) results count as False."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.array
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return np.asarray(values.to_numpy(dtype=bool, na_value=False), dtype=bool)
    return np.asarray(values, dtype=bool)


class _Evaluator:
    def __init__(self, text: str, obs: pd.DataFrame):
        self.text = text
        self.obs = obs

    def column(self, name: str, span: Span) -> pd.Series:
        if name in self.obs.columns:
            return self.obs[name]
        close = difflib.get_close_matches(name, [str(c) for c in self.obs.columns], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(map(str, self.obs.columns[:20])) or "none"
        raise ObsExpressionError(
            f"no obs column {name!r}{hint} (obs columns: {known})", self.text, span.start, span.end
        )

    def run(self, expr: Expr) -> np.ndarray:
        if isinstance(expr, And):
            return np.logical_and.reduce([self.run(p) for p in expr.parts])
        if isinstance(expr, Or):
            return np.logical_or.reduce([self.run(p) for p in expr.parts])
        if isinstance(expr, Not):
            return ~self.run(expr.part)
        if isinstance(expr, Flag):
            col = self.column(expr.column, expr.span)
            if not pd.api.types.is_bool_dtype(col.dtype):
                raise ObsExpressionError(
                    f"obs column {expr.column!r} ({col.dtype}) is not boolean; compare it with "
                    "a value",
                    self.text,
                    expr.span.start,
                    expr.span.end,
                )
            return _as_bool(col)
        col = self.column(expr.column, expr.column_span)
        if isinstance(expr, Member):
            return self._categorical_aware(col, lambda v: _isin(v, expr.values), expr) ^ expr.negate
        return self._categorical_aware(col, lambda v: _compare_values(v, expr.op, expr.value), expr)

    def _categorical_aware(self, col: pd.Series, test: Callable, expr: Compare | Member) -> Any:
        """Apply ``test`` to the values; for categoricals, to the categories (then codes)."""
        try:
            if isinstance(col.dtype, pd.CategoricalDtype):
                on_categories = _as_bool(test(pd.Series(col.cat.categories)))
                codes = col.cat.codes.to_numpy()
                missing_result = _as_bool(test(pd.Series([np.nan], dtype=object)))[0]
                return np.where(codes >= 0, on_categories[np.maximum(codes, 0)], missing_result)
            return _as_bool(test(col))
        except TypeError:
            value = getattr(expr, "value", getattr(expr, "values", None))
            raise ObsExpressionError(
                f"cannot compare obs column {expr.column!r} ({col.dtype}) with {value!r}",
                self.text,
                expr.span.start,
                expr.span.end,
            ) from None


def _compare_values(values: pd.Series, op: str, value: Any) -> Any:
    if value is None:
        if op == "==":
            return values.isna()
        if op == "!=":
            return values.notna()
        raise TypeError("ordering with None")
    return _COMPARE[op](values, value)


def _isin(values: pd.Series, choices: tuple[Any, ...]) -> Any:
    hit = values.isin([c for c in choices if c is not None])
    if any(c is None for c in choices):
        hit = hit | values.isna()
    return hit


def evaluate(expr: Expr, obs: pd.DataFrame, *, text: str = "") -> np.ndarray:
    """The rows of ``obs`` selected by ``expr``: a numpy bool mask of ``len(obs)``."""
    mask = _Evaluator(text, obs).run(expr)
    return np.broadcast_to(np.asarray(mask, dtype=bool), (len(obs),)).copy()


def select(text: str, obs: pd.DataFrame) -> np.ndarray:
    """Parse ``text`` and evaluate it on ``obs`` (a bool mask)."""
    return evaluate(parse(text), obs, text=text)
