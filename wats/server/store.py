"""SQLite storage of received reports: one row per report id, header columns plus the WSJF text.

Why SQLite: the embedded server must survive restarts with its data, answer header queries with
filters and sorting, and be fast enough that it never limits a client benchmark. WAL mode lets the
HTML page read while reports are written; ``synchronous=NORMAL`` keeps commits cheap (a committed
report survives a process crash; only an OS crash can lose the last moments, acceptable for a
test peer). One connection guarded by a lock serves all threads.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wats.server.odata import FieldKind, FieldSpec

DATABASE_FILE = "reports.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    uuid           TEXT PRIMARY KEY,
    report_type    TEXT NOT NULL,
    serial_number  TEXT NOT NULL COLLATE NOCASE,
    part_number    TEXT NOT NULL COLLATE NOCASE,
    revision       TEXT COLLATE NOCASE,
    station_name   TEXT COLLATE NOCASE,
    location       TEXT COLLATE NOCASE,
    purpose        TEXT COLLATE NOCASE,
    process_code   INTEGER,
    process_name   TEXT COLLATE NOCASE,
    result         TEXT COLLATE NOCASE,
    start_utc      TEXT,
    operator       TEXT COLLATE NOCASE,
    execution_time REAL,
    step_count     INTEGER NOT NULL DEFAULT 0,
    received_utc   TEXT NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 1,
    body           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_start ON reports (start_utc);
CREATE INDEX IF NOT EXISTS reports_received ON reports (received_utc);
CREATE INDEX IF NOT EXISTS reports_serial ON reports (serial_number);
"""

# Header columns added after the first release. Added to older databases on open (and filled from
# the stored bodies, see ReportStore.backfill), so an existing data folder keeps working.
_ADDED_COLUMNS = {
    "batch_number": "TEXT COLLATE NOCASE",
    "fixture_id": "TEXT COLLATE NOCASE",
    "sw_filename": "TEXT COLLATE NOCASE",
    "sw_version": "TEXT COLLATE NOCASE",
    "test_socket_index": "INTEGER",
    "comment": "TEXT COLLATE NOCASE",
    "error_code": "INTEGER",
    "error_message": "TEXT COLLATE NOCASE",
    "test_operation": "TEXT COLLATE NOCASE",
    "referenced_uut": "TEXT",
    "caused_uut_failure": "TEXT COLLATE NOCASE",
    "caused_uut_failure_path": "TEXT COLLATE NOCASE",
    "body_bytes": "INTEGER",
}
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS reports_unit
    ON reports (report_type, part_number, serial_number, process_code, start_utc);
"""

# WATS numbers the runs of one unit (part + serial) in one test operation: run 1 is its first
# test there, and ``passedInRun`` is the run it first passed in. Both follow from the other
# reports, so they are computed per query (window functions) instead of being stored: a late
# report with an earlier start renumbers the later ones, as it would on WATS.
_UNIT = "report_type, part_number, serial_number, process_code"
_NUMBERED = f"""
numbered AS (
    SELECT {{columns}},
        CASE WHEN report_type = 'T' THEN ROW_NUMBER() OVER (
            PARTITION BY {_UNIT} ORDER BY start_utc, received_utc, uuid) END AS run
    FROM reports {{inner}}
),
ranked AS (
    SELECT numbered.*,
        MIN(CASE WHEN result = 'P' THEN run END) OVER (PARTITION BY {_UNIT}) AS passed_in_run
    FROM numbered
)"""

# The same numbers for the rows of one page only: correlated counts over the unit's reports
# (the ``reports_unit`` index finds them), so a header query costs per row returned, not per
# report stored. Window functions over every report cost ~0.3 ms per stored report per query.
# ``{row}`` is the page's alias; the order key matches the window's (NULL start first).
_SAME_UNIT = (
    "{u}.report_type = {row}.report_type AND {u}.part_number IS {row}.part_number "
    "AND {u}.serial_number IS {row}.serial_number AND {u}.process_code IS {row}.process_code"
)
_KEY = "(COALESCE({t}.start_utc, ''), {t}.received_utc, {t}.uuid)"
_RUN_OF = (
    "(SELECT COUNT(*) FROM reports u WHERE "
    + _SAME_UNIT.format(u="u", row="{row}")
    + " AND "
    + _KEY.format(t="u")
    + " <= "
    + _KEY.format(t="{row}")
    + ")"
)
_PAGE_RUN = f"CASE WHEN page.report_type = 'T' THEN {_RUN_OF.format(row='page')} END AS run"
_PAGE_PASSED_IN_RUN = (
    "CASE WHEN page.report_type = 'T' THEN (SELECT "
    + _RUN_OF.format(row="p")
    + " FROM reports p WHERE "
    + _SAME_UNIT.format(u="p", row="page")
    + " AND p.result = 'P' ORDER BY "
    + _KEY.format(t="p")[1:-1]
    + " LIMIT 1) END AS passed_in_run"
)

# WATS reports the size in KB; the stored body's UTF-8 length, rounded up.
REPORT_SIZE_SQL = "((body_bytes + 1023) / 1024)"

_RESULT_WORDS = {"passed": "P", "failed": "F", "done": "D", "error": "E", "terminated": "T"}


def normalise_result(value: Any) -> Any:
    """Accept ``'Passed'`` as well as ``'P'`` in filters (WATS tools use both spellings)."""
    if isinstance(value, str):
        return _RESULT_WORDS.get(value.lower(), value)
    return value


# OData name → column. ``start`` is what pyWATS's filter builders use for ``startUtc``;
# ``userName`` is the name Virinco's own .NET header model gives the operator.
HEADER_FIELDS: Mapping[str, FieldSpec] = {
    "uuid": FieldSpec("uuid", FieldKind.STRING, lambda v: str(v).lower()),
    "serialNumber": FieldSpec("serial_number", FieldKind.STRING),
    "partNumber": FieldSpec("part_number", FieldKind.STRING),
    "revision": FieldSpec("revision", FieldKind.STRING),
    "batchNumber": FieldSpec("batch_number", FieldKind.STRING),
    "stationName": FieldSpec("station_name", FieldKind.STRING),
    "location": FieldSpec("location", FieldKind.STRING),
    "purpose": FieldSpec("purpose", FieldKind.STRING),
    "processCode": FieldSpec("process_code", FieldKind.INTEGER),
    "processName": FieldSpec("process_name", FieldKind.STRING),
    "testOperation": FieldSpec("test_operation", FieldKind.STRING),
    "result": FieldSpec("result", FieldKind.STRING, normalise_result),
    "startUtc": FieldSpec("start_utc", FieldKind.DATETIME),
    "start": FieldSpec("start_utc", FieldKind.DATETIME),
    "operator": FieldSpec("operator", FieldKind.STRING),
    "userName": FieldSpec("operator", FieldKind.STRING),
    "comment": FieldSpec("comment", FieldKind.STRING),
    "executionTime": FieldSpec("execution_time", FieldKind.NUMBER),
    "swFilename": FieldSpec("sw_filename", FieldKind.STRING),
    "swVersion": FieldSpec("sw_version", FieldKind.STRING),
    "testSocketIndex": FieldSpec("test_socket_index", FieldKind.INTEGER),
    "fixtureId": FieldSpec("fixture_id", FieldKind.STRING),
    "errorCode": FieldSpec("error_code", FieldKind.INTEGER),
    "errorMessage": FieldSpec("error_message", FieldKind.STRING),
    "run": FieldSpec("run", FieldKind.INTEGER),
    "passedInRun": FieldSpec("passed_in_run", FieldKind.INTEGER),
    "receiveCount": FieldSpec("receive_count", FieldKind.INTEGER),
    "reportSize": FieldSpec(REPORT_SIZE_SQL, FieldKind.INTEGER),
    "causedUutFailure": FieldSpec("caused_uut_failure", FieldKind.STRING),
    "causedUutFailurePath": FieldSpec("caused_uut_failure_path", FieldKind.STRING),
    "referencedUut": FieldSpec("referenced_uut", FieldKind.STRING, lambda v: str(v).lower()),
    "receivedUtc": FieldSpec("received_utc", FieldKind.DATETIME),
    "stepCount": FieldSpec("step_count", FieldKind.INTEGER),
}


@dataclass(frozen=True)
class ReportHeader:
    """The queryable summary of one report (what ``Query/Header`` and the HTML page show).

    ``run`` and ``passed_in_run`` are computed by queries (never stored); ``body_bytes`` is set by
    the store from the body it keeps.
    """

    uuid: str
    report_type: str
    serial_number: str
    part_number: str
    revision: str | None
    station_name: str | None
    location: str | None
    purpose: str | None
    process_code: int | None
    process_name: str | None
    result: str | None
    start_utc: str | None
    operator: str | None
    execution_time: float | None
    step_count: int
    received_utc: str
    receive_count: int = 1
    batch_number: str | None = None
    fixture_id: str | None = None
    sw_filename: str | None = None
    sw_version: str | None = None
    test_socket_index: int | None = None
    comment: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    test_operation: str | None = None
    referenced_uut: str | None = None
    caused_uut_failure: str | None = None
    caused_uut_failure_path: str | None = None
    body_bytes: int | None = None
    run: int | None = None
    passed_in_run: int | None = None

    @property
    def report_size_kb(self) -> int | None:
        """The stored body's size in KB (rounded up), as WATS's ``reportSize`` gives it."""
        return None if self.body_bytes is None else -(-self.body_bytes // 1024)

    def to_wire(self) -> dict[str, Any]:
        """The header as WATS's ``Query/Header`` spells it (camelCase)."""
        return {
            "uuid": self.uuid,
            "reportType": self.report_type,
            "serialNumber": self.serial_number,
            "partNumber": self.part_number,
            "revision": self.revision,
            "batchNumber": self.batch_number,
            "stationName": self.station_name,
            "location": self.location,
            "purpose": self.purpose,
            "processCode": self.process_code,
            "processName": self.process_name,
            "testOperation": self.test_operation,
            "result": self.result,
            "startUtc": self.start_utc,
            "start": self.start_utc,
            "operator": self.operator,
            "userName": self.operator,
            "comment": self.comment,
            "executionTime": self.execution_time,
            "swFilename": self.sw_filename,
            "swVersion": self.sw_version,
            "testSocketIndex": self.test_socket_index,
            "fixtureId": self.fixture_id,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "run": self.run,
            "passedInRun": self.passed_in_run,
            "receiveCount": self.receive_count,
            "reportSize": self.report_size_kb,
            "causedUutFailure": self.caused_uut_failure,
            "causedUutFailurePath": self.caused_uut_failure_path,
            "referencedUut": self.referenced_uut,
            "receivedUtc": self.received_utc,
            "stepCount": self.step_count,
        }


_COMPUTED = ("run", "passed_in_run")
_COLUMNS = list(ReportHeader.__dataclass_fields__)
_STORED = [c for c in _COLUMNS if c not in _COMPUTED]
_COMPUTED_WORD = re.compile(r"\b(run|passed_in_run)\b")


def _mentions_computed(sql: str) -> bool:
    """Whether a compiled filter or order names a run column (then every report is numbered
    first, so the filter sees the numbers)."""
    return _COMPUTED_WORD.search(sql) is not None


def _page_columns() -> str:
    """The select list over ``page`` with the run columns computed for its rows only."""
    computed = {"run": _PAGE_RUN, "passed_in_run": _PAGE_PASSED_IN_RUN}
    return ", ".join(computed.get(c, f"page.{c}") for c in _COLUMNS)


@dataclass(frozen=True)
class StoredReport:
    """A header with the stored WSJF text."""

    header: ReportHeader
    body: str


class ReportStore:
    """Reports keyed by id; writing an existing id replaces it (submission is idempotent)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DATABASE_FILE
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_SCHEMA)
        present = {row[1] for row in self._conn.execute("PRAGMA table_info(reports)")}
        for name, declaration in _ADDED_COLUMNS.items():
            if name not in present:
                self._conn.execute(f"ALTER TABLE reports ADD COLUMN {name} {declaration}")
        self._conn.executescript(_ADDED_INDEXES)

    def __repr__(self) -> str:
        return f"ReportStore({str(self.path)!r})"

    def close(self) -> None:
        """Checkpoint and close; safe to call twice."""
        with self._lock, contextlib.suppress(sqlite3.ProgrammingError):
            self._conn.close()

    def put(self, header: ReportHeader, body: str) -> bool:
        """Insert or replace the report; True when the id was new."""
        values = asdict(header)
        values["body"] = body
        values["body_bytes"] = len(body.encode("utf-8"))
        names = [*_STORED, "body"]
        updates = ", ".join(
            f"{n} = excluded.{n}" for n in names if n not in ("uuid", "receive_count")
        )
        sql = (
            f"INSERT INTO reports ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT(uuid) DO UPDATE SET {updates}, receive_count = receive_count + 1 "
            "RETURNING receive_count"
        )
        with self._lock:
            row = self._conn.execute(sql, [values[n] for n in names]).fetchone()
        return bool(row and row[0] == 1)

    def backfill(self, derive: Callable[[str], Mapping[str, Any]]) -> int:
        """Fill the later-added header columns of rows stored by an older version.

        ``derive`` maps a stored body to those columns' values (``ingest.header_extras``); rows
        without ``body_bytes`` are the old ones. Returns how many rows were filled.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT uuid, body FROM reports WHERE body_bytes IS NULL"
            ).fetchall()
        for report_id, body in rows:
            values = dict(derive(body))
            values["body_bytes"] = len(body.encode("utf-8"))
            names = [n for n in values if n in _ADDED_COLUMNS]
            assignments = ", ".join(f"{n} = ?" for n in names)
            with self._lock:
                self._conn.execute(
                    f"UPDATE reports SET {assignments} WHERE uuid = ?",
                    [*(values[n] for n in names), report_id],
                )
        return len(rows)

    def _select(
        self,
        *,
        inner: str = "",
        inner_params: list[Any] | None = None,
        outer: str = "",
        outer_params: list[Any] | None = None,
        tail: str = "",
        tail_params: list[Any] | None = None,
        with_body: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Rows with the computed run columns; ``inner`` restricts which reports are numbered
        (only by whole units, so numbering stays right), ``outer`` which are returned."""
        columns = ", ".join(_COLUMNS) + (", body" if with_body else "")
        # Only the columns wanted: a body (100 KB) carried through the window's sort costs
        # far more than the numbering itself.
        stored = ", ".join(_STORED) + (", body" if with_body else "")
        sql = (
            "WITH "
            + _NUMBERED.format(inner=inner, columns=stored)
            + f" SELECT {columns} FROM ranked {outer} {tail}"
        )
        bound = [*(inner_params or []), *(outer_params or []), *(tail_params or [])]
        with self._lock:
            return self._conn.execute(sql, bound).fetchall()

    def get(self, uuid: str) -> StoredReport | None:
        """The report with this id (case-insensitive), or None."""
        unit = (
            "WHERE (report_type, part_number, serial_number, process_code) IS "
            "(SELECT report_type, part_number, serial_number, process_code "
            "FROM reports WHERE uuid = ?)"
        )
        rows = self._select(
            inner=unit,
            inner_params=[uuid.lower()],
            outer="WHERE uuid = ?",
            outer_params=[uuid.lower()],
            with_body=True,
        )
        if not rows:
            return None
        return StoredReport(ReportHeader(*rows[0][:-1]), rows[0][-1])

    def get_body(self, uuid: str) -> str | None:
        """Only the WSJF text (the fetch endpoint needs nothing else)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM reports WHERE uuid = ?", (uuid.lower(),)
            ).fetchone()
        return row[0] if row else None

    def get_bodies(self, uuids: list[str]) -> dict[str, str]:
        """The WSJF texts of several reports by id (for ``$expand``)."""
        if not uuids:
            return {}
        marks = ", ".join("?" * len(uuids))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT uuid, body FROM reports WHERE uuid IN ({marks})", uuids
            ).fetchall()
        return dict(rows)

    def query(
        self,
        *,
        report_type: str | None = None,
        where: str | None = None,
        params: list[Any] | None = None,
        order_by: str | None = None,
        top: int | None = None,
        skip: int = 0,
    ) -> list[ReportHeader]:
        """Headers matching a compiled filter (see :mod:`wats.server.odata`)."""
        inner, inner_params = "", []
        if report_type:  # a unit never spans report types: numbering stays right
            inner, inner_params = "WHERE report_type = ?", [report_type]
        outer = f"WHERE {where}" if where else ""
        order = f"ORDER BY {order_by or 'start_utc DESC'}, uuid"
        limits = [-1 if top is None else top, skip]
        if not _mentions_computed(f"{where or ''} {order_by or ''}"):
            # The page first, then its run numbers: per row returned, not per report stored.
            clauses = ("report_type = ?" if report_type else "", where or "")
            inner_where = " AND ".join(clause for clause in clauses if clause)
            # Two steps: the page's ids (sorting only what the filter and order name), then
            # its rows. Columns added after ``body`` sit behind its overflow pages, so reading
            # them for every report to sort would cost ~30 ms per 1,000 stored reports.
            sql = (
                f"WITH ids AS (SELECT uuid FROM reports"
                f"{' WHERE ' + inner_where if inner_where else ''} {order} LIMIT ? OFFSET ?), "
                f"page AS (SELECT {', '.join(_STORED)} FROM reports WHERE uuid IN ids) "
                f"SELECT {_page_columns()} FROM page {order}"
            )
            bound = [*([report_type] if report_type else []), *(params or []), *limits]
            with self._lock:
                return [ReportHeader(*row) for row in self._conn.execute(sql, bound).fetchall()]
        tail = f"{order} LIMIT ? OFFSET ?"
        rows = self._select(
            inner=inner,
            inner_params=inner_params,
            outer=outer,
            outer_params=list(params or []) if where else [],
            tail=tail,
            tail_params=limits,
        )
        return [ReportHeader(*row) for row in rows]

    def count_matching(self, *, where: str | None = None, params: list[Any] | None = None) -> int:
        """How many reports a compiled filter matches (the page's "n of m")."""
        sql = "SELECT COUNT(*) FROM reports" + (f" WHERE {where}" if where else "")
        with self._lock:
            return int(self._conn.execute(sql, list(params or [])).fetchone()[0])

    def latest(
        self,
        limit: int = 100,
        *,
        offset: int = 0,
        where: str | None = None,
        params: list[Any] | None = None,
    ) -> list[ReportHeader]:
        """The most recently received reports, newest first (the HTML page's list)."""
        return self.query(
            where=where, params=params, order_by="received_utc DESC", top=limit, skip=offset
        )

    def count(self) -> int:
        """How many distinct report ids are stored."""
        return self.count_matching()
