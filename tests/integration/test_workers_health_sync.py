"""Health, sync and server workers against the real embedded WATS server over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.bus_harness import (
    BusHarness,
    WorkerProcess,
    make_config,
    short_tempdir,
    wait_until,
)
from wats.protocol import topics
from wats.server.auth import load_or_create_credentials
from wats.server.testing import EmbeddedServer

HEALTH = "wats.workers.health:HealthWorker"
SYNC = "wats.workers.sync:SyncWorker"
SERVER = "wats.workers.server:ServerWorker"


@pytest.fixture
def tmp() -> Iterator[Path]:
    with short_tempdir() as path:
        yield path


@pytest.fixture
def server(tmp: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(tmp / "server") as running:
        yield running


@pytest.fixture
def bus(tmp: Path, server: EmbeddedServer) -> Iterator[BusHarness]:
    with BusHarness(tmp / "run") as harness:
        harness.write_config(
            make_config(
                tmp / "data",
                tmp / "run",
                server={"url": server.url},
                health={"interval_seconds": 0.3, "timeout_seconds": 2.0},
                sync={"interval_seconds": 60.0, "timeout_seconds": 2.0},
            )
        )
        yield harness


def _worker(bus: BusHarness, server: EmbeddedServer, name: str, target: str) -> WorkerProcess:
    return WorkerProcess(bus, name, target, env={"WATS_TOKEN": server.token})


def _status(value: str):
    return lambda e: e.body["status"] == value


# ---- health ----------------------------------------------------------------------------------


def test_health_publishes_online_then_offline_then_online_again(
    bus: BusHarness, server: EmbeddedServer
) -> None:
    with _worker(bus, server, "health", HEALTH) as worker:
        online = bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health")
        assert online.body["url"] == server.url
        assert online.body["latency_ms"] is not None and online.body["error"] is None

        mark = bus.mark()
        server.set_faults(offline=True)
        offline = bus.wait_for(
            topics.CONNECTION_STATUS, _status("OFFLINE"), src="health", since=mark
        )
        assert "503" in offline.body["error"] or "offline" in offline.body["error"].lower()
        assert server.token not in offline.body["error"]

        mark = bus.mark()
        server.clear_faults()
        back = bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health", since=mark)
        assert back.body["since"] > offline.body["since"]

        answer = bus.request("health", "health.status")
        assert answer.ok
        stats = answer.result["stats"]
        assert stats["checks"] >= 3 and stats["failures"] >= 1
        assert stats["last_online"] == back.body["since"]
        assert stats["last_offline"] == offline.body["since"]
        assert answer.result["status"]["status"] == "ONLINE"
        assert worker.alive()


def test_health_publishes_only_changes_not_every_check(
    bus: BusHarness, server: EmbeddedServer
) -> None:
    with _worker(bus, server, "health", HEALTH) as worker:
        bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health")
        # Several more checks (interval 0.3 s) without a change: progress counts them.
        worker.wait_heartbeat(lambda e: e.body["progress"] >= 4)
        assert len(bus.select(topics.CONNECTION_STATUS, src="health")) == 1


def test_health_sees_a_refused_connection_as_offline(
    bus: BusHarness, server: EmbeddedServer
) -> None:
    with _worker(bus, server, "health", HEALTH):
        bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health")
        mark = bus.mark()
        with server.unreachable():
            offline = bus.wait_for(
                topics.CONNECTION_STATUS, _status("OFFLINE"), src="health", since=mark
            )
            assert offline.body["error"]
            mark = bus.mark()
        bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health", since=mark)


def test_health_status_request_republishes_the_current_status(
    bus: BusHarness, server: EmbeddedServer
) -> None:
    with _worker(bus, server, "health", HEALTH):
        bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health")
        mark = bus.mark()
        assert bus.request("health", "health.status").ok
        bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health", since=mark)


def test_health_check_command_probes_now(bus: BusHarness, server: EmbeddedServer) -> None:
    with _worker(bus, server, "health", HEALTH):
        bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health")
        server.set_faults(offline=True)
        answer = bus.request("health", "health.check")
        assert answer.ok and answer.result["status"] == "OFFLINE"


# ---- sync ------------------------------------------------------------------------------------


def _cache_file(tmp: Path) -> Path:
    return tmp / "data" / "cache" / "reference.json"


def test_sync_writes_the_cache_and_answers_lookups_by_code_and_name(
    tmp: Path, bus: BusHarness, server: EmbeddedServer
) -> None:
    with _worker(bus, server, "sync", SYNC):
        done = bus.wait_for(topics.SYNC_COMPLETED, lambda e: e.body["source"] == "server")
        assert done.body["processes"] == 11 and done.body["levels"] > 0
        cache = json.loads(_cache_file(tmp).read_text())
        assert len(cache["processes"]) == 11
        assert not [p for p in _cache_file(tmp).parent.iterdir() if p.name.endswith(".tmp")]

        by_code = bus.request("sync", "sync.lookup", {"code": 20})
        assert by_code.ok and by_code.result["item"]["name"] == "ICT"
        by_name = bus.request("sync", "sync.lookup", {"name": "  ict "})
        assert by_name.ok and by_name.result["item"]["code"] == 20
        level = bus.request("sync", "sync.lookup", {"kind": "level", "name": "site"})
        assert level.ok and level.result["item"]["levelId"] == 2
        missing = bus.request("sync", "sync.lookup", {"code": 9999})
        assert not missing.ok and missing.error["code"] == "not_found"  # type: ignore[index]
        bad = bus.request("sync", "sync.lookup", {"code": 1, "name": "x"})
        assert not bad.ok and bad.error["code"] == "bad_request"  # type: ignore[index]


def test_sync_serves_from_the_cache_while_the_server_is_down(
    tmp: Path, bus: BusHarness, server: EmbeddedServer
) -> None:
    with _worker(bus, server, "sync", SYNC) as first:
        bus.wait_for(topics.SYNC_COMPLETED, lambda e: e.body["source"] == "server")
        assert first.terminate() == 0

    server.set_faults(offline=True)
    mark = bus.mark()
    with _worker(bus, server, "sync", SYNC) as fresh:
        loaded = bus.wait_for(
            topics.SYNC_COMPLETED, lambda e: e.body["source"] == "cache", since=mark
        )
        assert loaded.body["processes"] == 11
        bus.wait_for(topics.SYNC_FAILED, since=mark)
        answer = bus.request("sync", "sync.lookup", {"name": "ICT"})
        assert answer.ok and answer.result["source"] == "cache"
        failed_now = bus.request("sync", "sync.now")
        assert not failed_now.ok and failed_now.error["code"] == "sync_failed"  # type: ignore[index]
        assert json.loads(_cache_file(tmp).read_text())["processes"]  # the cache survived

        # The server comes back: the health worker says so on the bus, and sync refreshes.
        with _worker(bus, server, "health", HEALTH):
            bus.wait_for(topics.CONNECTION_STATUS, _status("OFFLINE"), src="health", since=mark)
            server.clear_faults()
            mark = bus.mark()
            bus.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"), src="health", since=mark)
            bus.wait_for(topics.SYNC_COMPLETED, lambda e: e.body["source"] == "server", since=mark)
        status = bus.request("sync", "sync.status")
        assert status.ok and status.result["source"] == "server"
        assert fresh.alive()


def test_sync_without_cache_or_server_answers_no_data(
    bus: BusHarness, server: EmbeddedServer
) -> None:
    server.set_faults(offline=True)
    with _worker(bus, server, "sync", SYNC):
        bus.wait_for(topics.SYNC_FAILED)
        answer = bus.request("sync", "sync.lookup", {"code": 10})
        assert not answer.ok and answer.error["code"] == "no_data"  # type: ignore[index]


def test_sync_now_fetches_and_replies_with_counts(bus: BusHarness, server: EmbeddedServer) -> None:
    with _worker(bus, server, "sync", SYNC):
        bus.wait_for(topics.SYNC_COMPLETED, lambda e: e.body["source"] == "server")
        answer = bus.request("sync", "sync.now")
        assert answer.ok and answer.result["processes"] == 11
        assert answer.result["source"] == "server"


# ---- server ----------------------------------------------------------------------------------


def test_server_worker_serves_the_version_endpoint(tmp: Path) -> None:
    with BusHarness(tmp / "run2") as harness:
        harness.write_config(
            make_config(
                tmp / "data2",
                tmp / "run2",
                server={"embedded": {"port": 0}},
            )
        )
        with WorkerProcess(harness, "server", SERVER) as worker:
            ready = worker.wait_ready(timeout=20)
            url = ready.body["detail"]["url"]
            token = load_or_create_credentials(tmp / "data2" / "server").token
            answer = httpx.get(
                f"{url}/api/App/Version", headers={"Authorization": f"Basic {token}"}, timeout=5
            )
            assert answer.status_code == 200 and isinstance(answer.json(), str)
            info = harness.request("server", "server.info")
            assert info.ok and info.result["url"] == url and info.result["reports"] == 0
            assert worker.terminate() == 0
            wait_until(lambda: _refused(url), 5.0, "the port to be closed")


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/api/App/Version", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_health_and_sync_use_the_embedded_server_credentials(tmp: Path) -> None:
    # No server URL configured: health finds the embedded server's own token in its data dir.
    with BusHarness(tmp / "run3") as harness:
        harness.write_config(
            make_config(
                tmp / "data3",
                tmp / "run3",
                server={"embedded": {"port": 0}},
            )
        )
        with WorkerProcess(harness, "server", SERVER) as server_worker:
            url = server_worker.wait_ready(timeout=20).body["detail"]["url"]
            port = int(url.rsplit(":", 1)[1])
            harness.write_config(
                make_config(
                    tmp / "data3",
                    tmp / "run3",
                    server={"embedded": {"port": port}},
                    health={"interval_seconds": 0.3},
                )
            )
            with WorkerProcess(harness, "health", HEALTH):
                online = harness.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"))
                assert online.body["url"] == url


def _embedded_instance(
    harness: BusHarness, tmp: Path, tag: str, *, health_interval: float
) -> int:
    """Configure ``harness``'s instance for an embedded server on a free port (returned), with
    its credentials made (as the server worker makes them at its first start)."""
    import socket

    from wats.config import InstancePaths

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = make_config(
        tmp / f"data{tag}",
        tmp / f"run{tag}",
        server={"embedded": {"port": port}},
        health={"interval_seconds": health_interval},
    )
    harness.write_config(config)
    load_or_create_credentials(InstancePaths.for_config(config).server_data_dir)
    return port


def test_sync_against_a_starting_embedded_server_waits_for_it_instead_of_failing(
    tmp: Path,
) -> None:
    """Sync, health and the embedded server start together, as `start` starts them: sync's
    first attempt follows health's first ONLINE, so no start logs a failed sync."""
    with BusHarness(tmp / "run5") as harness:
        _embedded_instance(harness, tmp, "5", health_interval=0.3)
        with (
            WorkerProcess(harness, "sync", SYNC),
            WorkerProcess(harness, "health", HEALTH),
            WorkerProcess(harness, "server", SERVER),
        ):
            # health's ONLINE triggers it; if sync subscribed after that ONLINE, its delayed
            # first tick (EMBEDDED_FIRST_SYNC_SECONDS) does
            harness.wait_for(
                topics.SYNC_COMPLETED, lambda e: e.body["source"] == "server", timeout=40
            )
            assert harness.select(topics.SYNC_FAILED) == []


def test_health_waits_for_the_embedded_server_to_start_without_reporting_an_outage(
    tmp: Path,
) -> None:
    """The embedded server is a sibling worker starting at the same time: its first refused
    connections are its start-up, so the first status published is ONLINE, never OFFLINE."""
    with BusHarness(tmp / "run4") as harness:
        port = _embedded_instance(harness, tmp, "4", health_interval=5.0)
        with WorkerProcess(harness, "health", HEALTH) as health:
            # several refused probes (every 0.2 s) while nothing listens on the port
            health.wait_heartbeat(lambda e: e.body["progress"] >= 4, timeout=15)
            assert harness.select(topics.CONNECTION_STATUS, src="health") == []
            with WorkerProcess(harness, "server", SERVER) as server_worker:
                server_worker.wait_ready(timeout=20)
                online = harness.wait_for(topics.CONNECTION_STATUS, _status("ONLINE"))
                assert online.body["url"].endswith(f":{port}")
            statuses = [e.body["status"] for e in harness.select(topics.CONNECTION_STATUS)]
            assert statuses[0] == "ONLINE"
