"""The bus over real sockets: publisher → XSUB/XPUB proxy → subscriber, and control request/reply
through a ROUTER, over both ipc:// and tcp://127.0.0.1, with endpoints read from endpoints.json."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

from wats.protocol import topics
from wats.protocol.addresses import BusAddresses, read_endpoints, write_endpoints
from wats.protocol.bus import (
    ControlClient,
    ControlFailed,
    ControlTimeout,
    Publisher,
    Subscriber,
    bind,
    decode_control,
    error_reply,
    reply_envelope,
)
from wats.protocol.codec import encode, make_envelope
from wats.protocol.envelope import Envelope
from wats.protocol.messages import ErrorCode

PROBE = "test.probe"
DEADLINE_S = 5.0


@dataclass
class Bus:
    """A running test bus: the context for clients and the runtime dir holding endpoints.json."""

    ctx: zmq.Context[Any]
    runtime: Path
    requests: list[Envelope]

    @property
    def addresses(self) -> BusAddresses:
        return read_endpoints(self.runtime)


def _proxy(xsub: zmq.Socket[Any], xpub: zmq.Socket[Any], control: zmq.Socket[Any]) -> None:
    zmq.proxy_steerable(xsub, xpub, None, control)


def _echo_router(router: zmq.Socket[Any], stop: zmq.Socket[Any], seen: list[Envelope]) -> None:
    """Answers ``echo`` with its args, ``fail`` with an error, ignores ``silent``, and holds
    ``held`` until the next request arrives (then answers it first: a late, stale reply)."""
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    poller.register(stop, zmq.POLLIN)
    held: tuple[list[bytes], Envelope] | None = None
    while True:
        ready = dict(poller.poll())
        if stop in ready:
            return
        route, request = decode_control(router.recv_multipart())
        seen.append(request)
        if held is not None:
            held_route, held_request = held
            late = reply_envelope(held_request, True, result="late", src="echo")
            router.send_multipart([*held_route, b"", encode(late)])
            held = None
        command = request.body["command"]
        if command == "silent":
            continue
        if command == "held":
            held = (route, request)
            continue
        if command == "fail":
            reply = error_reply(request, ErrorCode.UNKNOWN_COMMAND, "no such command", src="echo")
        else:
            result = {
                "command": command,
                "args": request.body["args"],
                "target": request.body["target"],
            }
            reply = reply_envelope(request, True, result=result, src="echo")
        router.send_multipart([*route, b"", encode(reply)])


@pytest.fixture(params=["ipc", "tcp"])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    # A short runtime dir of our own: pytest's tmp_path can exceed the Unix socket path limit.
    runtime = Path(tempfile.mkdtemp(prefix="wats-bus-"))
    ctx = zmq.Context()
    planned = BusAddresses.for_runtime_dir(runtime, ipc=request.param == "ipc")
    assert planned.control.startswith(f"{request.param}://")
    xsub, xpub, router = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB), ctx.socket(zmq.ROUTER)
    for sock in (xsub, xpub, router):
        sock.setsockopt(zmq.LINGER, 0)
    write_endpoints(
        runtime,
        BusAddresses(
            events_in=bind(xsub, planned.events_in),
            events_out=bind(xpub, planned.events_out),
            control=bind(router, planned.control),
        ),
    )
    proxy_ctl, proxy_ctl_peer = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    proxy_ctl.bind("inproc://proxy-ctl")
    proxy_ctl_peer.connect("inproc://proxy-ctl")
    router_stop, router_stop_peer = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    router_stop.bind("inproc://router-stop")
    router_stop_peer.connect("inproc://router-stop")
    seen: list[Envelope] = []
    threads = [
        threading.Thread(target=_proxy, args=(xsub, xpub, proxy_ctl), daemon=True),
        threading.Thread(target=_echo_router, args=(router, router_stop, seen), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield Bus(ctx=ctx, runtime=runtime, requests=seen)
    finally:
        proxy_ctl_peer.send(b"TERMINATE")
        router_stop_peer.send(b"stop")
        for thread in threads:
            thread.join(DEADLINE_S)
        ctx.destroy(linger=0)
        shutil.rmtree(runtime, ignore_errors=True)


def wait_connected(send_probe: Any, sub: Subscriber) -> None:
    """Publish probes until the subscriber hears one (PUB/SUB drops events until the
    subscription has travelled through the proxy), then stop listening to probes."""
    sub.subscribe(PROBE)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            send_probe()
            env = sub.recv(timeout=0.05)
            while env is not None and env.type != PROBE:
                env = sub.recv(timeout=0.05)
            if env is not None:
                return
        raise AssertionError("subscriber never connected through the proxy")
    finally:
        sub.unsubscribe(PROBE)
        while sub.recv(timeout=0) is not None:
            pass


def connected_pair(bus: Bus, prefixes: list[str], src: str = "w") -> tuple[Publisher, Subscriber]:
    pub = Publisher(bus.ctx, bus.addresses.events_in, src)
    sub = Subscriber(bus.ctx, bus.addresses.events_out, prefixes)
    wait_connected(lambda: pub.publish(PROBE, {}), sub)
    return pub, sub


def test_event_travels_from_publisher_through_proxy_to_subscriber(bus: Bus) -> None:
    pub, sub = connected_pair(bus, [""], src="health")
    body = {"status": "ONLINE", "url": "http://127.0.0.1:1", "since": 1.0, "latency_ms": 2.5}
    sent = pub.publish(topics.CONNECTION_STATUS, body)
    received = sub.recv(timeout=DEADLINE_S)
    assert received is not None
    assert received == sent
    assert received.body == {**body, "error": None}
    assert (received.src, received.seq) == ("health", 1)


def test_subscriber_receives_only_the_prefixes_it_asked_for(bus: Bus) -> None:
    pub, sub = connected_pair(bus, [topics.SUPERVISOR_WORKER])
    pub.publish(topics.SUPERVISOR_HEARTBEAT, {"pid": 1, "instance": "default"})
    pub.publish(topics.SUPERVISOR_WORKER_STARTED, {"worker": "sync", "pid": 2})
    pub.publish(topics.SYNC_FAILED, {"error": "x"})
    pub.publish(topics.SUPERVISOR_WORKER_STOPPED, {"worker": "sync"})
    types = [env.type for env in iter(lambda: sub.recv(timeout=0.5), None)]
    assert types == [topics.SUPERVISOR_WORKER_STARTED, topics.SUPERVISOR_WORKER_STOPPED]


def test_a_burst_of_events_arrives_complete_and_in_order(bus: Bus) -> None:
    pub, sub = connected_pair(bus, ["custom."])
    for n in range(500):
        pub.publish("custom.tick", {"n": n})
    received = []
    deadline = time.monotonic() + DEADLINE_S
    while len(received) < 500 and time.monotonic() < deadline:
        env = sub.recv(timeout=0.5)
        if env is not None:
            received.append(env.body["n"])
    assert received == list(range(500))
    assert sub.gaps == {}
    assert sub.dropped == 0


def test_garbage_frames_on_the_bus_are_dropped_and_later_events_still_arrive(bus: Bus) -> None:
    raw = bus.ctx.socket(zmq.PUB)
    raw.connect(bus.addresses.events_in)
    sub = Subscriber(bus.ctx, bus.addresses.events_out, [""])
    probe = [PROBE.encode(), encode(make_envelope(PROBE, {}, "raw", 0))]
    wait_connected(lambda: raw.send_multipart(probe), sub)
    raw.send_multipart([b"custom.tick", b"\xc1\xc1 not msgpack"])
    raw.send(b"single frame")
    raw.send_multipart([b"custom.tick", b"\x81\xa1v\x09"])  # {"v": 9}: unknown version
    raw.send_multipart([b"custom.tick", b"x" * (2 * 1024 * 1024)])
    raw.send_multipart([b"custom.tick", encode(make_envelope("custom.tick", {"ok": 1}, "raw", 1))])
    env = sub.recv(timeout=DEADLINE_S)
    assert env is not None and env.body == {"ok": 1}
    assert sub.dropped_by_kind == {"malformed": 1, "shape": 1, "version": 1, "oversized": 1}


def test_lost_events_show_as_a_sequence_gap_of_their_source(bus: Bus) -> None:
    raw = bus.ctx.socket(zmq.PUB)
    raw.connect(bus.addresses.events_in)
    sub = Subscriber(bus.ctx, bus.addresses.events_out, ["custom."])
    probe = [PROBE.encode(), encode(make_envelope(PROBE, {}, "raw", 0))]
    wait_connected(lambda: raw.send_multipart(probe), sub)
    for seq in (1, 2, 6, 7):  # 3, 4 and 5 were "lost"
        raw.send_multipart([b"custom.tick", encode(make_envelope("custom.tick", {}, "lossy", seq))])
    received = [env.seq for env in iter(lambda: sub.recv(timeout=0.5), None)]
    assert received == [1, 2, 6, 7]
    assert sub.gaps == {"lossy": 3}


def test_control_request_gets_the_reply_to_its_own_id(bus: Bus) -> None:
    with ControlClient(bus.ctx, bus.addresses.control, "cli:1") as client:
        reply = client.request("echo", {"x": [1, 2]}, target="sync", timeout=DEADLINE_S)
    assert reply.ok and reply.error is None
    assert reply.result == {"command": "echo", "args": {"x": [1, 2]}, "target": "sync"}
    request = bus.requests[-1]
    assert (request.type, request.src) == (topics.CONTROL_REQUEST, "cli:1")
    assert reply.envelope.body["request_id"] == request.id
    assert reply.unwrap() == reply.result


def test_error_reply_is_returned_with_code_and_reason_and_unwrap_raises(bus: Bus) -> None:
    with ControlClient(bus.ctx, bus.addresses.control, "cli:1") as client:
        reply = client.request("fail", timeout=DEADLINE_S)
    assert not reply.ok
    assert reply.error is not None
    assert (reply.error.code, reply.error.reason) == ("unknown_command", "no such command")
    with pytest.raises(ControlFailed) as err:
        reply.unwrap()
    assert err.value.code == ErrorCode.UNKNOWN_COMMAND


def test_unanswered_request_raises_control_timeout_within_its_deadline(bus: Bus) -> None:
    with ControlClient(bus.ctx, bus.addresses.control, "cli:1") as client:
        started = time.monotonic()
        with pytest.raises(ControlTimeout) as err:
            client.request("silent", timeout=0.3)
        assert 0.25 <= time.monotonic() - started < 2.0
    assert err.value.sent and err.value.command == "silent"
    assert "no reply" in str(err.value)


def test_late_reply_to_a_timed_out_request_is_not_taken_for_the_next_one(bus: Bus) -> None:
    with ControlClient(bus.ctx, bus.addresses.control, "cli:1") as client:
        with pytest.raises(ControlTimeout):
            client.request("held", timeout=0.2)
        reply = client.request("echo", {"n": 2}, timeout=DEADLINE_S)
        assert reply.result["args"] == {"n": 2}
        assert client.dropped == 1


def test_many_concurrent_clients_all_get_their_own_replies(bus: Bus) -> None:
    address = bus.addresses.control
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            with ControlClient(bus.ctx, address, f"cli:{n}") as client:
                results[n] = [
                    client.request("echo", {"n": n, "i": i}, timeout=DEADLINE_S).result["args"]
                    for i in range(10)
                ]
        except BaseException as exc:  # reported below, so a failure is not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S * 2)
    assert errors == []
    assert results == {n: [{"n": n, "i": i} for i in range(10)] for n in range(20)}


def test_request_with_no_supervisor_listening_times_out_unsent(tmp_path: Path) -> None:
    ctx = zmq.Context()
    try:
        address = f"ipc://{tmp_path}/nobody.sock"
        with ControlClient(ctx, address, "cli:1") as client, pytest.raises(ControlTimeout) as err:
            client.request("ping", timeout=0.2)
        assert not err.value.sent
        assert "could not reach the supervisor" in str(err.value)
    finally:
        ctx.destroy(linger=0)


def test_request_sent_before_the_router_binds_is_answered_once_it_does() -> None:
    runtime = Path(tempfile.mkdtemp(prefix="wats-bus-"))
    address = f"ipc://{runtime}/control.sock"
    ctx = zmq.Context()
    outcome: list[Any] = []
    try:
        client = ControlClient(ctx, address, "cli:1")
        thread = threading.Thread(
            target=lambda: outcome.append(client.request("echo", timeout=DEADLINE_S))
        )
        thread.start()
        router = ctx.socket(zmq.ROUTER)
        router.bind(address)
        assert router.poll(DEADLINE_S * 1000)
        route, request = decode_control(router.recv_multipart())
        router.send_multipart([*route, b"", encode(reply_envelope(request, True, "hello"))])
        thread.join(DEADLINE_S)
        assert [reply.result for reply in outcome] == ["hello"]
    finally:
        ctx.destroy(linger=0)
        shutil.rmtree(runtime, ignore_errors=True)


def test_client_identity_is_the_routing_id_the_router_sees(bus: Bus) -> None:
    ctx = bus.ctx
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    address = bind(router, "tcp://127.0.0.1:*")
    with ControlClient(ctx, address, "sync", identity=b"worker:sync") as worker:
        sender = threading.Thread(target=lambda: _ignore_timeout(worker))
        sender.start()
        assert router.poll(DEADLINE_S * 1000)
        route, request = decode_control(router.recv_multipart())
        sender.join(DEADLINE_S)
    assert route == [b"worker:sync"]
    assert request.body["command"] == "worker.hello"


def _ignore_timeout(client: ControlClient) -> None:
    with contextlib.suppress(ControlTimeout):
        client.request("worker.hello", timeout=0.3)
