"""Reading the layout of a delimited results file: its text, its delimiter, the key-value header
block above the table and the table's rows, each with the line number it came from.

Kept apart from the converter (wats.converters.builtin.csv_table) because ``validate()`` needs
the same header-row detection without building a report, and because the rules of "what is a
table header" are what a site most often wants to read when a file is refused.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CANDIDATE_DELIMITERS",
    "CsvLayoutError",
    "Layout",
    "TableRow",
    "decode",
    "find_columns",
    "find_layout",
    "looks_like_markup",
    "normalise",
    "parse_key_value",
    "shown",
]

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
"""Delimiters tried, in this order, when the ``delimiter`` argument is ``auto``."""

SCAN_LINES = 500
"""How many lines are searched for the table header: a header block longer than this is not a
header block, and a cap keeps detection cheap on a file that has no table at all."""

_COMMENT_PREFIXES = ("#", "//", ";;")
_SEPARATORS_NOT_DELIMITER = (":", "=")
_IGNORED_IN_NAMES = re.compile(r"[\s_\-.]+")


class CsvLayoutError(ValueError):
    """The file is not a delimited results table; ``str()`` says where and why."""


def normalise(text: str) -> str:
    """A header text or key as compared with the configured spellings: case folded, outer
    quotes dropped and spaces, ``_``, ``-`` and ``.`` removed (``Low Limit`` = ``low_limit``
    = ``LowLimit``; ``Serial No.`` = ``SerialNo``)."""
    return _IGNORED_IN_NAMES.sub("", text.strip().strip('"').strip("'").casefold())


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, shortened: a cell of garbage must not flood the error."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def looks_like_markup(head: bytes) -> bool:
    """True when the first non-blank byte opens JSON or XML: those files belong to other
    converters, whatever their extension."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped[:1] in (b"{", b"[", b"<")


def decode(data: bytes, encoding: str) -> str:
    """The file as text. A UTF-8 BOM is dropped; a UTF-16 BOM (Excel's "Unicode text" export)
    wins over ``encoding``. ``UnicodeDecodeError`` propagates for the caller to report."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if encoding.replace("-", "").replace("_", "").casefold() == "utf8":
        encoding = "utf-8-sig"
    return data.decode(encoding)


def _split(line: str, delimiter: str) -> list[str]:
    """One physical line as cells (quotes honoured); a malformed line is one cell."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return [line]


def find_columns(cells: Sequence[str], spellings: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Which cell index each field's column is at, by the field's spellings in priority order.

    Fields are resolved in the order of ``spellings``; a column taken by an earlier field is not
    offered to a later one (so ``Result`` can be the value column when nothing better is there,
    and the status column otherwise).
    """
    by_text: dict[str, int] = {}
    for index, cell in enumerate(cells):
        by_text.setdefault(normalise(cell), index)
    found: dict[str, int] = {}
    taken: set[int] = set()
    for field_name, names in spellings.items():
        for name in names:
            index = by_text.get(normalise(name))
            if index is not None and index not in taken:
                found[field_name] = index
                taken.add(index)
                break
    return found


@dataclass(frozen=True)
class TableRow:
    """One data row of the table and the 1-based line it starts on."""

    line: int
    cells: list[str]


@dataclass
class Layout:
    """Where the parts of a results file are."""

    delimiter: str
    header_line: int
    """1-based line number of the table's column header row."""
    headers: list[str]
    columns: dict[str, int]
    """Our field name → cell index, for every field whose column was found."""
    block: list[tuple[int, str]] = field(default_factory=list)
    """The lines above the table (line number, text): the key-value header block."""
    rows: list[TableRow] = field(default_factory=list)


def _header_row(
    lines: Sequence[str],
    delimiters: Iterable[str],
    spellings: dict[str, tuple[str, ...]],
) -> tuple[int, str, list[str], dict[str, int]] | None:
    """The first line (index, delimiter, cells, columns) that holds both a name and a value
    column under some delimiter; the delimiter giving the most cells wins on that line."""
    candidates = tuple(delimiters)
    for index, line in enumerate(lines[:SCAN_LINES]):
        best: tuple[int, str, list[str], dict[str, int]] | None = None
        for delimiter in candidates:
            if delimiter not in line:
                continue
            cells = _split(line, delimiter)
            columns = find_columns(cells, spellings)
            has_both = "name" in columns and "value" in columns
            if has_both and (best is None or len(cells) > len(best[2])):
                best = (index, delimiter, cells, columns)
        if best is not None:
            return best
    return None


def find_layout(
    text: str,
    *,
    delimiters: Sequence[str],
    spellings: dict[str, tuple[str, ...]],
    with_rows: bool = True,
) -> Layout:
    """Split ``text`` into header block, column header row and data rows.

    ``spellings`` maps our field names (``name``, ``value``, ...) to the column header texts
    that mean them; a table is recognised by its first line naming both a name and a value
    column. ``CsvLayoutError`` when there is none, or when a row cannot be read.
    """
    lines = text.splitlines()
    found = _header_row(lines, delimiters, spellings)
    if found is None:
        names = " / ".join(spellings.get("name", ()))
        values = " / ".join(spellings.get("value", ()))
        scanned = min(len(lines), SCAN_LINES)
        raise CsvLayoutError(
            f"no results table found in the first {scanned} lines: expected a column header "
            f"row naming a step-name column ({names}) and a value column ({values}), "
            f"separated by {' or '.join(_describe(d) for d in delimiters)}; "
            "set arguments.columns (and arguments.delimiter) to match the file"
        )
    index, delimiter, headers, columns = found
    layout = Layout(
        delimiter=delimiter,
        header_line=index + 1,
        headers=[h.strip() for h in headers],
        columns=columns,
        block=[(number, line) for number, line in enumerate(lines[:index], start=1)],
    )
    if with_rows:
        layout.rows = _rows(lines, index + 1, delimiter)
    return layout


def _rows(lines: Sequence[str], first: int, delimiter: str) -> list[TableRow]:
    """The data rows below the header row; blank rows are skipped. Strict quoting: an
    unterminated quote (a truncated file) or text after a closing quote is an error, and so is
    a cell over csv's field size limit (128 KiB), rather than a step holding garbage."""
    reader = csv.reader(lines[first:], delimiter=delimiter, strict=True)
    rows: list[TableRow] = []
    line = first + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CsvLayoutError(
                f"line {first + reader.line_num}: unreadable row ({exc})"
            ) from None
        if any(cell.strip() for cell in cells):
            rows.append(TableRow(line=line, cells=cells))
        line = first + reader.line_num + 1
    return rows


def parse_key_value(text: str, delimiter: str) -> tuple[str, str] | None:
    """A header-block line as (key, value), or None for a line that is not one (a title, a
    comment, a blank line).

    The key ends at the first ``:``, ``=`` or delimiter, whichever comes first, so
    ``Start Time: 2024-03-01T10:00:00`` keeps its colons and ``serial,123,,`` (a spreadsheet's
    padding) reads as ``serial`` = ``123``.
    """
    line = text.strip()
    for prefix in _COMMENT_PREFIXES:
        if line.startswith(prefix):
            line = line[len(prefix) :].strip()
            break
    if not line:
        return None
    positions = {sep: line.find(sep) for sep in (*_SEPARATORS_NOT_DELIMITER, delimiter)}
    present = {sep: pos for sep, pos in positions.items() if pos > 0}
    if not present:
        return None
    separator = min(present, key=lambda sep: present[sep])
    if separator == delimiter:
        cells = [cell.strip() for cell in _split(line, delimiter)]
        key = cells[0]
        value = next((cell for cell in cells[1:] if cell), "")
        # "Key: value" written in the first cell of a spreadsheet row.
        for sep in _SEPARATORS_NOT_DELIMITER:
            if sep in key and not value:
                key, _, value = key.partition(sep)
                break
    else:
        key, _, value = line.partition(separator)
        value = value.strip().rstrip(delimiter).strip()
    key, value = key.strip().strip('"').strip(), value.strip().strip('"').strip()
    if not key:
        return None
    return key, value


def _describe(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(
        delimiter, repr(delimiter)
    )
