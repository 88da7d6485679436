"""Server building blocks without HTTP: tokens, credentials, reference data, faults, store."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from wats.server.auth import (
    TokenChecker,
    load_or_create_credentials,
    make_token,
    token_username,
)
from wats.server.faults import FaultInjector, FaultSettings
from wats.server.reference import (
    ReferenceDataError,
    default_reference_data,
    load_reference_data,
)
from wats.server.store import ReportHeader, ReportStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_token_is_base64_of_username_colon_password() -> None:
    token = make_token("test", "secret")
    assert token == "dGVzdDpzZWNyZXQ="
    assert token_username(token) == "test"
    assert token_username("not base64!") is None


def test_checker_accepts_only_configured_basic_tokens() -> None:
    checker = TokenChecker([make_token("a", "b")])
    assert checker.accepts(f"Basic {make_token('a', 'b')}")
    assert checker.accepts(f"basic   {make_token('a', 'b')}")
    assert not checker.accepts(f"Basic {make_token('a', 'c')}")
    assert not checker.accepts(f"Bearer {make_token('a', 'b')}")
    assert not checker.accepts(None)
    assert make_token("a", "b") not in repr(checker)


def test_credentials_are_created_once_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = load_or_create_credentials(data)
    second = load_or_create_credentials(data)
    assert first.username == "wats"
    assert first.password == second.password
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert first.password not in repr(first) and first.token not in repr(first)


def test_default_reference_data_has_test_repair_and_wip_processes() -> None:
    reference = default_reference_data()
    repair = reference.process_by_code(500)
    assert repair is not None and repair.name == "Repair" and repair.isRepairOperation
    assert reference.process_by_code(10).name == "SW Debug"  # type: ignore[union-attr]
    assert reference.levels and reference.productGroups


def test_process_selection_honours_include_flags() -> None:
    reference = default_reference_data()
    only_repair = reference.select_processes(include_test=False, include_wip=False)
    assert only_repair and all(p.isRepairOperation for p in only_repair)
    codes = {p.code for p in reference.select_processes()}
    assert 900 not in codes  # inactive
    assert 900 in {p.code for p in reference.select_processes(include_inactive=True)}


def test_example_toml_reference_file_loads() -> None:
    reference = load_reference_data(PROJECT_ROOT / "configs" / "reference-data.example.toml")
    assert reference.processes and reference.levels and reference.productGroups


def test_reference_file_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "ref.json"
    bad.write_text(json.dumps({"processes": [{"code": "ten", "name": "x"}]}))
    with pytest.raises(ReferenceDataError, match=r"ref\.json.*processes\.0\.code"):
        load_reference_data(bad)
    dup = tmp_path / "dup.toml"
    dup.write_text('[[processes]]\ncode = 1\nname = "a"\n[[processes]]\ncode = 1\nname = "b"\n')
    with pytest.raises(ReferenceDataError, match="duplicate process code"):
        load_reference_data(dup)


def test_counted_faults_fire_exactly_n_times() -> None:
    injector = FaultInjector(FaultSettings(throttle_next=2, reject_next_reports=1))
    statuses = [injector.decide(is_submit=True)[1] for _ in range(4)]
    assert [s[0] if s else None for s in statuses] == [429, 429, 400, None]
    assert injector.settings.throttle_next == 0


def test_report_rejection_only_hits_submissions() -> None:
    injector = FaultInjector(FaultSettings(reject_next_reports=1))
    assert injector.decide(is_submit=False)[1] is None
    assert injector.decide(is_submit=True)[1] is not None


def test_seeded_random_faults_are_reproducible() -> None:
    def run() -> list[int | None]:
        injector = FaultInjector(FaultSettings(error_500_probability=0.5, seed=7))
        return [(e[0] if (e := injector.decide(is_submit=False)[1]) else None) for _ in range(40)]

    first = run()
    assert first == run()
    assert 500 in first and None in first


def test_offline_answers_503_with_retry_after() -> None:
    injector = FaultInjector(FaultSettings(offline=True, retry_after_seconds=3, latency_ms=20))
    delay, error = injector.decide(is_submit=False)
    assert delay == pytest.approx(0.02)
    assert error is not None and error[0] == 503 and error[2] == {"Retry-After": "3"}


def _header(uuid: str, sn: str = "SN1", start: str = "2026-01-01T00:00:00.000000Z") -> ReportHeader:
    return ReportHeader(
        uuid=uuid,
        report_type="T",
        serial_number=sn,
        part_number="PN",
        revision="A",
        station_name="st",
        location="loc",
        purpose="p",
        process_code=50,
        process_name="PCBA test",
        result="P",
        start_utc=start,
        operator="op",
        execution_time=1.5,
        step_count=3,
        received_utc="2026-01-01T00:00:01.000000Z",
    )


def test_store_replaces_a_resubmitted_id_and_counts_receipts(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    try:
        assert store.put(_header("a"), '{"v": 1}') is True
        assert store.put(_header("a", sn="SN2"), '{"v": 2}') is False
        assert store.count() == 1
        stored = store.get("A")
        assert stored is not None and stored.body == '{"v": 2}'
        assert stored.header.serial_number == "SN2" and stored.header.receive_count == 2
    finally:
        store.close()


def test_store_survives_reopening(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    store.put(_header("a"), "{}")
    store.close()
    reopened = ReportStore(tmp_path)
    try:
        assert reopened.get_body("a") == "{}"
    finally:
        reopened.close()
