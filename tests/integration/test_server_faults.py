"""Fault injection over real HTTP: from the harness, the admin endpoint and refused connections."""

from __future__ import annotations

import json
import time
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


@pytest.fixture
def report(samples_dir: Path) -> dict[str, Any]:
    return json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text("utf-8"))


def test_latency_delays_answers(wats_server: EmbeddedServer, client: httpx.Client) -> None:
    wats_server.set_faults(latency_ms=200)
    started = time.monotonic()
    assert client.get("/api/App/Version").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_certain_500_and_503_are_answered(
    wats_server: EmbeddedServer, client: httpx.Client
) -> None:
    wats_server.set_faults(error_500_probability=1.0)
    assert client.get("/api/App/Version").status_code == 500
    wats_server.set_faults(
        error_500_probability=0.0, error_503_probability=1.0, retry_after_seconds=4
    )
    answer = client.get("/api/App/Version")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "4"
    wats_server.clear_faults()
    assert client.get("/api/App/Version").status_code == 200


def test_throttle_next_n_answers_429_with_retry_after_then_recovers(
    wats_server: EmbeddedServer, client: httpx.Client
) -> None:
    wats_server.set_faults(throttle_next=2, retry_after_seconds=2)
    statuses = [client.get("/api/App/Version") for _ in range(3)]
    assert [a.status_code for a in statuses] == [429, 429, 200]
    assert statuses[0].headers["retry-after"] == "2"
    assert statuses[0].json()["message"]


def test_offline_answers_503_to_everything_but_admin(
    wats_server: EmbeddedServer, client: httpx.Client, report: dict[str, Any]
) -> None:
    wats_server.set_faults(offline=True)
    assert client.get("/api/App/Processes").status_code == 503
    assert client.post("/api/Report/WSJF", json=report).status_code == 503
    assert client.get("/").status_code == 503
    assert client.get("/admin/faults").json()["offline"] is True
    assert wats_server.report_count() == 0


def test_reject_next_reports_refuses_submissions_only(
    wats_server: EmbeddedServer, client: httpx.Client, report: dict[str, Any]
) -> None:
    wats_server.set_faults(reject_next_reports=1)
    assert client.get("/api/App/Version").status_code == 200
    rejected = client.post("/api/Report/WSJF", json=report)
    assert rejected.status_code == 400 and "rejected" in rejected.json()["message"]
    assert client.post("/api/Report/WSJF", json=report).status_code == 200
    assert wats_server.report_count() == 1


def test_seeded_random_faults_repeat_the_same_sequence(
    wats_server: EmbeddedServer, client: httpx.Client
) -> None:
    def sequence() -> list[int]:
        wats_server.set_faults(error_503_probability=0.5, seed=42)
        return [client.get("/api/App/Version").status_code for _ in range(20)]

    first = sequence()
    assert first == sequence()
    assert {200, 503} <= set(first)


def test_admin_endpoint_reads_replaces_patches_and_clears(client: httpx.Client) -> None:
    assert client.get("/admin/faults").json()["throttle_next"] == 0
    replaced = client.put("/admin/faults", json={"throttle_next": 1, "retry_after_seconds": 5})
    assert replaced.status_code == 200 and replaced.json()["throttle_next"] == 1
    patched = client.patch("/admin/faults", json={"latency_ms": 1}).json()
    assert patched["throttle_next"] == 1 and patched["latency_ms"] == 1
    assert client.get("/api/App/Version").status_code == 429
    assert client.get("/admin/faults").json()["throttle_next"] == 0
    assert client.put("/admin/faults", json={"offline": True}).json()["retry_after_seconds"] == 1
    assert client.delete("/admin/faults").json()["offline"] is False
    assert client.get("/api/App/Version").status_code == 200


def test_admin_endpoint_refuses_bad_settings_naming_the_key(client: httpx.Client) -> None:
    unknown = client.patch("/admin/faults", json={"explode": True})
    assert unknown.status_code == 400 and "explode" in unknown.json()["message"]
    out_of_range = client.put("/admin/faults", json={"error_500_probability": 2})
    assert out_of_range.status_code == 400
    assert "error_500_probability" in out_of_range.json()["message"]


def test_admin_endpoint_needs_the_token(wats_server: EmbeddedServer) -> None:
    answer = httpx.put(f"{wats_server.url}/admin/faults", json={"offline": True})
    assert answer.status_code == 401
    assert wats_server.context.faults.settings.offline is False


def _wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)  # polling interval of a deadline-bounded wait, not synchronisation
    return bool(predicate())


def _refused(url: str, headers: dict[str, str]) -> bool:
    try:
        httpx.get(f"{url}/api/App/Version", headers=headers, timeout=2)
    except httpx.ConnectError:
        return True
    return False


def test_refused_connections_come_back_on_the_same_port(
    wats_server: EmbeddedServer, client: httpx.Client
) -> None:
    assert client.get("/api/App/Version").status_code == 200  # a pooled keep-alive connection
    port = wats_server.port
    with wats_server.unreachable():
        assert _refused(wats_server.url, wats_server.auth_headers)
        with pytest.raises(httpx.TransportError):
            client.get("/api/App/Version")  # the idle pooled connection was closed too
        assert wats_server.refusing
    assert wats_server.port == port
    assert client.get("/api/App/Version").status_code == 200


def test_admin_refusal_lasts_for_the_given_seconds(
    wats_server: EmbeddedServer, client: httpx.Client
) -> None:
    answer = client.post("/admin/refuse-connections", params={"seconds": 0.5})
    assert answer.status_code == 200 and answer.json() == {"refusingForSeconds": 0.5}
    assert _wait_until(lambda: wats_server.refusing, 2)
    assert _refused(wats_server.url, wats_server.auth_headers)
    assert _wait_until(lambda: not _refused(wats_server.url, wats_server.auth_headers), 5)


def test_admin_refusal_needs_a_sensible_duration(client: httpx.Client) -> None:
    assert client.post("/admin/refuse-connections").status_code == 400
    assert client.post("/admin/refuse-connections", params={"seconds": "-1"}).status_code == 400
