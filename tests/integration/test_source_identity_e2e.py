"""A report reaches the server as its file recorded it: its own id, its own station.

A real supervisor with watcher, converter and uploader workers, files dropped into watch
folders, the embedded server receiving over HTTP. Covers: a repair report (UUR) still pointing
at the test report it repairs; the file's station winning over the configured one unless the
converter overrides it; a second copy of a delivered file said to be a duplicate; other content
under an id already delivered never replacing it (new id by default, refused on request).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.pipeline_harness import EventStream, Pipeline, pipeline, small_report, wait_for

pytestmark = pytest.mark.timeout(120)

CONVERTERS: dict[str, dict[str, Any]] = {
    "wsjf": {"converter": "wsjf"},
    "strict": {"converter": "wsjf", "on_id_conflict": "refuse"},
    "fixed": {"converter": "wsjf", "override_file_station": True},
}


@pytest.fixture(scope="module")
def pipe() -> Iterator[Pipeline]:
    with pipeline(converters=CONVERTERS) as running:
        running.wait_workers()
        yield running


@pytest.fixture
def events(pipe: Pipeline) -> Iterator[EventStream]:
    stream = pipe.events("--all")  # heartbeats too: the first one says we are subscribed
    stream.wait_for(lambda e: e["type"].endswith("heartbeat"), 20, "a heartbeat (subscribed)")
    yield stream


def _report(serial: str, *, station: str = "ICT-07", report_id: str | None = None) -> bytes:
    data = json.loads(small_report(serial))
    data.update(machineName=station, location="Line 2", purpose="Production")
    if report_id is not None:
        data["id"] = report_id
    return json.dumps(data).encode()


def _on_server(pipe: Pipeline, report_id: str) -> dict[str, Any] | None:
    body = pipe.server.context.store.get_body(report_id)
    return json.loads(body) if body is not None else None


def _wait_on_server(pipe: Pipeline, report_id: str, timeout: float = 45.0) -> dict[str, Any]:
    return wait_for(lambda: _on_server(pipe, report_id), timeout, f"report {report_id}")


def test_a_repair_report_arrives_still_referring_to_the_test_report_it_repairs(
    pipe: Pipeline, samples_dir: Path
) -> None:
    uut = json.loads(_report("ID-UUR-001"))
    uur = json.loads((samples_dir / "wsjf" / "uur_example.json").read_bytes())
    uur["id"] = str(uuid.uuid4())
    uur["sn"] = "ID-UUR-001"
    uur["uur"]["refUUT"] = uut["id"]
    pipe.drop("wsjf", "uut.json", json.dumps(uut).encode())
    pipe.drop("wsjf", "uur.json", json.dumps(uur).encode())
    tested = _wait_on_server(pipe, uut["id"])
    repaired = _wait_on_server(pipe, uur["id"])
    assert tested["sn"] == repaired["sn"] == "ID-UUR-001"
    assert repaired["uur"]["refUUT"] == uut["id"]


def test_each_report_carries_the_station_its_file_records(pipe: Pipeline) -> None:
    recorded = json.loads(_report("ID-ST-001", station="ICT-07"))
    blank = json.loads(_report("ID-ST-002"))
    blank.update(location="", purpose="")  # what the file leaves empty, configuration fills
    pipe.drop("wsjf", "station.json", json.dumps(recorded).encode())
    pipe.drop("wsjf", "blank.json", json.dumps(blank).encode())
    own = _wait_on_server(pipe, recorded["id"])
    filled = _wait_on_server(pipe, blank["id"])
    assert (own["machineName"], own["location"], own["purpose"]) == (
        "ICT-07",
        "Line 2",
        "Production",
    )
    assert filled["machineName"] == "ICT-07"
    station = pipe.cfg.station_for(pipe.cfg.converter("wsjf"))
    assert (filled["location"], filled["purpose"]) == (station.location, station.purpose)


def test_override_file_station_puts_the_configured_identity_on_the_report(pipe: Pipeline) -> None:
    report = json.loads(_report("ID-ST-003", station="PC-meaningless"))
    pipe.drop("fixed", "fixed.json", json.dumps(report).encode())
    stored = _wait_on_server(pipe, report["id"])
    assert stored["machineName"] == "e2e-station"  # [station] name of the harness


def test_a_second_copy_of_a_delivered_file_is_said_to_be_a_duplicate(
    pipe: Pipeline, events: EventStream
) -> None:
    data = _report("ID-DUP-001")
    report_id = json.loads(data)["id"]
    pipe.drop("wsjf", "dup-1.json", data)
    _wait_on_server(pipe, report_id)
    wait_for(lambda: pipe.queue.get(report_id).state == "completed", 20, "upload recorded")
    pipe.drop("wsjf", "dup-2.json", data)
    duplicate = events.wait_for(
        lambda e: e["type"] == "report.duplicate" and e["body"]["source"] == "dup-2.json",
        30,
        "report.duplicate for the second copy",
    )
    assert duplicate["body"]["id"] == report_id and duplicate["body"]["state"] == "completed"
    converted = events.wait_for(
        lambda e: e["type"] == "file.converted" and e["body"]["path"].endswith("dup-2.json"),
        30,
        "file.converted for the second copy",
    )
    assert converted["body"]["duplicates"] == [report_id]
    assert [h.serial_number for h in pipe.server_headers()].count("ID-DUP-001") == 1
    # status shows the converter's count from its heartbeats: the next one carries it
    counted = re.compile(r"\b[1-9]\d* duplicate reports? \(already delivered")
    wait_for(lambda: counted.search(pipe.cli("status").stdout), 10, "the duplicate in status")


def test_other_content_under_a_delivered_id_goes_out_under_a_new_id_and_is_said(
    pipe: Pipeline, events: EventStream
) -> None:
    template_id = str(uuid.uuid4())
    pipe.drop("wsjf", "template-1.json", _report("ID-TPL-001", report_id=template_id))
    _wait_on_server(pipe, template_id)
    pipe.drop("wsjf", "template-2.json", _report("ID-TPL-002", report_id=template_id))
    conflict = events.wait_for(
        lambda e: e["type"] == "report.id_conflict" and e["body"]["own_id"] == template_id,
        30,
        "report.id_conflict",
    )
    second = _wait_on_server(pipe, conflict["body"]["id"])
    assert second["sn"] == "ID-TPL-002" and second["id"] != template_id
    first = _on_server(pipe, template_id)
    assert first is not None and first["sn"] == "ID-TPL-001"  # not replaced


def test_a_converter_that_refuses_id_conflicts_sends_the_file_to_error(pipe: Pipeline) -> None:
    template_id = str(uuid.uuid4())
    pipe.drop("strict", "strict-1.json", _report("ID-REF-001", report_id=template_id))
    _wait_on_server(pipe, template_id)
    pipe.drop("strict", "strict-2.json", _report("ID-REF-002", report_id=template_id))
    [refused] = wait_for(
        lambda: pipe.sources("strict", "error") or None, 30, "the second file in error/"
    )
    reason = pipe.error_reason(refused)
    assert reason["reason"] == "id_conflict" and template_id in reason["message"]
    assert [h.serial_number for h in pipe.server_headers()].count("ID-REF-002") == 0
    stored = _on_server(pipe, template_id)
    assert stored is not None and stored["sn"] == "ID-REF-001"
