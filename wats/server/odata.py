"""A small OData subset for ``GET /api/Report/Query/Header``: ``$filter`` and ``$orderby``.

Why a real parser: filters come from clients we do not control, so every token must be either
understood or refused with a message that names it; and values must reach SQLite only as bound
parameters. The pipeline is tokenise → recursive-descent parse into a tiny AST → compile against a
table of allowed fields into a SQL ``WHERE`` fragment plus parameters.

Grammar (keywords are case-insensitive)::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | primary
    primary    := "(" or_expr ")" | function | comparison
    function   := ("contains" | "startswith" | "endswith") "(" field "," string ")"
    comparison := field ("eq"|"ne"|"gt"|"ge"|"lt"|"le") literal
    literal    := 'string' | number | datetime | datetime'...' | true | false | null

Datetimes are ISO 8601 (``2026-01-01T00:00:00Z``; no offset means UTC), bare or wrapped as
``datetime'...'``/``datetimeoffset'...'``; they are compared in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any


class ODataError(ValueError):
    """A ``$filter``/``$orderby`` the server cannot honour; the message names the offending part."""


# ---------------------------------------------------------------------------------------- datetimes

_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?"
)


def parse_datetime(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (any number of fraction digits); naive values are UTC."""
    match = re.fullmatch(r"(.*?\.\d{6})\d+(.*)", text)  # Python keeps microseconds only
    value = datetime.fromisoformat(f"{match.group(1)}{match.group(2)}" if match else text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc_text(value: datetime) -> str:
    """Canonical UTC text (fixed width), so SQLite's string order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------- tokens


class Tok(Enum):
    """Token kinds of the filter language."""

    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    END = "end of filter"


@dataclass(frozen=True)
class Token:
    """One token with its position (0-based character offset) for error messages."""

    kind: Tok
    text: str
    pos: int
    value: Any = None


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_/.]*")
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _read_quoted(source: str, start: int) -> tuple[str, int]:
    """Read an OData string starting at the opening quote; ``''`` is an escaped quote."""
    chars: list[str] = []
    i = start + 1
    while i < len(source):
        if source[i] == "'":
            if i + 1 < len(source) and source[i + 1] == "'":
                chars.append("'")
                i += 2
                continue
            return "".join(chars), i + 1
        chars.append(source[i])
        i += 1
    raise ODataError(f"$filter: unterminated string starting at position {start}")


def tokenize(source: str) -> list[Token]:
    """Split a filter into tokens, refusing any character that cannot start one."""
    tokens: list[Token] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            kind = {"(": Tok.LPAREN, ")": Tok.RPAREN, ",": Tok.COMMA}[ch]
            tokens.append(Token(kind, ch, i))
            i += 1
        elif ch == "'":
            value, end = _read_quoted(source, i)
            tokens.append(Token(Tok.STRING, source[i:end], i, value))
            i = end
        elif m := _DATETIME_RE.match(source, i):
            tokens.append(Token(Tok.DATETIME, m.group(0), i, _datetime_literal(m.group(0), i)))
            i = m.end()
        elif m := _NUMBER_RE.match(source, i):
            text = m.group(0)
            number = float(text) if any(c in text for c in ".eE") else int(text)
            tokens.append(Token(Tok.NUMBER, text, i, number))
            i = m.end()
        elif m := _IDENT_RE.match(source, i):
            word = m.group(0)
            if (
                word.lower() in {"datetime", "datetimeoffset"}
                and source[m.end() : m.end() + 1] == "'"
            ):
                inner, end = _read_quoted(source, m.end())
                tokens.append(Token(Tok.DATETIME, source[i:end], i, _datetime_literal(inner, i)))
                i = end
            else:
                tokens.append(Token(Tok.IDENT, word, i))
                i = m.end()
        else:
            raise ODataError(f"$filter: unexpected character {ch!r} at position {i}")
    tokens.append(Token(Tok.END, "", len(source)))
    return tokens


def _datetime_literal(text: str, pos: int) -> datetime:
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise ODataError(f"$filter: invalid datetime {text!r} at position {pos}") from exc


# ---------------------------------------------------------------------------------------- AST

COMPARISONS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class Comparison:
    """``field op literal``."""

    field: str
    op: str
    value: Any
    pos: int


@dataclass(frozen=True)
class FunctionCall:
    """``contains|startswith|endswith(field, 'text')``."""

    name: str
    field: str
    value: str
    pos: int


@dataclass(frozen=True)
class BoolOp:
    """``left and|or right``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Node


Node = Comparison | FunctionCall | BoolOp | Not


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def is_keyword(self, *words: str) -> bool:
        return self.current.kind is Tok.IDENT and self.current.text.lower() in words

    def expect(self, kind: Tok, what: str) -> Token:
        if self.current.kind is not kind:
            raise self.error(f"expected {what}")
        return self.advance()

    def error(self, message: str) -> ODataError:
        token = self.current
        found = "end of filter" if token.kind is Tok.END else repr(token.text)
        return ODataError(f"$filter: {message} at position {token.pos}, found {found}")

    def parse(self) -> Node:
        node = self.or_expr()
        if self.current.kind is not Tok.END:
            raise self.error("expected 'and', 'or' or end of filter")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.is_keyword("or"):
            self.advance()
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.is_keyword("and"):
            self.advance()
            node = BoolOp("and", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.is_keyword("not"):
            self.advance()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        if self.current.kind is Tok.LPAREN:
            self.advance()
            node = self.or_expr()
            self.expect(Tok.RPAREN, "')'")
            return node
        if self.is_keyword(*FUNCTIONS) and self.tokens[self.index + 1].kind is Tok.LPAREN:
            return self.function()
        return self.comparison()

    def function(self) -> Node:
        name_token = self.advance()
        self.expect(Tok.LPAREN, "'('")
        field = self.expect(Tok.IDENT, "a field name")
        self.expect(Tok.COMMA, "','")
        value = self.expect(Tok.STRING, "a string literal")
        self.expect(Tok.RPAREN, "')'")
        return FunctionCall(name_token.text.lower(), field.text, value.value, name_token.pos)

    def comparison(self) -> Node:
        field = self.expect(Tok.IDENT, "a field name")
        if not self.is_keyword(*COMPARISONS):
            raise self.error(
                f"expected a comparison operator (eq, ne, gt, ge, lt, le) after {field.text!r}"
            )
        op = self.advance().text.lower()
        return Comparison(field.text, op, self.literal(), field.pos)

    def literal(self) -> Any:
        token = self.current
        if token.kind in (Tok.STRING, Tok.NUMBER, Tok.DATETIME):
            self.advance()
            return token.value
        if self.is_keyword("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[token.text.lower()]
        raise self.error("expected a literal ('text', number, datetime, true, false or null)")


def parse_filter(source: str) -> Node:
    """Parse a ``$filter`` expression into an AST (raises :class:`ODataError`)."""
    if not source.strip():
        raise ODataError("$filter: empty filter")
    return _Parser(tokenize(source)).parse()


# ---------------------------------------------------------------------------------------- compile


class FieldKind(Enum):
    """How a queryable field's literals are checked and converted."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    DATETIME = "datetime"


@dataclass(frozen=True)
class FieldSpec:
    """Maps an OData field name to a SQL column, its kind and an optional value normaliser."""

    column: str
    kind: FieldKind
    normalise: Callable[[Any], Any] | None = None


def _convert(name: str, spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    kind = spec.kind
    if kind is FieldKind.DATETIME:
        if isinstance(value, str):  # a quoted date is tolerated: clients often quote them
            try:
                value = parse_datetime(value)
            except ValueError as exc:
                raise ODataError(f"$filter: {name} needs a datetime, got {value!r}") from exc
        if not isinstance(value, datetime):
            raise ODataError(f"$filter: {name} needs a datetime, got {value!r}")
        return utc_text(value)
    if kind is FieldKind.INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
        raise ODataError(f"$filter: {name} needs an integer, got {value!r}")
    if kind is FieldKind.NUMBER and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ODataError(f"$filter: {name} needs a number, got {value!r}")
    if kind is FieldKind.STRING and not isinstance(value, str):
        raise ODataError(f"$filter: {name} needs a string literal in quotes, got {value!r}")
    return spec.normalise(value) if spec.normalise else value


def _lookup(fields: Mapping[str, FieldSpec], name: str) -> FieldSpec:
    for candidate, spec in fields.items():
        if candidate.lower() == name.lower():
            return spec
    known = ", ".join(sorted(fields))
    raise ODataError(f"$filter: unknown field {name!r} (queryable: {known})")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def compile_filter(node: Node, fields: Mapping[str, FieldSpec]) -> tuple[str, list[Any]]:
    """Turn an AST into a SQL condition with ``?`` placeholders and its parameters."""
    if isinstance(node, BoolOp):
        left_sql, left_params = compile_filter(node.left, fields)
        right_sql, right_params = compile_filter(node.right, fields)
        return f"({left_sql} {node.op.upper()} {right_sql})", left_params + right_params
    if isinstance(node, Not):
        sql, params = compile_filter(node.operand, fields)
        return f"(NOT {sql})", params
    if isinstance(node, FunctionCall):
        spec = _lookup(fields, node.field)
        if spec.kind is not FieldKind.STRING:
            raise ODataError(f"$filter: {node.name}() works on text fields, not {node.field!r}")
        pattern = _like_escape(node.value)
        pattern = {
            "contains": f"%{pattern}%",
            "startswith": f"{pattern}%",
            "endswith": f"%{pattern}",
        }[node.name]
        return f"({spec.column} LIKE ? ESCAPE '\\')", [pattern]
    spec = _lookup(fields, node.field)
    value = _convert(node.field, spec, node.value)
    if value is None:
        if node.op not in ("eq", "ne"):
            raise ODataError(f"$filter: null can only be compared with eq/ne ({node.field})")
        return f"({spec.column} IS {'NOT ' if node.op == 'ne' else ''}NULL)", []
    return f"({spec.column} {COMPARISONS[node.op]} ?)", [value]


def filter_to_sql(source: str, fields: Mapping[str, FieldSpec]) -> tuple[str, list[Any]]:
    """Parse and compile a ``$filter`` in one step."""
    return compile_filter(parse_filter(source), fields)


def orderby_to_sql(source: str, fields: Mapping[str, FieldSpec]) -> str:
    """Compile ``$orderby`` (``field [asc|desc], ...``) into a SQL ``ORDER BY`` list."""
    parts: list[str] = []
    for clause in source.split(","):
        words = clause.split()
        if not words or len(words) > 2:
            raise ODataError(f"$orderby: cannot read {clause.strip()!r} (use 'field [asc|desc]')")
        try:
            spec = _lookup(fields, words[0])
        except ODataError:
            known = ", ".join(sorted(fields))
            raise ODataError(f"$orderby: unknown field {words[0]!r} (sortable: {known})") from None
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise ODataError(f"$orderby: direction must be asc or desc, got {words[1]!r}")
        parts.append(f"{spec.column} {direction.upper()}")
    return ", ".join(parts)
