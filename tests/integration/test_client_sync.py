"""The sync client against the real embedded server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from wats.api import (
    AuthenticationError,
    BadRequestError,
    CompOp,
    NotFoundError,
    ReportBuilder,
    RetryPolicy,
    UURReport,
    UUTReport,
    WatsClient,
    basic_token,
)
from wats.server.testing import EmbeddedServer


def fast_retry() -> RetryPolicy:
    return RetryPolicy(base_delay=0.01, max_delay=0.05)


def client_for(server: EmbeddedServer, **kwargs: Any) -> WatsClient:
    options: dict[str, Any] = {"retry": fast_retry(), "timeout": 10.0, **kwargs}
    return WatsClient(server.url, server.token, **options)


def built_report(sn: str = "SN-0001", report_id: str | None = None) -> UUTReport:
    builder = ReportBuilder(
        pn="PCBA-100",
        sn=sn,
        rev="A",
        process_code=10,
        station_name="ICT-01",
        location="Line 1",
        purpose="Production",
        operator="op1",
        report_id=report_id,
    )
    with builder.sequence("Power") as power:
        power.numeric("VCC", 3.31, CompOp.GELE, low=3.2, high=3.4, unit="V")
        power.pass_fail("Boot", True)
    return builder.build()


def sample(samples_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((samples_dir / "wsjf" / name).read_text())


def test_submitted_report_can_be_fetched_back(wats_server: EmbeddedServer) -> None:
    report = built_report()
    with client_for(wats_server) as client:
        report_id = client.report.submit_wsjf(report)
        fetched = client.report.get_report(report_id)
    assert report_id == str(report.id)
    assert isinstance(fetched, UUTReport)
    assert fetched.sn == "SN-0001"
    assert fetched.root is not None
    assert wats_server.report_count() == 1


@pytest.mark.parametrize("name", ["new_report_example.json", "uur_example.json"])
def test_sample_reports_are_accepted_and_read_back(
    wats_server: EmbeddedServer, samples_dir: Path, name: str
) -> None:
    data = sample(samples_dir, name)
    with client_for(wats_server) as client:
        report_id = client.report.submit_wsjf(data)
        fetched = client.report.get_report(report_id)
    assert report_id.lower() == data["id"].lower()
    assert fetched.sn == data["sn"]
    assert isinstance(fetched, UURReport if data["type"] == "R" else UUTReport)


def test_wsxf_report_is_stored_and_readable_as_wsjf(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    xml = (samples_dir / "wsxf" / "uut-wsxf-export.xml").read_bytes()
    with client_for(wats_server) as client:
        report_id = client.report.submit_wsxf(xml)
        fetched = client.report.get_report(report_id)
    assert report_id.lower() == "33a2d408-3fc8-480b-b554-6866c77fd91c"
    assert fetched.sn == "FATTest-325"


def test_query_headers_finds_reports_by_serial_number(wats_server: EmbeddedServer) -> None:
    with client_for(wats_server) as client:
        for sn in ("SN-A", "SN-B", "SN-C"):
            client.report.submit_wsjf(built_report(sn))
        found = client.report.query_headers(filter="serialNumber eq 'SN-B'")
        page = client.report.query_headers(top=2, orderby="serialNumber desc")
    assert [h.serial_number for h in found] == ["SN-B"]
    assert found[0].part_number == "PCBA-100"
    assert found[0].station_name == "ICT-01"
    assert found[0].process_code == 10
    assert [h.serial_number for h in page] == ["SN-C", "SN-B"]


def test_reference_data_and_lookups(wats_server: EmbeddedServer) -> None:
    with client_for(wats_server) as client:
        processes = client.process.get_processes(
            include_test_operations=True,
            include_repair_operations=True,
            include_wip_operations=True,
            include_inactive_processes=True,
        )
        levels = client.process.get_levels()
        groups = client.process.get_product_groups()
        assert processes and levels and groups
        first = processes[0]
        by_code = client.process.get_process_by_code(first.code)
        by_name = client.process.get_process_by_name(first.name.upper())
        missing = client.process.get_process_by_code(987654)
    assert by_code == first
    assert by_name == first
    assert missing is None


def test_version_pings_the_server(wats_server: EmbeddedServer) -> None:
    with client_for(wats_server) as client:
        assert client.app.version()


def test_wrong_token_raises_authentication_error_without_retrying(
    wats_server: EmbeddedServer,
) -> None:
    wrong = basic_token("test", "not-the-password")
    with WatsClient(wats_server.url, wrong, retry=fast_retry()) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.app.version()
        assert client.retry_policy.stats.total_retries == 0
    assert caught.value.permanent
    assert wrong not in str(caught.value)


def test_invalid_report_gets_400_with_the_servers_message(wats_server: EmbeddedServer) -> None:
    # Bypass the client's own validation to see what the server says.
    body = {"id": str(uuid.uuid4()), "type": "T", "pn": "PN*1", "sn": "SN1"}
    with client_for(wats_server) as client, pytest.raises(BadRequestError) as caught:
        client.request("POST", "/api/Report/WSJF", json=body)
    assert caught.value.server_message
    assert "pn" in caught.value.server_message
    assert caught.value.server_message in str(caught.value)
    assert wats_server.report_count() == 0


def test_report_rejected_by_the_server_is_not_retried(wats_server: EmbeddedServer) -> None:
    wats_server.set_faults(reject_next_reports=1)
    with client_for(wats_server) as client:
        with pytest.raises(BadRequestError, match="rejected") as caught:
            client.report.submit_wsjf(built_report())
        assert client.retry_policy.stats.total_retries == 0
    assert caught.value.permanent
    assert wats_server.report_count() == 0


def test_unknown_report_raises_not_found(wats_server: EmbeddedServer) -> None:
    with client_for(wats_server) as client, pytest.raises(NotFoundError):
        client.report.get_report(uuid.uuid4())


def test_resubmitting_same_id_replaces_report(wats_server: EmbeddedServer) -> None:
    report_id = str(uuid.uuid4())
    with client_for(wats_server) as client:
        client.report.submit_wsjf(built_report("SN-OLD", report_id))
        client.report.submit_wsjf(built_report("SN-NEW", report_id))
        fetched = client.report.get_report(report_id)
    assert wats_server.report_count() == 1
    assert fetched.sn == "SN-NEW"


def test_base_url_with_api_suffix_reaches_the_same_server(wats_server: EmbeddedServer) -> None:
    with WatsClient(wats_server.url + "/api/", wats_server.token) as client:
        assert client.app.version()
