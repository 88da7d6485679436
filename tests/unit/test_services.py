"""Services over a scripted transport: what is sent, what comes back, what is refused."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from wats.api.auth import basic_token
from wats.api.client import AsyncWatsClient, WatsClient
from wats.api.errors import NotFoundError, WatsProtocolError
from wats.api.models import UURReport, UUTReport, parse_report
from wats.api.services import Level, Process, ProductGroup, ReportHeader
from wats.api.services.report import extract_report_id

TOKEN = basic_token("api", "pw")

PROCESSES = [
    {"code": 10, "name": "End of line test", "isTestOperation": True, "processIndex": 1},
    {"code": 50, "name": "PCBA test", "isTestOperation": True, "state": 1},
    {"code": 500, "name": "Repair", "isRepairOperation": True, "colour": "red"},
]


class Server:
    """Answers by path and records requests."""

    def __init__(self, routes: dict[str, Any], status: int = 200) -> None:
        self.routes = routes
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for prefix, body in self.routes.items():
            if request.url.path.startswith(prefix):
                return httpx.Response(self.status, json=body)
        return httpx.Response(404, json={"message": "unknown route"})


def client_for(server: Server) -> WatsClient:
    return WatsClient("http://wats.test", TOKEN, transport=httpx.MockTransport(server))


def async_client_for(server: Server) -> AsyncWatsClient:
    return AsyncWatsClient("http://wats.test", TOKEN, transport=httpx.MockTransport(server))


@pytest.fixture
def sample_report(samples_dir: Path) -> dict[str, Any]:
    return json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text())


# --- report -----------------------------------------------------------------------------------


def test_submit_wsjf_posts_json_and_returns_the_id_from_a_list(
    sample_report: dict[str, Any],
) -> None:
    server = Server({"/api/Report/WSJF": [sample_report["id"]]})
    with client_for(server) as client:
        report_id = client.report.submit_wsjf(sample_report)
    assert report_id == sample_report["id"]
    request = server.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/Report/WSJF"
    assert request.headers["Content-Type"] == "application/json"
    sent = json.loads(request.content)
    assert sent["id"] == sample_report["id"]
    assert sent["sn"] == sample_report["sn"]


def test_submit_wsjf_accepts_a_model_and_an_id_object(sample_report: dict[str, Any]) -> None:
    model = parse_report(sample_report)
    server = Server({"/api/Report/WSJF": {"ID": str(model.id)}})
    with client_for(server) as client:
        assert client.report.submit_wsjf(model) == str(model.id)


def test_submit_wsjf_falls_back_to_the_reports_own_id_on_an_empty_answer(
    sample_report: dict[str, Any],
) -> None:
    server = Server({"/api/Report/WSJF": None})
    with client_for(server) as client:
        assert client.report.submit_wsjf(sample_report) == sample_report["id"]


def test_invalid_report_is_refused_before_sending_naming_the_field(
    sample_report: dict[str, Any],
) -> None:
    sample_report["sn"] = "SN*1"
    server = Server({})
    with client_for(server) as client, pytest.raises(ValidationError, match="sn"):
        client.report.submit_wsjf(sample_report)
    assert server.requests == []


def test_report_with_missing_field_is_refused_naming_it(sample_report: dict[str, Any]) -> None:
    del sample_report["pn"]
    with client_for(Server({})) as client, pytest.raises(ValidationError, match="pn"):
        client.report.submit_wsjf(sample_report)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (["abc"], "abc"),
        ({"ID": "abc"}, "abc"),
        ({"id": "abc"}, "abc"),
        ("abc", "abc"),
        ([], None),
        ({}, None),
        (None, None),
    ],
)
def test_submit_answer_shapes(data: Any, expected: str | None) -> None:
    assert extract_report_id(data) == expected


def test_submit_wsxf_posts_xml_and_returns_the_id(samples_dir: Path) -> None:
    xml = (samples_dir / "wsxf" / "uut-wsxf-export.xml").read_bytes()
    server = Server({"/api/Report/WSXF": ["33a2d408-3fc8-480b-b554-6866c77fd91c"]})
    with client_for(server) as client:
        assert client.report.submit_wsxf(xml) == "33a2d408-3fc8-480b-b554-6866c77fd91c"
    assert server.requests[0].headers["Content-Type"] == "application/xml"
    assert server.requests[0].content == xml


def test_submit_wsxf_falls_back_to_the_reports_own_id(samples_dir: Path) -> None:
    xml = (samples_dir / "wsxf" / "uut-wsxf-export.xml").read_text()
    server = Server({"/api/Report/WSXF": None})
    with client_for(server) as client:
        assert client.report.submit_wsxf(xml) == "33a2d408-3fc8-480b-b554-6866c77fd91c"


@pytest.mark.parametrize(
    "xml", ["", "   ", "<Reports>", "not xml", '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>']
)
def test_malformed_xml_is_refused_before_sending(xml: str) -> None:
    server = Server({})
    with client_for(server) as client, pytest.raises(ValueError):
        client.report.submit_wsxf(xml)
    assert server.requests == []


def test_invalid_wsxf_report_is_refused_naming_the_field(samples_dir: Path) -> None:
    xml = (samples_dir / "wsxf" / "uut-wsxf-export.xml").read_text()
    broken = xml.replace('SN="', 'SN="*', 1)
    assert broken != xml
    server = Server({})
    with client_for(server) as client, pytest.raises(ValidationError, match="sn"):
        client.report.submit_wsxf(broken)
    assert server.requests == []


def test_get_report_uses_wats_casing_and_returns_a_model(sample_report: dict[str, Any]) -> None:
    report_id = sample_report["id"]
    server = Server({f"/api/Report/Wsjf/{report_id}": sample_report})
    with client_for(server) as client:
        report = client.report.get_report(report_id, detail_level=2, include_attachments=False)
    assert isinstance(report, UUTReport)
    assert str(report.id) == report_id
    params = server.requests[0].url.params
    assert params["detailLevel"] == "2"
    assert params["includeAttachments"] == "false"
    assert "includeChartdata" not in params


def test_get_report_reads_a_repair_report(samples_dir: Path) -> None:
    data = json.loads((samples_dir / "wsjf" / "uur_example.json").read_text())
    server = Server({"/api/Report/Wsjf/": data})
    with client_for(server) as client:
        assert isinstance(client.report.get_report(data["id"]), UURReport)


def test_get_report_refuses_an_id_that_is_not_a_uuid() -> None:
    server = Server({})
    with client_for(server) as client, pytest.raises(ValidationError, match="report_id"):
        client.report.get_report("../../etc/passwd")
    assert server.requests == []


def test_get_unknown_report_raises_not_found() -> None:
    with client_for(Server({})) as client, pytest.raises(NotFoundError):
        client.report.get_report(uuid.uuid4())


def test_get_report_with_unreadable_answer_is_a_protocol_error() -> None:
    server = Server({"/api/Report/Wsjf/": {"id": "nope"}})
    with client_for(server) as client, pytest.raises(WatsProtocolError):
        client.report.get_report(uuid.uuid4())


def test_query_headers_sends_odata_parameters_and_keeps_unknown_keys() -> None:
    rows = [
        {
            "uuid": "7b234dbc-3d06-4738-b176-c6d995dacb66",
            "serialNumber": "SN1",
            "partNumber": "PN1",
            "result": "Passed",
            "startUtc": "2026-01-30T10:49:36.919Z",
            "processCode": 50,
            "customerField": 7,
        }
    ]
    server = Server({"/api/Report/Query/Header": rows})
    with client_for(server) as client:
        headers = client.report.query_headers(
            filter="serialNumber eq 'SN1'", top=10, skip=5, orderby="startUtc desc"
        )
    params = server.requests[0].url.params
    assert params["reportType"] == "U"
    assert params["$filter"] == "serialNumber eq 'SN1'"
    assert (params["$top"], params["$skip"], params["$orderby"]) == ("10", "5", "startUtc desc")
    assert len(headers) == 1
    header = headers[0]
    assert isinstance(header, ReportHeader)
    assert header.serial_number == "SN1"
    assert header.process_code == 50
    assert header.model_extra == {"customerField": 7}


def test_query_headers_for_repairs_uses_report_type_r() -> None:
    server = Server({"/api/Report/Query/Header": []})
    with client_for(server) as client:
        assert client.report.query_headers(report_type="R") == []
    assert server.requests[0].url.params["reportType"] == "R"
    assert "$filter" not in server.requests[0].url.params


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"top": 0}, "top"), ({"skip": -1}, "skip"), ({"report_type": "X"}, "report_type")],
)
def test_query_headers_refuses_bad_paging_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    server = Server({})
    with client_for(server) as client, pytest.raises(ValidationError, match=field):
        client.report.query_headers(**kwargs)
    assert server.requests == []


# --- process ----------------------------------------------------------------------------------


def test_get_processes_sends_only_the_flags_given() -> None:
    server = Server({"/api/App/Processes": PROCESSES})
    with client_for(server) as client:
        processes = client.process.get_processes(include_repair_operations=True)
    assert server.requests[0].url.params == httpx.QueryParams({"includeRepairOperations": "true"})
    assert [p.code for p in processes] == [10, 50, 500]
    assert isinstance(processes[0], Process)
    assert processes[0].is_test_operation
    assert processes[2].model_extra == {"colour": "red"}


def test_process_lookup_by_code_and_by_name_ignoring_case() -> None:
    server = Server({"/api/App/Processes": PROCESSES})
    with client_for(server) as client:
        by_code = client.process.get_process_by_code(50)
        by_name = client.process.get_process_by_name("  end OF LINE test ")
        missing = client.process.get_process_by_name("Burn-in")
    assert by_code is not None and by_code.name == "PCBA test"
    assert by_name is not None and by_name.code == 10
    assert missing is None
    assert server.requests[0].url.params["includeInactiveProcesses"] == "true"


def test_process_lookup_refuses_bad_input_naming_the_argument() -> None:
    server = Server({})
    with client_for(server) as client:
        with pytest.raises(ValidationError, match="code"):
            client.process.get_process_by_code("ten")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="name"):
            client.process.get_process_by_name("  ")
    assert server.requests == []


def test_levels_and_product_groups_are_typed() -> None:
    server = Server(
        {
            "/api/App/Levels": [{"levelId": 1, "levelName": "PCBA"}],
            "/api/App/ProductGroups": [{"productGroupId": 3, "productGroupName": "Drives"}],
        }
    )
    with client_for(server) as client:
        assert client.process.get_levels() == [Level(level_id=1, level_name="PCBA")]
        assert client.process.get_product_groups() == [
            ProductGroup(product_group_id=3, product_group_name="Drives")
        ]


def test_unexpected_reference_data_shape_is_a_protocol_error() -> None:
    server = Server({"/api/App/Levels": {"levels": []}})
    with client_for(server) as client, pytest.raises(WatsProtocolError, match="Levels"):
        client.process.get_levels()


# --- app --------------------------------------------------------------------------------------


def test_version_is_the_json_string() -> None:
    with client_for(Server({"/api/App/Version": "24.1.0"})) as client:
        assert client.app.version() == "24.1.0"


def test_version_that_is_not_a_string_is_a_protocol_error() -> None:
    server = Server({"/api/App/Version": {"v": 1}})
    with client_for(server) as client, pytest.raises(WatsProtocolError):
        client.app.version()


# --- async faces ------------------------------------------------------------------------------


async def test_async_services_mirror_the_sync_ones(sample_report: dict[str, Any]) -> None:
    server = Server(
        {
            "/api/Report/WSJF": [sample_report["id"]],
            "/api/Report/Wsjf/": sample_report,
            "/api/Report/Query/Header": [{"serialNumber": "SN1"}],
            "/api/App/Processes": PROCESSES,
            "/api/App/Levels": [{"levelId": 1, "levelName": "PCBA"}],
            "/api/App/ProductGroups": [],
            "/api/App/Version": "24.1.0",
        }
    )
    async with async_client_for(server) as client:
        assert await client.report.submit_wsjf(sample_report) == sample_report["id"]
        assert isinstance(await client.report.get_report(sample_report["id"]), UUTReport)
        assert (await client.report.query_headers(top=1))[0].serial_number == "SN1"
        assert len(await client.process.get_processes()) == 3
        found = await client.process.get_process_by_name("repair")
        assert found is not None and found.code == 500
        assert (await client.process.get_process_by_code(10)) is not None
        assert len(await client.process.get_levels()) == 1
        assert await client.process.get_product_groups() == []
        assert await client.app.version() == "24.1.0"
        with pytest.raises(ValidationError, match="top"):
            await client.report.query_headers(top=0)
