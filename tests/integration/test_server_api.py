"""The embedded server's WATS endpoints over real HTTP (httpx → uvicorn on 127.0.0.1)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from wats.server.testing import EmbeddedServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def client(wats_server: EmbeddedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers, timeout=10) as c:
        yield c


def _sample(samples_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((samples_dir / "wsjf" / name).read_text("utf-8"))


def _variant(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    report = json.loads(json.dumps(base))
    report["id"] = str(uuid.uuid4())
    report.update(changes)
    return report


def test_submitted_sample_reports_read_back_equal(client: httpx.Client, samples_dir: Path) -> None:
    for name in ("new_report_example.json", "uut-wsjf-export.json", "uur_example.json"):
        report = _sample(samples_dir, name)
        answer = client.post("/api/Report/WSJF", json=report)
        assert answer.status_code == 200, answer.text
        assert answer.json() == [{"ID": report["id"]}]
        fetched = client.get(
            f"/api/Report/Wsjf/{report['id']}",
            params={"detailLevel": 7, "includeChartdata": "true", "includeAttachments": "false"},
        )
        assert fetched.status_code == 200
        assert fetched.json() == report


def test_wsxf_submission_is_stored_and_readable_as_wsjf(
    client: httpx.Client, samples_dir: Path
) -> None:
    xml = (samples_dir / "wsxf" / "uut-wsxf-export.xml").read_bytes()
    answer = client.post(
        "/api/Report/WSXF", content=xml, headers={"Content-Type": "application/xml"}
    )
    assert answer.status_code == 200, answer.text
    report_id = answer.json()[0]["ID"]
    fetched = client.get(f"/api/Report/Wsjf/{report_id}").json()
    expected = _sample(samples_dir, "uut-wsjf-export.json")
    assert (fetched["sn"], fetched["pn"], fetched["result"]) == (
        expected["sn"],
        expected["pn"],
        expected["result"],
    )


def test_malformed_wsxf_is_a_400(client: httpx.Client) -> None:
    answer = client.post(
        "/api/Report/WSXF",
        content=b"<Reports><oops></Reports>",
        headers={"Content-Type": "application/xml"},
    )
    assert answer.status_code == 400
    assert answer.json()["message"]


def test_resubmitting_same_id_replaces_report_and_keeps_count(
    wats_server: EmbeddedServer, client: httpx.Client, samples_dir: Path
) -> None:
    report = _sample(samples_dir, "new_report_example.json")
    assert client.post("/api/Report/WSJF", json=report).status_code == 200
    report["sn"] = "REPLACED-1"
    assert client.post("/api/Report/WSJF", json=report).status_code == 200
    assert wats_server.report_count() == 1
    assert client.get(f"/api/Report/Wsjf/{report['id']}").json()["sn"] == "REPLACED-1"
    header = client.get("/api/Report/Query/Header").json()[0]
    assert header["serialNumber"] == "REPLACED-1" and header["receiveCount"] == 2


def test_unknown_report_is_404_with_message(client: httpx.Client) -> None:
    answer = client.get(f"/api/Report/Wsjf/{uuid.uuid4()}")
    assert answer.status_code == 404 and "not found" in answer.json()["message"]
    assert client.get("/api/Report/Wsjf/not-a-uuid").status_code == 400


def test_malformed_json_is_400_saying_where(client: httpx.Client) -> None:
    answer = client.post(
        "/api/Report/WSJF", content=b'{"id": "x",', headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("Malformed JSON")
    assert "line 1" in answer.json()["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sn": None}, "sn"),
        ({"sn": "bad*serial"}, "sn"),
        ({"pn": "x" * 101}, "pn"),
        ({"result": "Q"}, "result"),
        ({"start": "2026-01-01T00:00:00"}, "start"),
    ],
)
def test_invalid_report_is_400_naming_the_field(
    client: httpx.Client, samples_dir: Path, change: dict[str, Any], field: str
) -> None:
    report = _variant(_sample(samples_dir, "new_report_example.json"), **change)
    if change.get("sn", "") is None:
        del report["sn"]
    answer = client.post("/api/Report/WSJF", json=report)
    assert answer.status_code == 400
    assert field in answer.json()["message"]


def test_non_object_json_is_refused(client: httpx.Client) -> None:
    answer = client.post("/api/Report/WSJF", json=[1, 2])
    assert answer.status_code == 400 and "JSON object" in answer.json()["message"]


def test_missing_or_wrong_token_is_401_with_json_message(wats_server: EmbeddedServer) -> None:
    for headers in ({}, {"Authorization": "Basic d3Jvbmc6dG9rZW4="}, {"Authorization": "x"}):
        answer = httpx.get(f"{wats_server.url}/api/App/Version", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["message"]
        assert "www-authenticate" not in answer.headers


def test_paths_match_case_insensitively(client: httpx.Client) -> None:
    for path in ("/api/App/Version", "/API/APP/VERSION", "/api/app/version"):
        assert client.get(path).json() == "24.1.0"


def test_unknown_endpoint_is_404_json(client: httpx.Client) -> None:
    answer = client.get("/api/Nope")
    assert answer.status_code == 404 and "no such endpoint" in answer.json()["message"]


def _submit_variants(client: httpx.Client, base: dict[str, Any]) -> list[dict[str, Any]]:
    reports = [
        _variant(base, sn="SN-A", result="P", start="2026-01-01T10:00:00+00:00"),
        _variant(base, sn="SN-B", result="F", start="2026-01-02T10:00:00+02:00"),
        _variant(base, sn="SN-C", result="P", start="2026-01-03T10:00:00Z", processCode=100),
        _variant(
            base, sn="SN-D", result="F", start="2026-02-01T00:00:00Z", machineName="other-station"
        ),
    ]
    for report in reports:
        assert client.post("/api/Report/WSJF", json=report).status_code == 200
    return reports


def _serials(client: httpx.Client, **params: Any) -> list[str]:
    answer = client.get("/api/Report/Query/Header", params={"reportType": "U", **params})
    assert answer.status_code == 200, answer.text
    return [h["serialNumber"] for h in answer.json()]


def test_header_query_filters_sorts_and_pages(client: httpx.Client, samples_dir: Path) -> None:
    _submit_variants(client, _sample(samples_dir, "new_report_example.json"))
    assert _serials(client, **{"$orderby": "serialNumber"}) == ["SN-A", "SN-B", "SN-C", "SN-D"]
    assert _serials(client) == ["SN-D", "SN-C", "SN-B", "SN-A"]  # newest start first
    assert _serials(client, **{"$filter": "result eq 'F'", "$orderby": "serialNumber"}) == [
        "SN-B",
        "SN-D",
    ]
    assert _serials(client, **{"$filter": "result eq 'P' and processCode eq 100"}) == ["SN-C"]
    assert _serials(
        client,
        **{
            "$filter": "stationName ne 'other-station' and "
            "startUtc ge 2026-01-02T00:00:00Z and "
            "startUtc lt datetime'2026-01-31T00:00:00Z'",
            "$orderby": "startUtc asc",
        },
    ) == ["SN-B", "SN-C"]
    assert _serials(client, **{"$filter": "serialNumber eq 'sn-a'"}) == ["SN-A"]
    assert _serials(client, **{"$orderby": "serialNumber desc", "$top": 2, "$skip": 1}) == [
        "SN-C",
        "SN-B",
    ]


def test_header_query_returns_wats_header_fields(client: httpx.Client, samples_dir: Path) -> None:
    report = _sample(samples_dir, "uut-wsjf-export.json")
    client.post("/api/Report/WSJF", json=report)
    header = client.get(
        "/api/Report/Query/Header", params={"$filter": f"serialNumber eq '{report['sn']}'"}
    ).json()[0]
    assert header["uuid"] == report["id"]
    assert header["partNumber"] == report["pn"] and header["revision"] == report["rev"]
    assert header["stationName"] == report["machineName"]
    assert header["processCode"] == 10 and header["processName"] == "SW Debug"
    assert header["result"] == "F" and header["reportType"] == "T"
    assert header["startUtc"] == "2026-01-30T21:01:41.470735Z"
    assert header["operator"] == report["uut"]["user"]
    assert header["stepCount"] > 0


def test_repair_reports_are_queried_with_report_type_r(
    client: httpx.Client, samples_dir: Path
) -> None:
    client.post("/api/Report/WSJF", json=_sample(samples_dir, "uur_example.json"))
    client.post("/api/Report/WSJF", json=_sample(samples_dir, "new_report_example.json"))
    repairs = client.get("/api/Report/Query/Header", params={"reportType": "R"}).json()
    assert [h["reportType"] for h in repairs] == ["R"]
    assert repairs[0]["processName"] == "Repair"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"$filter": "colour eq 'red'"}, "colour"),
        ({"$filter": "result eq"}, "literal"),
        ({"$orderby": "colour"}, "colour"),
        ({"$top": "-1"}, "$top"),
        ({"reportType": "X"}, "reportType"),
    ],
)
def test_bad_query_options_are_400_naming_them(
    client: httpx.Client, params: dict[str, str], fragment: str
) -> None:
    answer = client.get("/api/Report/Query/Header", params=params)
    assert answer.status_code == 400
    assert fragment in answer.json()["message"]


def test_processes_levels_and_product_groups_have_wats_shapes(client: httpx.Client) -> None:
    processes = client.get("/api/App/Processes").json()
    keys = {
        "code",
        "name",
        "description",
        "isTestOperation",
        "isRepairOperation",
        "isWipOperation",
        "processIndex",
        "state",
    }
    assert all(set(p) == keys for p in processes)
    by_code = {p["code"]: p for p in processes}
    assert by_code[500]["isRepairOperation"] and by_code[100]["name"] == "Final Function"
    assert 900 not in by_code
    repair_only = client.get(
        "/api/App/Processes",
        params={"includeTestOperations": "false", "includeWipOperations": "false"},
    ).json()
    assert {p["code"] for p in repair_only} == {500, 510}
    with_inactive = client.get(
        "/api/App/Processes", params={"includeInactiveProcesses": "true"}
    ).json()
    assert 900 in {p["code"] for p in with_inactive}
    assert (
        client.get("/api/App/Processes", params={"includeTestOperations": "maybe"}).status_code
        == 400
    )
    levels = client.get("/api/App/Levels").json()
    assert levels and set(levels[0]) == {"levelId", "levelName"}
    groups = client.get("/api/App/ProductGroups").json()
    assert groups and set(groups[0]) == {"productGroupId", "productGroupName"}


def test_version_is_a_json_string_and_not_cacheable(client: httpx.Client) -> None:
    answer = client.get("/api/App/Version")
    assert answer.json() == "24.1.0"
    assert answer.headers["cache-control"] == "no-store"


def test_reference_file_replaces_the_defaults(tmp_path: Path) -> None:
    reference = tmp_path / "ref.json"
    reference.write_text(
        json.dumps(
            {
                "processes": [{"code": 7, "name": "Only one", "isTestOperation": True}],
                "levels": [],
                "productGroups": [{"productGroupId": 9, "productGroupName": "G"}],
            }
        )
    )
    with EmbeddedServer(tmp_path / "data", reference_file=reference) as server:
        headers = server.auth_headers
        processes = httpx.get(f"{server.url}/api/App/Processes", headers=headers).json()
        assert [p["code"] for p in processes] == [7]
        assert httpx.get(f"{server.url}/api/App/Levels", headers=headers).json() == []


def test_registered_client_authenticates_with_its_passcode(
    wats_server: EmbeddedServer, client: httpx.Client
) -> None:
    params = {
        "id": "station-7",
        "type": "Client",
        "name": "Station 7",
        "location": "Lab",
        "purpose": "Test",
    }
    passcode = client.post("/api/Client/Register", params=params).json()
    assert isinstance(passcode, str) and passcode
    assert client.post("/api/Client/Register", params=params).json() == passcode
    clash = client.post("/api/Client/Register", params={**params, "type": "Other"})
    assert clash.status_code == 409
    from wats.server.auth import make_token

    own = {"Authorization": f"Basic {make_token('station-7', passcode)}"}
    assert httpx.get(f"{wats_server.url}/api/App/Version", headers=own).status_code == 200


def test_oversized_bodies_are_refused_with_413_and_smaller_ones_still_accepted(
    samples_dir: Path,
) -> None:
    """A body over the limit is answered 413 whether its length is declared or it arrives in
    chunks, and the server goes on accepting reports of normal size."""
    report = _sample(samples_dir, "uur_example.json")
    small = json.dumps(_variant(report)).encode()
    limit_mb = 4 * len(small) / (1024 * 1024)
    big = json.dumps(_variant(report, padding="x" * (8 * len(small)))).encode()
    with (
        EmbeddedServer(max_body_mb=limit_mb) as server,
        httpx.Client(base_url=server.url, headers=server.auth_headers, timeout=10) as c,
    ):
        declared = c.post("/api/Report/WSJF", content=big)
        assert declared.status_code == 413
        assert "larger than the server accepts" in declared.json()["message"]

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 1024):
                yield big[start : start + 1024]

        chunked = c.post("/api/Report/WSJF", content=chunks())
        assert chunked.status_code == 413
        xml = c.post("/api/Report/WSXF", content=b"<x>" + b" " * len(big) + b"</x>")
        assert xml.status_code == 413
        accepted = c.post("/api/Report/WSJF", content=small)
        assert accepted.status_code == 200, accepted.text
        assert server.context.store.count() == 1
