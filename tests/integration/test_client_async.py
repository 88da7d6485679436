"""The async client against the real embedded server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from wats.api import (
    AsyncWatsClient,
    AuthenticationError,
    RetryPolicy,
    UUTReport,
    basic_token,
)
from wats.server.testing import EmbeddedServer


def client_for(server: EmbeddedServer, policy: RetryPolicy | None = None) -> AsyncWatsClient:
    policy = policy or RetryPolicy(base_delay=0.01, max_delay=0.05)
    return AsyncWatsClient(server.url, server.token, retry=policy, timeout=10.0)


def fresh_sample(samples_dir: Path) -> dict[str, object]:
    data = json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text())
    data["id"] = str(uuid.uuid4())
    return data


async def test_async_submit_and_fetch(wats_server: EmbeddedServer, samples_dir: Path) -> None:
    data = fresh_sample(samples_dir)
    async with client_for(wats_server) as client:
        report_id = await client.report.submit_wsjf(data)
        fetched = await client.report.get_report(report_id)
        headers = await client.report.query_headers(filter=f"serialNumber eq '{data['sn']}'")
    assert report_id == data["id"]
    assert isinstance(fetched, UUTReport)
    assert [str(h.uuid) for h in headers] == [data["id"]]


async def test_async_concurrent_submits_all_land(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    reports = [fresh_sample(samples_dir) for _ in range(10)]
    async with client_for(wats_server) as client:
        ids = await asyncio.gather(*(client.report.submit_wsjf(r) for r in reports))
    assert sorted(ids) == sorted(str(r["id"]) for r in reports)
    assert wats_server.report_count() == 10


async def test_async_submit_is_retried_after_503(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    waits: list[float] = []

    async def heal_while_waiting(seconds: float) -> None:
        waits.append(seconds)
        wats_server.clear_faults()

    wats_server.set_faults(offline=True)
    policy = RetryPolicy(base_delay=0.01, max_delay=0.05, async_sleep=heal_while_waiting)
    async with client_for(wats_server, policy) as client:
        await client.report.submit_wsjf(fresh_sample(samples_dir))
    assert len(waits) == 1
    assert wats_server.report_count() == 1


async def test_async_reference_data_and_version(wats_server: EmbeddedServer) -> None:
    async with client_for(wats_server) as client:
        assert await client.app.version()
        assert await client.process.get_processes()
        assert await client.process.get_levels()


async def test_async_wrong_token_raises_authentication_error(
    wats_server: EmbeddedServer,
) -> None:
    async with AsyncWatsClient(wats_server.url, basic_token("test", "wrong")) as client:
        with pytest.raises(AuthenticationError):
            await client.app.version()
