"""Genuine test-equipment files through the whole pipeline: a real supervisor with the ATML,
TestStand XML, OpenHTF and CSV converters, the embedded server receiving the reports.

The facts checked (serial, part number, result per file) were read off the sample files by hand.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pipeline_harness import Pipeline, pipeline, wait_for

pytestmark = pytest.mark.timeout(150)

CONVERTERS = {
    "atml": {"converter": "atml"},
    "teststand": {"converter": "teststand-xml"},
    "openhtf": {"converter": "openhtf", "arguments": {"part_number": "HTF-DEMO"}},
    "csv": {"converter": "csv"},
}

# (folder under samples, file, converter) -> (serial, part number, result)
SAMPLE_FACTS = {
    ("atml", "ATML_2.02_TS2017_MotherboardDemo.xml", "atml"): ("123456789", "Ragnar123", "F"),
    ("atml", "ATML_5.00_TS2017_MotherboardDemo.xml", "atml"): ("123456789", "Ragnar123", "F"),
    ("atml", "ATML_6.01_TS2017_MotherboardDemo.xml", "atml"): ("123456789", "Ragnar123", "F"),
    ("teststand_xml", "TsWithoutWats.xml", "teststand"): ("2342343", "UNKNOWN", "P"),
    ("teststand_xml", "TSWithWats_TSReport.xml", "teststand"): ("12345", "PN1", "P"),
    ("openhtf", "openhtf163_hello_world_PASS.json", "openhtf"): ("SN-HW-0001", "HTF-DEMO", "P"),
    ("openhtf", "openhtf163_measurements_FAIL.json", "openhtf"): ("MyDutId", "HTF-DEMO", "F"),
    ("openhtf", "openhtf163_phase_branches_PASS.json", "openhtf"): ("SN-PB-0004", "HTF-DEMO", "P"),
}

CSV_RESULT = """Line tester export
Serial Number: CSV-E2E-1
Part Number: PCBA-200
Revision: B
Operator: op-3
Start Time: 2024-03-05T14:02:11+01:00

Name,Value,Unit,Low,High,Status
VCC,3.31,V,3.20,3.40,Passed
Current,0.72,A,0.40,0.60,Failed
"""


@pytest.fixture(scope="module")
def pipe() -> Iterator[Pipeline]:
    with pipeline(converters=CONVERTERS) as running:
        running.wait_workers()
        yield running


def test_every_equipment_sample_lands_on_the_server_with_its_serial_part_and_result(
    pipe: Pipeline, samples_dir: Path
) -> None:
    for (folder, name, converter), _facts in SAMPLE_FACTS.items():
        source = samples_dir / folder / name
        shutil.copyfile(source, pipe.watch(converter) / name)
    pipe.drop("csv", "unit.csv", CSV_RESULT.encode())
    expected = sorted([*SAMPLE_FACTS.values(), ("CSV-E2E-1", "PCBA-200", "F")])

    def landed() -> list[tuple[str, str, str]] | None:
        found = sorted(
            (h.serial_number, h.part_number, h.result) for h in pipe.server_headers()
        )
        return found if len(found) >= len(expected) else None

    found = wait_for(landed, 90, f"{len(expected)} reports on the server")
    assert found == expected
    for converter in CONVERTERS:
        assert pipe.files(converter, "error") == []
    done = sum(len(pipe.sources(converter, "done")) for converter in CONVERTERS)
    assert done == len(SAMPLE_FACTS) + 1


def _atml_unit(serial: str, socket: int, part: str) -> str:
    """One socket's <TestResults> of a TestStand batch run (ATML 6.01), as small as it gets."""
    numbers = (
        f'<c:IdentificationNumbers><c:IdentificationNumber number="{part}" type="Part"/>'
        "</c:IdentificationNumbers>"
        if part
        else ""
    )
    return (
        f'<trc:TestResults uuid="u-{socket}">'
        '<tr:ResultSet ID="1" name="Board.seq#MainSequence" '
        'startDateTime="2024-03-01T08:00:00+01:00"><tr:Outcome value="Passed"/></tr:ResultSet>'
        f'<tr:UUT><c:Definition version="B"><c:Identification>{numbers}</c:Identification>'
        f"</c:Definition><c:SerialNumber>{serial}</c:SerialNumber></tr:UUT>"
        "<tr:Extension><ts:TSResultSetProperties>"
        f'<ts:TestSocketIndex value="{socket}"/></ts:TSResultSetProperties></tr:Extension>'
        "</trc:TestResults>"
    )


def test_a_batch_file_with_a_socket_lacking_its_part_number_is_delivered_whole(
    pipe: Pipeline,
) -> None:
    namespaces = (
        'xmlns:trc="urn:IEEE-1636.1:2013:TestResultsCollection" '
        'xmlns:tr="urn:IEEE-1636.1:2013:TestResults" xmlns:c="urn:IEEE-1671:2010:Common" '
        'xmlns:ts="www.ni.com/TestStand/ATMLTestResults/3.0"'
    )
    body = _atml_unit("BATCH-S0", 0, "PCBA-100") + _atml_unit("BATCH-S1", 1, "")
    document = f"<trc:TestResultsCollection {namespaces}>{body}</trc:TestResultsCollection>"
    pipe.drop("atml", "batch.xml", document.encode())

    def landed() -> list[tuple[str, str]] | None:
        found = sorted(
            (h.serial_number, h.part_number)
            for h in pipe.server_headers()
            if h.serial_number.startswith("BATCH-")
        )
        return found if len(found) >= 2 else None

    found = wait_for(landed, 60, "both sockets' reports on the server")
    assert found == [("BATCH-S0", "PCBA-100"), ("BATCH-S1", "UNKNOWN")]
    assert pipe.files("atml", "error") == []
