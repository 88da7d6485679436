"""Admitting a source's reports: new, duplicate, or an id conflict (wats.queue.intake)."""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path

import pytest

from wats.converters.stamp import restamped_id, stamped_body
from wats.queue import ReportQueue
from wats.queue.intake import Admission, CandidateReport, IdConflictRefused, plan_admission

DIGEST_A = "aa" * 32
DIGEST_B = "bb" * 32
OWN = str(uuid.uuid4())


@pytest.fixture
def queue(tmp_path: Path) -> ReportQueue:
    return ReportQueue(tmp_path / "queue")


STATION = {"name": "ICT-1", "location": "Line 1", "purpose": "Production"}


def _candidate(report_id: str, serial: str, *, kept: bool = True) -> CandidateReport:
    derived = str(uuid.uuid5(uuid.NAMESPACE_URL, serial))
    body = stamped_body({"sn": serial}, report_id, STATION)
    renamed = functools.partial(restamped_id, body, report_id, station=STATION)
    return CandidateReport(report_id, derived, kept, body, STATION, renamed)


def _queue(queue: ReportQueue, candidate: CandidateReport, digest: str) -> None:
    assert queue.enqueue_encoded(
        candidate.id,
        candidate.body,
        converter="wsjf",
        source_file="/done/a.json",
        station="ICT-1",
        source_sha256=digest,
    )


def test_an_unknown_id_is_new(queue: ReportQueue) -> None:
    [planned] = plan_admission(
        queue, [_candidate(OWN, "SN1")], digest=DIGEST_A, new_id_on_conflict=True
    )
    assert (planned.id, planned.admission) == (OWN, Admission.NEW)


def test_the_same_content_again_is_a_duplicate_wherever_the_queue_holds_it(
    queue: ReportQueue,
) -> None:
    first = _candidate(OWN, "SN1")
    _queue(queue, first, DIGEST_A)
    [again] = plan_admission(queue, [first], digest=DIGEST_B, new_id_on_conflict=True)
    assert (again.id, again.admission, again.earlier_state) == (OWN, Admission.DUPLICATE, "pending")
    queue.mark_uploaded(OWN)
    [later] = plan_admission(queue, [first], digest=DIGEST_B, new_id_on_conflict=True)
    assert (later.admission, later.earlier_state) == (Admission.DUPLICATE, "completed")
    assert later.earlier_source == "/done/a.json"


def test_the_same_source_converted_again_is_a_duplicate_even_if_its_body_changed(
    queue: ReportQueue,
) -> None:
    _queue(queue, _candidate(OWN, "SN1"), DIGEST_A)
    # e.g. the configured station changed between the two conversions of one file
    changed = _candidate(OWN, "SN1-restamped")
    [planned] = plan_admission(queue, [changed], digest=DIGEST_A, new_id_on_conflict=True)
    assert planned.admission is Admission.DUPLICATE


def test_other_content_under_a_taken_id_goes_out_under_its_derived_id(queue: ReportQueue) -> None:
    _queue(queue, _candidate(OWN, "SN1"), DIGEST_A)
    other = _candidate(OWN, "SN2")
    [planned] = plan_admission(queue, [other], digest=DIGEST_B, new_id_on_conflict=True)
    assert planned.admission is Admission.NEW_ID
    assert planned.id == other.derived_id != OWN
    assert (planned.conflicting_id, planned.earlier_state) == (OWN, "pending")
    # what is queued carries the new id, not the one that was taken
    assert json.loads(planned.body) == {**json.loads(other.body), "id": other.derived_id}


def test_refuse_raises_before_anything_of_the_file_is_planned(queue: ReportQueue) -> None:
    _queue(queue, _candidate(OWN, "SN1"), DIGEST_A)
    fresh = _candidate(str(uuid.uuid4()), "SN9")
    with pytest.raises(IdConflictRefused, match=r"report 1 carries id .*refuse"):
        plan_admission(
            queue, [fresh, _candidate(OWN, "SN2")], digest=DIGEST_B, new_id_on_conflict=False
        )


def test_a_derived_id_already_queued_is_always_the_same_source(queue: ReportQueue) -> None:
    derived = _candidate(str(uuid.uuid4()), "SN1", kept=False)
    _queue(queue, derived, DIGEST_A)
    queue_file = queue.path_for(derived.id, "pending")
    queue_file.write_bytes(queue_file.read_bytes().replace(b'"source_sha256"', b'"x"'))
    restamped = CandidateReport(derived.id, derived.derived_id, False, b'{"other":1}', STATION)
    [planned] = plan_admission(queue, [restamped], digest=DIGEST_B, new_id_on_conflict=False)
    assert planned.admission is Admission.DUPLICATE


def test_one_id_twice_in_one_file_is_judged_like_any_other_holder(queue: ReportQueue) -> None:
    same_twice = plan_admission(
        queue,
        [_candidate(OWN, "SN1"), _candidate(OWN, "SN1")],
        digest=DIGEST_A,
        new_id_on_conflict=True,
    )
    assert [p.admission for p in same_twice] == [Admission.NEW, Admission.DUPLICATE]
    template = plan_admission(
        queue,
        [_candidate(OWN, "SN1"), _candidate(OWN, "SN2")],
        digest=DIGEST_A,
        new_id_on_conflict=True,
    )
    assert [p.admission for p in template] == [Admission.NEW, Admission.NEW_ID]
    assert template[1].earlier_state == "earlier in this file"
