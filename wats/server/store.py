"""SQLite storage of received reports: one row per report id, header columns plus the WSJF text.

Why SQLite: the embedded server must survive restarts with its data, answer header queries with
filters and sorting, and be fast enough that it never limits a client benchmark. WAL mode lets the
HTML page read while reports are written; ``synchronous=NORMAL`` keeps commits cheap (a committed
report survives a process crash; only an OS crash can lose the last moments, acceptable for a
test peer). One connection guarded by a lock serves all threads.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Mapping
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

_RESULT_WORDS = {"passed": "P", "failed": "F", "done": "D", "error": "E", "terminated": "T"}


def normalise_result(value: Any) -> Any:
    """Accept ``'Passed'`` as well as ``'P'`` in filters (WATS tools use both spellings)."""
    if isinstance(value, str):
        return _RESULT_WORDS.get(value.lower(), value)
    return value


# OData name → column. ``start`` is what pyWATS's filter builders use for ``startUtc``.
HEADER_FIELDS: Mapping[str, FieldSpec] = {
    "uuid": FieldSpec("uuid", FieldKind.STRING, lambda v: str(v).lower()),
    "serialNumber": FieldSpec("serial_number", FieldKind.STRING),
    "partNumber": FieldSpec("part_number", FieldKind.STRING),
    "revision": FieldSpec("revision", FieldKind.STRING),
    "stationName": FieldSpec("station_name", FieldKind.STRING),
    "location": FieldSpec("location", FieldKind.STRING),
    "purpose": FieldSpec("purpose", FieldKind.STRING),
    "processCode": FieldSpec("process_code", FieldKind.INTEGER),
    "processName": FieldSpec("process_name", FieldKind.STRING),
    "result": FieldSpec("result", FieldKind.STRING, normalise_result),
    "startUtc": FieldSpec("start_utc", FieldKind.DATETIME),
    "start": FieldSpec("start_utc", FieldKind.DATETIME),
    "operator": FieldSpec("operator", FieldKind.STRING),
    "executionTime": FieldSpec("execution_time", FieldKind.NUMBER),
    "receivedUtc": FieldSpec("received_utc", FieldKind.DATETIME),
    "stepCount": FieldSpec("step_count", FieldKind.INTEGER),
}


@dataclass(frozen=True)
class ReportHeader:
    """The queryable summary of one report (what ``Query/Header`` and the HTML page show)."""

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

    def to_wire(self) -> dict[str, Any]:
        """The header as WATS's ``Query/Header`` spells it (camelCase)."""
        return {
            "uuid": self.uuid,
            "reportType": self.report_type,
            "serialNumber": self.serial_number,
            "partNumber": self.part_number,
            "revision": self.revision,
            "stationName": self.station_name,
            "location": self.location,
            "purpose": self.purpose,
            "processCode": self.process_code,
            "processName": self.process_name,
            "result": self.result,
            "startUtc": self.start_utc,
            "operator": self.operator,
            "executionTime": self.execution_time,
            "receiveCount": self.receive_count,
            "receivedUtc": self.received_utc,
            "stepCount": self.step_count,
        }


_COLUMNS = list(ReportHeader.__dataclass_fields__)


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
        names = [*_COLUMNS, "body"]
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

    def get(self, uuid: str) -> StoredReport | None:
        """The report with this id (case-insensitive), or None."""
        sql = f"SELECT {', '.join(_COLUMNS)}, body FROM reports WHERE uuid = ?"
        with self._lock:
            row = self._conn.execute(sql, (uuid.lower(),)).fetchone()
        if row is None:
            return None
        return StoredReport(ReportHeader(*row[:-1]), row[-1])

    def get_body(self, uuid: str) -> str | None:
        """Only the WSJF text (the fetch endpoint needs nothing else)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM reports WHERE uuid = ?", (uuid.lower(),)
            ).fetchone()
        return row[0] if row else None

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
        conditions: list[str] = []
        bound: list[Any] = []
        if report_type:
            conditions.append("report_type = ?")
            bound.append(report_type)
        if where:
            conditions.append(where)
            bound.extend(params or [])
        sql = f"SELECT {', '.join(_COLUMNS)} FROM reports"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += f" ORDER BY {order_by or 'start_utc DESC'}, uuid"
        sql += " LIMIT ? OFFSET ?"
        bound.extend([-1 if top is None else top, skip])
        with self._lock:
            rows = self._conn.execute(sql, bound).fetchall()
        return [ReportHeader(*row) for row in rows]

    def latest(self, limit: int = 100) -> list[ReportHeader]:
        """The most recently received reports, newest first (the HTML page's list)."""
        return self.query(order_by="received_utc DESC", top=limit)

    def count(self) -> int:
        """How many distinct report ids are stored."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0])
