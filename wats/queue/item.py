"""What one queued report looks like on disk and in memory.

A queue file ``<id>.json`` is one JSON object, always laid out the same way::

    {"meta":{...small, ASCII-only...},"report":<the WSJF body, byte for byte as it is posted>}

Why this layout: the meta comes first and is pure ASCII, so the uploader's scans read only a
file's first few kilobytes and decode the meta without touching the ~100 KB report; and the
report is stored exactly as it will be sent, so uploading it is a read and a slice, never a
parse and a re-encode. The file is still ordinary JSON, so ``json.load`` (or ``jq``) reads it.
A file written some other way (spaces, keys in another order) is read by a full parse instead.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic_core import to_json

__all__ = [
    "STATES",
    "ItemNotFound",
    "QueueCounts",
    "QueueItem",
    "QueueMeta",
    "QueueState",
    "canonical_id",
    "decode_item",
    "encode_file",
    "encode_item",
    "encode_report",
    "read_meta",
    "split_file",
]

QueueState = Literal["pending", "failed", "completed"]
STATES: tuple[QueueState, ...] = ("pending", "failed", "completed")

_PREFIX = b'{"meta":'
_MIDDLE = b',"report":'
# How much of a file a meta-only read takes first; a longer meta (a long error) reads the rest.
_HEAD_BYTES = 4096


class ItemNotFound(KeyError):
    """The report is not in the state the operation needs (e.g. ``mark_uploaded`` of a report
    that is no longer pending). Carries ``report_id`` and the ``state`` that was searched."""

    def __init__(self, report_id: str, state: str) -> None:
        super().__init__(report_id)
        self.report_id = report_id
        self.state = state

    def __str__(self) -> str:
        return f"report {self.report_id} is not {self.state}"


def canonical_id(value: object) -> str:
    """The report id as the queue names its file: a lower-case hyphenated UUID.

    Refusing anything else keeps a report id from ever becoming a path (``../x``) and makes the
    same id always map to the same file name.
    """
    try:
        return str(uuid.UUID(str(value)))
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"report id must be a UUID, got {value!r}") from None


@dataclass(frozen=True)
class QueueMeta:
    """The bookkeeping kept next to a report: where it came from and how delivery is going."""

    id: str
    attempts: int = 0
    next_attempt: float = 0.0  # epoch seconds; due when <= now
    last_error: str | None = None
    source_file: str | None = None
    converter: str | None = None
    station: str | None = None
    source_sha256: str | None = None  # the source's content hash: tells a duplicate apart
    queued_at: float = 0.0
    uploaded_at: float | None = None
    failed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The meta as the JSON object stored in the file."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> QueueMeta:
        """Read a stored meta object; unknown keys are ignored (a newer writer may add some)."""
        if not isinstance(data, dict):
            raise ValueError("meta must be a JSON object")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["id"] = canonical_id(values.get("id"))
        values["attempts"] = int(values.get("attempts") or 0)
        values["next_attempt"] = float(values.get("next_attempt") or 0.0)
        values["queued_at"] = float(values.get("queued_at") or 0.0)
        for name in ("uploaded_at", "failed_at"):
            if values.get(name) is not None:
                values[name] = float(values[name])
        return cls(**values)


@dataclass(frozen=True)
class QueueItem:
    """One queued report: its state (the folder it is in), meta, and its file.

    The report body is read lazily: items from ``due()`` and ``list()`` carry only the meta, so
    scanning thousands of reports reads none of their bodies. ``report_bytes()`` gives the body
    exactly as stored (what the uploader posts); ``report`` parses it on first use.
    """

    state: QueueState
    meta: QueueMeta
    path: Path
    body: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        """The report id (also the file's stem)."""
        return self.meta.id

    @property
    def attempts(self) -> int:
        """Failed upload attempts so far."""
        return self.meta.attempts

    @property
    def next_attempt(self) -> float:
        """Epoch seconds from which the uploader may try again."""
        return self.meta.next_attempt

    @property
    def last_error(self) -> str | None:
        """The last upload error (the server's message for a failed report)."""
        return self.meta.last_error

    def report_bytes(self) -> bytes:
        """The WSJF body as stored (UTF-8 JSON), ready to post; read from the file if this item
        was made from the meta alone. ``ItemNotFound`` when the file has left ``state``."""
        if self.body is not None:
            return self.body
        try:
            data = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ItemNotFound(self.id, self.state) from None
        return split_file(data, self.path)[1]

    @cached_property
    def report(self) -> dict[str, Any]:
        """The WSJF body as a dict (parsed once, on first use)."""
        report = json.loads(self.report_bytes())
        if not isinstance(report, dict):
            raise ValueError(f"{self.path}: the report is not a JSON object")
        return report

    def with_meta(self, **changes: Any) -> QueueItem:
        """A copy with some meta fields changed (the body, if loaded, comes along)."""
        return replace(self, meta=replace(self.meta, **changes))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description without the report body (for ``queue list --json``)."""
        return {"state": self.state, **self.meta.to_json(), "path": str(self.path)}


@dataclass(frozen=True)
class QueueCounts:
    """How many reports each folder holds, counted from the folders themselves."""

    pending: int = 0
    failed: int = 0
    completed: int = 0

    def to_json(self) -> dict[str, int]:
        """The counts as a JSON object (``status --json``, ``queue.stats``)."""
        return asdict(self)


def encode_report(report: dict[str, Any]) -> bytes:
    """A report's stored (and posted) form: compact UTF-8 JSON.

    Encoded by pydantic-core's serializer, about 2.5 times as fast as ``json.dumps`` on a 100 KB
    report (this runs once per report on the pipeline's hot path). Floats are written in their
    shortest round-trip form, which may differ in spelling from ``json.dumps`` (``4.55e-05``
    against ``0.0000455``) but never in value. Non-finite numbers are written as
    ``NaN``/``Infinity`` rather than refused here, so queueing never fails on them; the uploader
    refuses to post such a body (not JSON). Anything that cannot be encoded (a lone surrogate, an
    object that is not JSON data) raises ``ValueError``.
    """
    return to_json(report, inf_nan_mode="constants")


def encode_file(meta: QueueMeta, body: bytes) -> bytes:
    """The file content for a meta and an already encoded report body."""
    head = json.dumps(meta.to_json(), ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return b"".join((_PREFIX, head, _MIDDLE, body, b"}"))


def encode_item(meta: QueueMeta, report: dict[str, Any]) -> bytes:
    """The file content for a report and its meta."""
    return encode_file(meta, encode_report(report))


def _meta_end(data: bytes) -> tuple[dict[str, Any], int] | None:
    """The meta object at the start of ``data`` and the offset just after it, if the file has
    the canonical layout and its meta is complete within ``data``; else None."""
    if not data.startswith(_PREFIX):
        return None
    try:
        # latin-1 maps bytes 1:1 to characters, so string offsets are byte offsets; the meta is
        # written ASCII-only, and anything that is not (a hand-made file) is refused below.
        raw, end = json.JSONDecoder().raw_decode(data.decode("latin-1"), len(_PREFIX))
    except ValueError:
        return None
    if not isinstance(raw, dict) or not data[:end].isascii():
        return None
    return raw, end


def split_file(data: bytes, path: Path) -> tuple[QueueMeta, bytes]:
    """A queue file's meta and its report body (bytes, as stored); ``ValueError`` naming the file
    when it is not a queue file. The canonical layout is sliced, anything else parsed."""
    try:
        found = _meta_end(data)
        if found is not None:
            raw, end = found
            tail = data.rstrip()
            if data.startswith(_MIDDLE, end) and tail.endswith(b"}"):
                body = tail[end + len(_MIDDLE) : -1]
                if body[:1] == b"{":
                    return QueueMeta.from_json(raw), body
        document = json.loads(data)
        if not isinstance(document, dict) or not isinstance(document.get("report"), dict):
            raise ValueError("expected {'meta': {...}, 'report': {...}}")
        return QueueMeta.from_json(document.get("meta")), encode_report(document["report"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a queue file ({exc})") from None


def read_meta(path: Path) -> tuple[QueueMeta, os.stat_result]:
    """Only the meta of the queue file at ``path`` (and the open file's stat), reading its first
    few kilobytes: what scans need. ``FileNotFoundError`` if it is gone, ``ValueError`` naming
    the file if it is not a queue file."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        head = handle.read(_HEAD_BYTES)
        found = _meta_end(head)
        if found is None and len(head) == _HEAD_BYTES:
            head += handle.read()  # a long meta, or not our layout: the whole file
            found = _meta_end(head)
    if found is not None:
        try:
            return QueueMeta.from_json(found[0]), info
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a queue file ({exc})") from None
    return split_file(head, path)[0], info


def decode_item(data: bytes, *, state: QueueState, path: Path) -> QueueItem:
    """Parse a whole queue file (meta and body); ``ValueError`` naming the file when it is not
    one."""
    meta, body = split_file(data, path)
    return QueueItem(state=state, meta=meta, path=path, body=body)
