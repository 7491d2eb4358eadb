"""libsmartcols filter expressions (scols-filter(5)) for ``nsprim ls -Q``, as lsns(8) takes them.

Layer 4, standard library only. The grammar is libsmartcols' (its bison
file): ``or``/``and`` (also ``||``/``&&``) share the lowest precedence and
group from the left; the comparisons ``== != < <= > >=`` (``eq ne lt le gt
ge``), the regular expression matches ``=~ !~`` and the prefix ``!``
(``not``) share the next one; parentheses group. Operands are column names
(holders), integers (with K/M/G/T/P/E/Z/Y and optional ``iB`` suffixes: powers
of 1024), floats, 'single' or "double" quoted strings, and true/false.

Types: a holder takes its column's type (numbers for the numeric columns,
strings for the rest); a comparison converts both sides to the type of its
literal operand (a float wins over an integer), or to the left holder's
type. A value that does not convert, and an empty cell, make a comparison
false (``!=`` true). A holder alone is true when its cell is not empty.
``=~`` wants a string literal on its right, searched as a regular expression
(Python's ``re``, which agrees with POSIX extended expressions on the usual
patterns).

Errors are :class:`FilterError` whose message follows libsmartcols' (``syntax
error, unexpected ...``); lsns prints them as ``failed to parse "EXPR": MESSAGE``.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Callable, Optional, Union

    Value = Union[int, float, str, bool, None]
    # ("param", kind, value) | ("holder", name) | ("NEG", node) | (op, left, right)
    Node = tuple[Any, ...]

__all__ = ["Filter", "FilterError"]

_SUFFIX = "KMGTPEZY"
_WORDS = {
    "and": "AND", "AND": "AND", "or": "OR", "OR": "OR", "not": "NEG", "NOT": "NEG",
    "eq": "EQ", "EQ": "EQ", "ne": "NE", "NE": "NE", "le": "LE", "LE": "LE", "lt": "LT",
    "LT": "LT", "ge": "GE", "GE": "GE", "gt": "GT", "GT": "GT", "true": "TRUE",
    "TRUE": "TRUE", "false": "FALSE", "FALSE": "FALSE",
}  # fmt: skip
_SYMBOLS = [
    ("&&", "AND"), ("||", "OR"), ("==", "EQ"), ("!=", "NE"), ("<=", "LE"), (">=", "GE"),
    ("=~", "REG"), ("!~", "NREG"), ("<", "LT"), (">", "GT"), ("!", "NEG"), ("(", "("),
    (")", ")"),
]  # fmt: skip
_COMPARE = {"EQ", "NE", "LT", "LE", "GT", "GE", "REG", "NREG"}
_TOKEN = re.compile(
    r"""(?P<blank>[ \t\n]+)
      | (?P<float>[0-9]+\.[0-9]+)
      | (?P<int>[0-9]+(?:[KMGTPEZY](?:iB)?)?)(?![0-9A-Za-z_.%:/\-])
      | (?P<str>"[^"\n]*"|'[^'\n]*')
      | (?P<name>[A-Za-z][A-Za-z_.%:/\-0-9]*)""",
    re.VERBOSE,
)
_MAX_LEN = 1024


class FilterError(ValueError):
    """A filter expression libsmartcols would refuse; the message is its kind of message."""


class _Tok:
    __slots__ = ("kind", "text", "value")

    def __init__(self, kind: str, text: str, value: Any = None) -> None:
        self.kind, self.text, self.value = kind, text, value

    def describe(self) -> str:
        if self.kind == "END":
            return "end of file"
        if self.kind in ("(", ")"):
            return f"'{self.kind}'"
        return {"NUMBER": "NUMBER", "FLOAT": "FLOAT", "STRING": "STRING", "HOLDER": "HOLDER"}.get(
            self.kind, self.kind
        )


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i = 0
    while i < len(text):
        for sym, kind in _SYMBOLS:
            if text.startswith(sym, i):
                out.append(_Tok(kind, sym))
                i += len(sym)
                break
        else:
            m = _TOKEN.match(text, i)
            if m is None:
                raise FilterError(f"syntax error, unexpected character '{text[i]}'")
            i = m.end()
            if m.group("blank"):
                continue
            if m.group("float"):
                out.append(_Tok("FLOAT", m.group(0), float(m.group(0))))
            elif m.group("int"):
                out.append(_Tok("NUMBER", m.group(0), _number(m.group(0))))
            elif m.group("str"):
                out.append(_Tok("STRING", m.group(0), m.group(0)[1:-1]))
            else:
                word = m.group(0)
                kind = _WORDS.get(word, "HOLDER")
                out.append(_Tok(kind, word, word))
    out.append(_Tok("END", ""))
    return out


def _number(text: str) -> int:
    digits = text.rstrip("iB").rstrip(_SUFFIX)
    suffix = text[len(digits) : len(digits) + 1]
    value = int(digits) * (1024 ** (_SUFFIX.index(suffix) + 1) if suffix else 1)
    if value >= 2**64:
        raise FilterError(f'"{text}" number too large')
    return value


class Filter:
    """A parsed ``-Q`` expression; :meth:`match` evaluates it on one row.

    Args:
        text: the expression.
        columns: the known column names and whether each is numeric.

    Raises:
        FilterError: a syntax error, or a column that is not in *columns*.
    """

    def __init__(self, text: str, columns: Mapping[str, bool]) -> None:
        if len(text.encode()) > _MAX_LEN:
            raise FilterError(f"expression longer than {_MAX_LEN} bytes")
        self.text = text
        self._columns = dict(columns)
        self._toks = _tokens(text)
        self._pos = 0
        self.holders: list[str] = []
        self.root = self._expr(0)
        if self._peek().kind != "END":
            raise FilterError(f"syntax error, unexpected {self._peek().describe()}")
        unknown = [h for h in self.holders if h.upper() not in self._columns]
        if unknown:
            raise FilterError(f"unknown column: {unknown[0]}")

    # --- parsing (precedence climbing over the bison grammar's two levels) ----------
    def _peek(self) -> _Tok:
        return self._toks[self._pos]

    def _next(self) -> _Tok:
        tok = self._toks[self._pos]
        self._pos += 1
        return tok

    def _expr(self, min_level: int) -> Node:
        left = self._unary()
        while True:
            kind = self._peek().kind
            level = 1 if kind in ("AND", "OR") else 2 if kind in _COMPARE else 0
            if level == 0 or level < min_level:
                return left
            self._next()
            right = self._expr(level + 1)
            if kind in ("REG", "NREG"):
                if right[0] != "param" or right[1] != "STRING":
                    raise FilterError("regular expression must be a string")
                try:
                    re.compile(right[2])
                except re.error as err:
                    raise FilterError(f"regular expression error: {err}") from None
            left = (kind, left, right)

    def _unary(self) -> Node:
        tok = self._next()
        if tok.kind == "NEG":
            return ("NEG", self._expr(3))
        if tok.kind == "(":
            inner = self._expr(0)
            if self._next().kind != ")":
                raise FilterError(
                    f"syntax error, unexpected {self._toks[self._pos - 1].describe()}"
                )
            return inner
        if tok.kind == "HOLDER":
            self.holders.append(tok.value)
            return ("holder", tok.value.upper())
        if tok.kind in ("NUMBER", "FLOAT", "STRING"):
            return ("param", tok.kind, tok.value)
        if tok.kind in ("TRUE", "FALSE"):
            return ("param", "BOOL", tok.kind == "TRUE")
        raise FilterError(f"syntax error, unexpected {tok.describe()}")

    # --- evaluation -----------------------------------------------------------------
    def match(self, row: Callable[[str], Value]) -> bool:
        """Whether the row (a function from column name to its value, None if empty) passes."""
        return self._truth(self.root, row)

    def _truth(self, node: Node, row: Callable[[str], Value]) -> bool:
        op = node[0]
        if op == "AND":
            return self._truth(node[1], row) and self._truth(node[2], row)
        if op == "OR":
            return self._truth(node[1], row) or self._truth(node[2], row)
        if op == "NEG":
            return not self._truth(node[1], row)
        if op in _COMPARE:
            return self._compare(op, node[1], node[2], row)
        value = self._value(node, row)
        return value not in (None, "", False, 0)

    def _value(self, node: Node, row: Callable[[str], Value]) -> Value:
        if node[0] == "param":
            return node[2]  # type: ignore[no-any-return]
        if node[0] == "holder":
            return row(node[1])
        return self._truth(node, row)

    def _kind(self, node: Node) -> Optional[str]:
        if node[0] == "param":
            return {"NUMBER": "int", "FLOAT": "float", "STRING": "str", "BOOL": "bool"}[node[1]]
        if node[0] == "holder":
            return "int" if self._columns.get(node[1]) else "str"
        return "bool"

    def _compare(self, op: str, left: Node, right: Node, row: Callable[[str], Value]) -> bool:
        a, b = self._value(left, row), self._value(right, row)
        if op in ("REG", "NREG"):
            if a is None:
                return op == "NREG"
            found = re.search(str(right[2]), str(a)) is not None
            return found if op == "REG" else not found
        if (
            a is None
            or b is None
            or (a == "" and left[0] == "holder")
            or (b == "" and right[0] == "holder")
        ):
            return op == "NE"
        kinds = [self._kind(n) for n in (left, right)]
        literal = [k for n, k in zip((left, right), kinds) if n[0] == "param"]
        kind = literal[0] if len(literal) == 1 else kinds[0]
        if "float" in kinds and kind == "int":
            kind = "float"
        try:
            x, y = _cast(a, kind), _cast(b, kind)
        except (TypeError, ValueError):
            return op == "NE"
        result: bool = {
            "EQ": x == y, "NE": x != y, "LT": x < y, "LE": x <= y, "GT": x > y, "GE": x >= y,
        }[op]  # fmt: skip
        return result


def _cast(value: Value, kind: Optional[str]) -> Any:
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        return int(value) if isinstance(value, int) else int(str(value), 10)
    if kind == "float":
        return float(value)  # type: ignore[arg-type]
    if kind == "bool":
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "y")
        return bool(value)
    return "" if value is None else str(value)
