"""Admitting one source's reports into the queue: new, a duplicate, or an id conflict.

Why a module of its own: a report that keeps its source's id (WSJF, WSXF) can meet an id the
queue already holds, and what that means depends on the content. The same content again (the
same file dropped twice, or converted again after a crash) is a **duplicate**: nothing new is
queued, and the caller says so instead of claiming a new report. Other content under the same id
(a station program that never renews its template's id) is an **id conflict**, which must never
silently replace the earlier report (DESIGN invariant 3): the converter's ``on_id_conflict``
says whether the report goes out under its derived id instead, or the whole file is refused.

The plan is made for every report of a source before any is queued, so a refused file queues
nothing (a file is never half delivered). Derived ids cannot conflict: they are made from the
source's content hash, so the same id means the same source.

Detection reaches as far back as the queue remembers: pending and failed reports, and completed
ones while ``keep_completed`` and the retention limits keep them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from wats.queue.store import ReportQueue

__all__ = ["Admission", "CandidateReport", "IdConflictRefused", "PlannedReport", "plan_admission"]


class Admission(StrEnum):
    """What becomes of one report of a source (crosses into events and the CLI)."""

    NEW = "new"  # queued under the id the pipeline decided
    DUPLICATE = "duplicate"  # the same report is already queued or delivered: nothing queued
    NEW_ID = "new-id"  # its own id is taken by other content: queued under its derived id


@dataclass(frozen=True)
class CandidateReport:
    """One report of a source as the converter worker checked it: the id the pipeline decided,
    the derived id it would have otherwise, whether the decided one is the source's own, its
    queue body and the station name it carries."""

    id: str
    derived_id: str
    kept_source_id: bool
    body: bytes
    station: dict[str, str]
    renamed: Callable[[str], bytes] | None = None
    """The body with its id changed to the one given (for a report queued under its derived id
    after a conflict); None: the body is queued as it is."""


@dataclass(frozen=True)
class PlannedReport:
    """One report's admission: the id it is (or already was) queued under, and why.

    ``earlier_state`` and ``earlier_source`` describe the report already holding the id, for a
    duplicate or a conflict; ``conflicting_id`` is the source's own id that was taken.
    """

    id: str
    candidate: CandidateReport
    admission: Admission
    earlier_state: str | None = None
    earlier_source: str | None = None
    conflicting_id: str | None = None
    renamed_body: bytes | None = None

    @property
    def body(self) -> bytes:
        """What is queued: the candidate's body, or for a report renamed after an id
        conflict, that body under its new id."""
        return self.renamed_body if self.renamed_body is not None else self.candidate.body


class IdConflictRefused(Exception):
    """A report's own id is taken by other content and the converter says ``refuse``."""

    def __init__(self, index: int, report_id: str, state: str, source: str | None) -> None:
        where = f" (from {source})" if source else ""
        super().__init__(
            f"report {index} carries id {report_id}, which the queue already holds as a "
            f"{state} report with other content{where}; nothing of this file was queued "
            '(on_id_conflict = "refuse"; "new-id" would deliver it under a derived id)'
        )
        self.report_id = report_id


def plan_admission(
    queue: ReportQueue,
    reports: Sequence[CandidateReport],
    *,
    digest: str,
    new_id_on_conflict: bool,
) -> list[PlannedReport]:
    """Decide, for each report of one source (SHA-256 ``digest``), whether it is new, a
    duplicate, or queued under its derived id; raises :class:`IdConflictRefused` when a
    conflict must refuse the file. Reads only."""
    planned: list[PlannedReport] = []
    in_this_file: dict[str, bytes] = {}
    for index, report in enumerate(reports):
        report_id, body = report.id, report.body
        taken = _holder(queue, report_id, in_this_file, digest, body)
        if taken is None:
            planned.append(PlannedReport(report_id, report, Admission.NEW))
        elif taken[0] or not report.kept_source_id:
            # a derived id is made from the source's content: whoever holds it came from the
            # same source, whatever its body (a station identity configured since, say)
            planned.append(PlannedReport(report_id, report, Admission.DUPLICATE, *taken[1:]))
        elif not new_id_on_conflict:
            raise IdConflictRefused(index, report_id, taken[1], taken[2])
        else:
            renamed = report.renamed(report.derived_id) if report.renamed else body
            again = _holder(queue, report.derived_id, in_this_file, digest, renamed)
            admission = Admission.NEW_ID if again is None else Admission.DUPLICATE
            planned.append(
                PlannedReport(
                    report.derived_id, report, admission, taken[1], taken[2], report_id, renamed
                )
            )
        in_this_file[planned[-1].id] = planned[-1].body
    return planned


def _holder(
    queue: ReportQueue, report_id: str, in_this_file: dict[str, bytes], digest: str, body: bytes
) -> tuple[bool, str, str | None] | None:
    """Who already holds ``report_id``: None when nobody; else (same content?, state, source).

    The same content: the same body bytes, or a body made from the same source (converted
    again after its configuration changed, say)."""
    if report_id in in_this_file:
        return in_this_file[report_id] == body, "earlier in this file", None
    item = queue.get(report_id)
    if item is None:
        return None
    same = item.meta.source_sha256 == digest or item.report_bytes() == body
    return same, item.state, item.meta.source_file
