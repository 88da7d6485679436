"""The embedded server answers like WATS: every header field, ``$expand``, and the Wsjf fetch's
``detailLevel``, ``includeChartdata`` and ``includeAttachments`` (real HTTP on 127.0.0.1).

Expected values are read from the submitted reports themselves, so a field that the server
computes from the wrong place, or not at all, fails here.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import math
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from wats.server.store import DATABASE_FILE
from wats.server.testing import EmbeddedServer

pytestmark = pytest.mark.timeout(60)

HEADER = "/api/Report/Query/Header"


@pytest.fixture
def client(wats_server: EmbeddedServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=wats_server.url, headers=wats_server.auth_headers, timeout=10
    ) as http:
        yield http


def _sample(samples_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((samples_dir / "wsjf" / name).read_text("utf-8"))


def _submit(client: httpx.Client, report: dict[str, Any]) -> None:
    answer = client.post("/api/Report/WSJF", json=report)
    assert answer.status_code == 200, answer.text


def _header(client: httpx.Client, report_id: str, kind: str = "U", **params: str) -> dict:
    answer = client.get(
        HEADER, params={"reportType": kind, "$filter": f"uuid eq '{report_id}'", **params}
    )
    assert answer.status_code == 200, answer.text
    [header] = answer.json()
    return header


def _steps(step: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield step
    for child in step.get("steps") or []:
        yield from _steps(child)


def _processes(client: httpx.Client) -> dict[int, str]:
    return {p["code"]: p["name"] for p in client.get("/api/App/Processes").json()}


# ---------------------------------------------------------------------------------- header fields


def test_test_report_header_carries_every_field_from_the_report(
    client: httpx.Client, samples_dir: Path
) -> None:
    report = _sample(samples_dir, "uut-wsjf-export.json")
    _submit(client, report)
    stored = client.get(f"/api/Report/Wsjf/{report['id']}").content

    header = _header(client, report["id"])

    uut, seq_call = report["uut"], report["root"]["seqCall"]
    assert header["batchNumber"] == uut["batchSN"]
    assert header["fixtureId"] == uut["fixtureId"]
    assert header["testSocketIndex"] == uut["testSocketIndex"]
    assert header["comment"] == uut["comment"]
    assert header["errorCode"] == uut["errorCode"]
    assert header["errorMessage"] == uut["errorMessage"]
    assert header["swFilename"] == seq_call["name"]
    assert header["swVersion"] == seq_call["version"]
    assert header["testOperation"] == _processes(client)[report["processCode"]]
    assert header["reportSize"] == math.ceil(len(stored) / 1024)
    assert header["referencedUut"] is None
    assert (header["run"], header["receiveCount"]) == (1, 1)
    assert header["passedInRun"] is None  # the sample failed and is the unit's only run
    failing = next(
        s for s in _steps(report["root"]) if s.get("id") == uut["stepIdCausedUUTFailure"]
    )
    assert header["causedUutFailure"] == failing["name"]
    assert header["start"] == header["startUtc"] and header["userName"] == uut["user"]


def test_software_file_name_falls_back_to_the_file_name_of_the_sequence_path(
    client: httpx.Client, samples_dir: Path
) -> None:
    report = _sample(samples_dir, "new_report_example.json")
    path = report["root"]["seqCall"]["path"]
    assert "\\" in path  # a Windows path, as TestStand writes it
    del report["root"]["seqCall"]["name"]
    _submit(client, report)

    header = _header(client, report["id"])

    assert header["swFilename"] == path.rsplit("\\", 1)[-1]
    assert header["swVersion"] == report["root"]["seqCall"]["version"]


def test_repair_header_refers_to_the_test_report_and_names_the_failed_test_operation(
    client: httpx.Client, samples_dir: Path
) -> None:
    repair = _sample(samples_dir, "uur_example.json")
    _submit(client, repair)

    header = _header(client, repair["id"], kind="R")

    assert header["referencedUut"] == repair["uur"]["refUUT"].lower()
    assert header["testOperation"] == _processes(client)[repair["uur"]["processCode"]]
    assert header["processName"] == _processes(client)[repair["processCode"]]
    assert header["comment"] == repair["uur"]["comment"]
    assert header["run"] is None and header["batchNumber"] is None
    by_ref = client.get(
        HEADER,
        params={"reportType": "R", "$filter": f"referencedUut eq '{repair['uur']['refUUT']}'"},
    ).json()
    assert [h["uuid"] for h in by_ref] == [repair["id"]]


def _unit_run(base: dict[str, Any], start: str, result: str, process: int) -> dict[str, Any]:
    report = copy.deepcopy(base)
    report.update(id=str(uuid.uuid4()), start=start, result=result, processCode=process)
    return report


def test_runs_number_a_units_tests_per_operation_in_start_order(
    client: httpx.Client, samples_dir: Path
) -> None:
    base = _sample(samples_dir, "new_report_example.json")
    base["sn"] = "SN-RUNS-1"
    first = _unit_run(base, "2026-02-01T08:00:00+01:00", "F", 50)
    second = _unit_run(base, "2026-02-01T09:00:00+01:00", "P", 50)
    third = _unit_run(base, "2026-02-01T10:00:00+01:00", "P", 50)
    other_operation = _unit_run(base, "2026-02-01T11:00:00+01:00", "F", 100)
    for report in (third, first, other_operation, second):  # arrival order is not run order
        _submit(client, report)

    headers = client.get(
        HEADER, params={"$filter": "serialNumber eq 'SN-RUNS-1'", "$orderby": "start asc"}
    ).json()

    runs = {h["uuid"]: (h["run"], h["passedInRun"]) for h in headers}
    assert runs == {
        first["id"]: (1, 2),
        second["id"]: (2, 2),
        third["id"]: (3, 2),
        other_operation["id"]: (1, None),
    }
    second_runs = client.get(
        HEADER, params={"$filter": "serialNumber eq 'SN-RUNS-1' and run eq 2"}
    ).json()
    assert [h["uuid"] for h in second_runs] == [second["id"]]


def test_new_header_fields_filter_and_sort(client: httpx.Client, samples_dir: Path) -> None:
    big = _sample(samples_dir, "new_report_example.json")
    small = _sample(samples_dir, "uut-wsjf-export.json")
    for report in (big, small):
        _submit(client, report)

    by_batch = client.get(HEADER, params={"$filter": f"batchNumber eq '{big['uut']['batchSN']}'"})
    assert [h["uuid"] for h in by_batch.json()] == [big["id"]]
    by_size = client.get(HEADER, params={"$orderby": "reportSize desc"}).json()
    assert [h["uuid"] for h in by_size] == [big["id"], small["id"]]
    assert by_size[0]["reportSize"] > by_size[1]["reportSize"]
    socket = client.get(HEADER, params={"$filter": "testSocketIndex eq 999"}).json()
    assert [h["uuid"] for h in socket] == [small["id"]]


@contextlib.contextmanager
def _served(data_dir: Path) -> Iterator[httpx.Client]:
    """A server on ``data_dir`` (kept between uses) and a client for it."""
    server = EmbeddedServer(data_dir, token=base64.b64encode(b"t:s").decode())
    with server, httpx.Client(base_url=server.url, headers=server.auth_headers) as http:
        yield http


def test_a_database_from_before_these_fields_is_filled_on_start(
    tmp_path: Path, samples_dir: Path
) -> None:
    report = _sample(samples_dir, "uut-wsjf-export.json")
    data_dir = tmp_path / "server"
    with _served(data_dir) as http:
        _submit(http, report)
    # Make it look like a database written before the columns existed: drop them.
    with sqlite3.connect(data_dir / DATABASE_FILE) as conn:
        conn.execute("DROP INDEX IF EXISTS reports_unit")
        for column in ("batch_number", "fixture_id", "sw_version", "body_bytes"):
            conn.execute(f"ALTER TABLE reports DROP COLUMN {column}")

    with _served(data_dir) as http:
        header = _header(http, report["id"])

    assert header["batchNumber"] == report["uut"]["batchSN"]
    assert header["fixtureId"] == report["uut"]["fixtureId"]
    assert header["swVersion"] == report["root"]["seqCall"]["version"]
    assert header["reportSize"] and header["reportSize"] > 0


# ---------------------------------------------------------------------------------- $expand


def test_sub_collections_appear_only_when_expanded(client: httpx.Client, samples_dir: Path) -> None:
    report = _sample(samples_dir, "uut-wsjf-export.json")
    _submit(client, report)

    plain = _header(client, report["id"])
    expanded = _header(client, report["id"], **{"$expand": "subUnits,miscInfo,assets,attachments"})

    for key in ("subUnits", "miscInfo", "assets", "attachments"):
        assert key not in plain
    assert [
        (u["serialNumber"], u["partNumber"], u["revision"], u["partType"])
        for u in expanded["subUnits"]
    ] == [(u["sn"], u["pn"], u["rev"], u["partType"]) for u in report["subUnits"]]
    assert [m["description"] for m in expanded["miscInfo"]] == [
        m["description"] for m in report["miscInfos"]
    ]
    for shown, sent in zip(expanded["miscInfo"], report["miscInfos"], strict=True):
        expected = sent["text"] if sent.get("text") is not None else str(sent.get("numeric"))
        assert shown["value"] == expected
    assert [a["serialNumber"] for a in expanded["assets"]] == [a["sn"] for a in report["assets"]]
    assert expanded["attachments"] == []


def test_expanded_attachments_name_report_and_step_attachments(
    client: httpx.Client, samples_dir: Path
) -> None:
    report = _with_attachments(_sample(samples_dir, "new_report_example.json"))
    _submit(client, report)

    header = _header(client, report["id"], **{"$expand": "Attachments"})  # names ignore case

    assert header["attachments"] == [{"filename": "log.txt"}, {"filename": "scope.png"}]


def test_repair_headers_expand_their_uur_collections(
    client: httpx.Client, samples_dir: Path
) -> None:
    repair = _sample(samples_dir, "uur_example.json")
    _submit(client, repair)

    header = _header(client, repair["id"], kind="R", **{"$expand": "uurSubUnits,uurMiscInfo"})

    assert [u["serialNumber"] for u in header["uurSubUnits"]] == [
        u["sn"] for u in repair["subUnits"]
    ]
    assert header["uurMiscInfo"] == [
        {"description": m["description"], "value": m.get("text")}
        for m in repair.get("miscInfos") or []
    ]


def test_unknown_expand_is_a_400_naming_it(client: httpx.Client) -> None:
    answer = client.get(HEADER, params={"$expand": "subUnits,stepz"})
    assert answer.status_code == 400
    assert "stepz" in answer.json()["message"] and "subUnits" in answer.json()["message"]


# ---------------------------------------------------------------------------------- detail level


def _with_attachments(report: dict[str, Any]) -> dict[str, Any]:
    report = copy.deepcopy(report)
    report["id"] = str(uuid.uuid4())
    payload = base64.b64encode(b"attached bytes").decode()
    report["binaryData"] = [{"contentType": "text/plain", "data": payload, "name": "log.txt"}]
    step = next(s for s in _steps(report["root"]) if s.get("stepType") == "ET_NLT")
    step["attachment"] = {"name": "scope.png", "contentType": "image/png", "data": payload}
    return report


def _fetch(client: httpx.Client, report_id: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/api/Report/Wsjf/{report_id}", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_detail_levels_add_parts_of_the_report_step_by_step(
    client: httpx.Client, samples_dir: Path
) -> None:
    report = _with_attachments(_sample(samples_dir, "uut-wsjf-export.json"))
    _submit(client, report)
    all_steps = list(_steps(report["root"]))
    sequence_calls = [s for s in all_steps if s["stepType"] in ("SequenceCall", "WATS_SeqCall")]
    assert 1 < len(sequence_calls) < len(all_steps)

    level = {n: _fetch(client, report["id"], detailLevel=n) for n in range(8)}

    assert "root" not in level[0] and "subUnits" not in level[0]
    assert (level[0]["sn"], level[0]["uut"]) == (report["sn"], report["uut"])
    assert level[1]["subUnits"] == report["subUnits"] and "root" not in level[1]
    assert [s["name"] for s in _steps(level[2]["root"])] == [s["name"] for s in sequence_calls]
    assert [s["name"] for s in _steps(level[3]["root"])] == [s["name"] for s in all_steps]
    assert not any("numericMeas" in s or "attachment" in s for s in _steps(level[3]["root"]))
    assert any("numericMeas" in s for s in _steps(level[4]["root"]))
    assert any("attachment" in s for s in _steps(level[4]["root"]))
    assert "binaryData" in level[4] and "additionalData" not in level[4]
    assert "additionalData" in level[5]
    assert not any("chart" in s for s in _steps(level[5]["root"]))
    assert any("chart" in s for s in _steps(level[6]["root"]))
    assert level[7] == _fetch(client, report["id"])  # 7 is the default: the whole report


def test_chart_data_is_left_out_when_not_wanted(client: httpx.Client, samples_dir: Path) -> None:
    report = _sample(samples_dir, "uut-wsjf-export.json")
    _submit(client, report)
    full = _fetch(client, report["id"])
    charts = [s["chart"] for s in _steps(full["root"]) if s.get("chart")]
    assert charts and any(series.get("ydata") for c in charts for series in c["series"])

    trimmed = _fetch(client, report["id"], includeChartdata="false")

    trimmed_charts = [s["chart"] for s in _steps(trimmed["root"]) if s.get("chart")]
    assert [c["label"] for c in trimmed_charts] == [c["label"] for c in charts]
    for chart in trimmed_charts:
        assert chart["series"] and all(
            "xdata" not in s and "ydata" not in s for s in chart["series"]
        )
    assert [s["name"] for s in _steps(trimmed["root"])] == [s["name"] for s in _steps(full["root"])]


def test_attachments_are_left_out_when_not_wanted(client: httpx.Client, samples_dir: Path) -> None:
    report = _with_attachments(_sample(samples_dir, "new_report_example.json"))
    _submit(client, report)

    full = _fetch(client, report["id"], includeAttachments="true")
    trimmed = _fetch(client, report["id"], includeAttachments="false")

    assert full["binaryData"] and any("attachment" in s for s in _steps(full["root"]))
    assert "binaryData" not in trimmed
    assert not any("attachment" in s for s in _steps(trimmed["root"]))
    assert sum(1 for s in _steps(trimmed["root"]) if "numericMeas" in s) == sum(
        1 for s in _steps(full["root"]) if "numericMeas" in s
    )


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"detailLevel": "8"}, "detailLevel"),
        ({"detailLevel": "all"}, "detailLevel"),
        ({"includeChartdata": "maybe"}, "includeChartdata"),
        ({"includeAttachments": "2"}, "includeAttachments"),
    ],
)
def test_bad_fetch_options_are_400_naming_them(
    client: httpx.Client, samples_dir: Path, params: dict[str, str], named: str
) -> None:
    report = _sample(samples_dir, "new_report_example.json")
    _submit(client, report)
    answer = client.get(f"/api/Report/Wsjf/{report['id']}", params=params)
    assert answer.status_code == 400 and named in answer.json()["message"]
