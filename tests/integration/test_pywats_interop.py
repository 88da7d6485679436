"""Interoperability: the public pyWATS client (PyPI ``pywats-api``) against our embedded server.

Why: our client and server were written side by side, so they could agree with each other and
still disagree with WATS. pyWATS was written by nobody here against real WATS servers; if it can
submit, read back and list reference data through our server using its own models, our wire
shapes (paths, casing, JSON fields, id answers) match what real clients send and expect.

What pyWATS does on the wire is written up in the findings file the server was built from; the
points that matter here: it sends ``Authorization: Basic <token>`` verbatim, never sends null
fields, reads the id from ``[{"ID": ...}]``/``{"id": ...}``/a string, and caches GETs unless
told not to (``enable_cache=False`` below, so every read really hits the server).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pywats = pytest.importorskip("pywats", reason="pywats-api (dev extra) is not installed")

from pywats import AuthenticationError, NotFoundError, Station, pyWATS  # noqa: E402
from pywats.domains.report.report_models.uur.uur_report import UURReport  # noqa: E402
from pywats.domains.report.report_models.uut.uut_report import UUTReport  # noqa: E402
from pywats.shared.enums import CompOp  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

STATION = Station(name="INTEROP-ST-1", location="Interop lab", purpose="Development")
REQUEST_TIMEOUT_S = 10.0


def _pywats_for(url: str, token: str) -> pyWATS:
    """A pyWATS client with caching off, so every call in a test reaches the server."""
    return pyWATS(
        base_url=url,
        token=token,
        station=STATION,
        timeout=REQUEST_TIMEOUT_S,
        enable_cache=False,
    )


@pytest.fixture
def api(wats_server: Any) -> Iterator[pyWATS]:
    """pyWATS pointed at the embedded server with the server's own token."""
    client = _pywats_for(wats_server.url, wats_server.token)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def raw(wats_server: Any) -> Iterator[httpx.Client]:
    """A plain HTTP client for reading what the server itself answers, to compare with pyWATS."""
    with httpx.Client(
        base_url=wats_server.url,
        headers={"Authorization": f"Basic {wats_server.token}"},
        timeout=REQUEST_TIMEOUT_S,
    ) as client:
        yield client


def _new_uut(api: pyWATS, serial: str = "SN-INTEROP-0001") -> UUTReport:
    """A UUT report built only with pyWATS's own factory and step helpers."""
    report = api.report.create_uut_report(
        operator="interop-operator",
        part_number="PN-INTEROP",
        revision="B",
        serial_number=serial,
        operation_type=_first_test_operation_code(api),
        station_name=STATION.name,
        location=STATION.location,
        purpose=STATION.purpose,
    )
    root = report.get_root_sequence_call()
    root.add_numeric_step(
        name="Supply voltage",
        value=5.02,
        unit="V",
        comp_op=CompOp.GELE,
        low_limit=4.75,
        high_limit=5.25,
        status="P",
    )
    root.add_boolean_step(name="Fuse intact", status="P")
    return report


def _first_test_operation_code(api: pyWATS) -> int:
    """A test operation code the server actually knows, read through pyWATS."""
    tests = api.process.get_test_operations()
    assert tests, "the server should seed at least one test operation"
    return int(tests[0].code)


def _numeric_steps(report: UUTReport) -> list[Any]:
    return [s for s in report.get_root_sequence_call().steps if s.step_type == "ET_NLT"]


def test_pywats_submits_a_uut_report_and_gets_its_id_back(api: pyWATS) -> None:
    report = _new_uut(api)

    returned_id = api.report.submit_report(report)

    assert returned_id is not None, "pyWATS found no id in the submit answer"
    assert str(returned_id).lower() == str(report.id).lower()


def test_report_submitted_by_pywats_reads_back_with_the_same_fields(api: pyWATS) -> None:
    sent = _new_uut(api, serial="SN-INTEROP-READBACK")
    api.report.submit_report(sent)

    got = api.report.get_report(str(sent.id))

    assert isinstance(got, UUTReport)
    assert str(got.id) == str(sent.id)
    assert (got.sn, got.pn, got.rev) == ("SN-INTEROP-READBACK", "PN-INTEROP", "B")
    assert got.result == "P"
    assert got.process_code == sent.process_code
    assert (got.station_name, got.location, got.purpose) == (
        STATION.name,
        STATION.location,
        STATION.purpose,
    )
    assert got.start == sent.start
    assert got.info is not None and got.info.operator == "interop-operator"

    [numeric] = _numeric_steps(got)
    assert numeric.name == "Supply voltage"
    measurement = numeric.measurement
    assert float(measurement.value) == pytest.approx(5.02)
    assert float(measurement.low_limit) == pytest.approx(4.75)
    assert float(measurement.high_limit) == pytest.approx(5.25)
    assert measurement.comp_op == "GELE"
    assert measurement.unit == "V"
    step_names = [s.name for s in got.get_root_sequence_call().steps]
    assert step_names == ["Supply voltage", "Fuse intact"]


def test_failed_result_and_failed_step_survive_the_round_trip(api: pyWATS) -> None:
    sent = _new_uut(api, serial="SN-INTEROP-FAIL")
    sent.get_root_sequence_call().add_numeric_step(
        name="Ripple",
        value=0.31,
        unit="V",
        comp_op=CompOp.LE,
        low_limit=0.1,
        status="F",
    )
    sent.result = "F"
    api.report.submit_report(sent)

    got = api.report.get_report(str(sent.id))

    assert got.result == "F"
    ripple = next(s for s in _numeric_steps(got) if s.name == "Ripple")
    assert ripple.status == "F"
    assert ripple.measurement.comp_op == "LE"
    assert float(ripple.measurement.low_limit) == pytest.approx(0.1)


def test_resubmitting_the_same_id_from_pywats_replaces_the_report(api: pyWATS) -> None:
    report = _new_uut(api, serial="SN-INTEROP-FIRST")
    api.report.submit_report(report)

    report.sn = "SN-INTEROP-SECOND"
    report.result = "F"
    api.report.submit_report(report)

    got = api.report.get_report(str(report.id))
    assert (got.sn, got.result) == ("SN-INTEROP-SECOND", "F")


def test_uur_report_from_pywats_is_accepted_and_reads_back_as_repair(api: pyWATS) -> None:
    uut = _new_uut(api, serial="SN-INTEROP-REPAIRED")
    uut.result = "F"
    api.report.submit_report(uut)
    repair_ops = api.process.get_repair_operations()
    assert repair_ops, "the server should seed at least one repair operation"
    uur = api.report.create_uur_report(
        uut,
        operator="interop-repairer",
        repair_process_code=int(repair_ops[0].code),
        station_name=STATION.name,
        location=STATION.location,
        purpose=STATION.purpose,
    )

    returned_id = api.report.submit_report(uur)
    got = api.report.get_report(str(uur.id))

    assert str(returned_id).lower() == str(uur.id).lower()
    assert isinstance(got, UURReport)
    assert (got.sn, got.pn) == ("SN-INTEROP-REPAIRED", "PN-INTEROP")
    assert got.process_code == int(repair_ops[0].code)


def test_servers_seeded_processes_come_through_pywats_models(
    api: pyWATS, raw: httpx.Client
) -> None:
    served = raw.get("/api/App/Processes").json()

    processes = api.process.get_processes()

    assert served, "the server should seed processes"
    assert [(p.code, p.name) for p in processes] == [(p["code"], p["name"]) for p in served]
    by_code = {p.code: p for p in processes}
    for entry in served:
        model = by_code[entry["code"]]
        assert model.is_test_operation == entry["isTestOperation"]
        assert model.is_repair_operation == entry["isRepairOperation"]
        assert model.is_wip_operation == entry["isWipOperation"]
    assert any(p.is_test_operation for p in processes)
    assert any(p.is_repair_operation for p in processes)
    first = processes[0]
    assert api.process.get_process_by_code(first.code).name == first.name


def test_servers_levels_and_product_groups_come_through_pywats_models(
    api: pyWATS, raw: httpx.Client
) -> None:
    served_levels = raw.get("/api/App/Levels").json()
    served_groups = raw.get("/api/App/ProductGroups").json()

    levels = api.analytics.get_levels()
    groups = api.analytics.get_product_groups()

    assert [(lv.level_id, lv.level_name) for lv in levels] == [
        (lv["levelId"], lv["levelName"]) for lv in served_levels
    ]
    assert [(g.product_group_id, g.product_group_name) for g in groups] == [
        (g["productGroupId"], g["productGroupName"]) for g in served_groups
    ]


def test_pywats_reads_the_server_version(api: pyWATS, raw: httpx.Client) -> None:
    assert api.get_version() == raw.get("/api/App/Version").json()


def test_unknown_report_id_is_not_found_for_pywats(api: pyWATS) -> None:
    with pytest.raises(NotFoundError):
        api.report.get_report("00000000-0000-4000-8000-000000000000")


def test_wrong_token_is_an_authentication_error_for_pywats(wats_server: Any) -> None:
    bad_token = base64.b64encode(b"intruder:not-the-password").decode()
    client = _pywats_for(wats_server.url, bad_token)
    try:
        with pytest.raises(AuthenticationError):
            client.process.get_processes()
    finally:
        client.close()


def test_pywats_reads_every_header_field_it_models_from_our_server(
    api: pyWATS, raw: httpx.Client
) -> None:
    sent = _new_uut(api, serial="SN-INTEROP-HEADER")
    sent.info.fixture_id = "FIXTURE-7"
    sent.info.socket_index = 2
    sent.info.batch_number = "BATCH-42"
    sent.info.comment = "interop comment"
    sent.info.error_code = 17
    sent.info.error_message = "probe contact lost"
    root = sent.get_root_sequence_call()
    root.sequence.file_name = "interop_program.seq"
    root.sequence.version = "3.1.4"
    api.report.submit_report(sent)
    stored = raw.get(f"/api/Report/Wsjf/{sent.id}").content

    [header] = api.report.query_uut_headers(odata_filter=f"uuid eq '{sent.id}'")

    assert header.batch_number == "BATCH-42"
    assert header.fixture_id == "FIXTURE-7"
    assert header.test_socket_index == 2
    assert header.comment == "interop comment"
    assert (header.error_code, header.error_message) == (17, "probe contact lost")
    assert (header.sw_filename, header.sw_version) == ("interop_program.seq", "3.1.4")
    assert (header.run, header.passed_in_run) == (1, 1)
    assert header.report_size == -(-len(stored) // 1024)
    assert header.test_operation == header.process_name
    assert header.receive_count == 1 and header.referenced_uut is None


def test_pywats_reads_the_repair_reports_reference_to_its_test_report(api: pyWATS) -> None:
    uut = _new_uut(api, serial="SN-INTEROP-REF")
    uut.result = "F"
    api.report.submit_report(uut)
    repair_code = int(api.process.get_repair_operations()[0].code)
    uur = api.report.create_uur_report(
        uut,
        operator="interop-repairer",
        repair_process_code=repair_code,
        station_name=STATION.name,
        location=STATION.location,
        purpose=STATION.purpose,
    )
    api.report.submit_report(uur)

    [header] = api.report.query_uur_headers(odata_filter=f"uuid eq '{uur.id}'")

    assert header.report_type == "R"
    assert str(header.referenced_uut) == str(uut.id)


def test_pywats_expands_sub_units_and_misc_info_only_when_asked(api: pyWATS) -> None:
    sent = _new_uut(api, serial="SN-INTEROP-EXPAND")
    sent.add_sub_unit(part_type="PCBA", sn="SUB-1", pn="SUB-PN", rev="C")
    sent.add_misc_info(description="Firmware", value="2.0.1")
    api.report.submit_report(sent)
    where = f"uuid eq '{sent.id}'"

    [plain] = api.report.query_uut_headers(odata_filter=where)
    [expanded] = api.report.query_uut_headers(odata_filter=where, expand=["subUnits", "miscInfo"])

    assert plain.sub_units is None and plain.misc_info is None
    assert [
        (u.serial_number, u.part_number, u.revision, u.part_type) for u in expanded.sub_units
    ] == [("SUB-1", "SUB-PN", "C", "PCBA")]
    assert [(m.description, m.value) for m in expanded.misc_info] == [("Firmware", "2.0.1")]


def test_pywats_fetches_a_report_at_a_low_detail_level(api: pyWATS) -> None:
    sent = _new_uut(api, serial="SN-INTEROP-DETAIL")
    api.report.submit_report(sent)

    header_only = api.report.get_report(str(sent.id), detail_level=0)
    full = api.report.get_report(str(sent.id))

    assert isinstance(header_only, UUTReport)
    assert header_only.sn == "SN-INTEROP-DETAIL"
    assert header_only.get_root_sequence_call().steps == []
    assert [s.name for s in full.get_root_sequence_call().steps] == [
        "Supply voltage",
        "Fuse intact",
    ]
