"""Hostile inputs for every built-in converter, through the real sandbox the worker uses.

Each converter's own unit tests fuzz it in-process; here the same kind of damage (truncation,
flipped bytes, spliced formats, deep nesting) goes through forked, rlimited grandchildren, so
a converter that crashed, hung or blew a limit would show up as such: every outcome must be a
converted report or the converter's own refusal with a reason.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wats.converters.sandbox import Sandbox, SandboxLimits

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="the sandbox is POSIX (fork)"),
    pytest.mark.timeout(180),
]

OWN_SAMPLES = {
    "wsjf": ["wsjf/uut-wsjf-export.json", "wsjf/uur_example.json"],
    "wsxf": ["wsxf/uut-wsxf-export.xml"],
    "atml": [
        "atml/ATML_2.02_TS2017_MotherboardDemo.xml",
        "atml/ATML_6.01_TS2017_MotherboardDemo.xml",
    ],
    "teststand-xml": ["teststand_xml/TsWithoutWats.xml", "teststand_xml/TSWithWats_TSReport.xml"],
    "openhtf": ["openhtf/openhtf163_measurements_FAIL.json"],
    "csv": [],
}
CSV_TEXT = (
    b"Serial Number: SN-1\nPart Number: P-1\nStart Time: 2024-03-05T14:02:11+01:00\n\n"
    b"Name,Value,Unit,Low,High\nVCC,3.31,V,3.2,3.4\nI,0.5,A,0.4,0.6\n"
)
CONTEXT = {"station": {"name": "fuzz", "location": "lab", "purpose": "test"}}
LIMITS = SandboxLimits(address_space_mb=1024, cpu_seconds=20, open_files=64, wall_seconds=20.0)
CASES_PER_SAMPLE = 8


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(LIMITS) as running:
        yield running


def _damaged(data: bytes, rng: random.Random, others: list[bytes]) -> list[bytes]:
    cases = [data[: rng.randrange(1, len(data))] for _ in range(CASES_PER_SAMPLE // 2)]
    for _ in range(CASES_PER_SAMPLE // 2):
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 20)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        cases.append(bytes(mutated))
    other = rng.choice(others)
    cases.append(data[: len(data) // 2] + other[len(other) // 2 :])  # spliced formats
    return cases


@pytest.mark.parametrize("converter", sorted(OWN_SAMPLES))
def test_damaged_input_always_ends_as_a_report_or_a_refusal_with_a_reason(
    converter: str, sandbox: Sandbox, samples_dir: Path, tmp_path: Path
) -> None:
    rng = random.Random(f"fuzz-{converter}")
    everything = [  # every sample file; a folder-shaped sample (klippel/) is read file by file
        p.read_bytes() for p in sorted(samples_dir.rglob("*")) if p.is_file() and p.suffix != ".md"
    ]
    own = [(samples_dir / rel).read_bytes() for rel in OWN_SAMPLES[converter]] or [CSV_TEXT]
    inputs = [b"", b"\x00" * 4096, bytes(rng.randrange(256) for _ in range(5000))]
    inputs += [b"[" * 200_000, b"<a>" * 100_000]  # deep nesting for JSON and XML readers
    for data in own:
        inputs += _damaged(data, rng, everything)
    outcomes = []
    for index, data in enumerate(inputs):
        path = tmp_path / f"case-{index}{'.csv' if converter == 'csv' else '.dat'}"
        path.write_bytes(data)
        outcome = sandbox.convert(converter, {}, path, CONTEXT)
        outcomes.append(outcome)
        assert outcome.ok or outcome.failure == "rejected", (
            f"case {index}: {outcome.failure}: {outcome.message}"
        )
        assert outcome.ok or outcome.message.strip()
    assert any(not o.ok for o in outcomes)  # the damage was real
