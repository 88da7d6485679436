"""The supervisor's bus: control requests (concurrent, routed, garbage) and the event proxy."""

from __future__ import annotations

import threading

import zmq

from tests.integration.supervisor_harness import IDLE, supervised, wait_for
from wats.protocol import topics
from wats.protocol.addresses import read_endpoints
from wats.protocol.bus import ControlClient, Publisher
from wats.protocol.codec import decode, encode, make_envelope

ECHO = {"target": "wats.workers.testing:EchoWorker"}


def test_fifty_concurrent_control_requests_are_all_answered() -> None:
    with supervised({"idle": IDLE}) as sup:
        sup.wait_running("idle")
        address = read_endpoints(sup.runtime_dir).control
        results: list[object] = []
        lock = threading.Lock()

        def ask(i: int) -> None:
            client = ControlClient(sup.ctx, address, f"t{i}")
            try:
                reply = client.request("status" if i % 2 else "ping", timeout=10.0)
                with lock:
                    results.append(reply.ok)
            except Exception as exc:
                with lock:
                    results.append(exc)
            finally:
                client.close()

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        assert results == [True] * 50


def test_routed_request_is_answered_by_the_worker() -> None:
    with supervised({"echo": ECHO}) as sup:
        sup.wait_running("echo")
        reply = wait_for(
            lambda: (r := sup.request("echo", {"x": 1}, target="echo")).ok and r,
            10.0,
            "the worker's hello",
            interval=0.1,
        )
        assert reply.result == {"x": 1}
        assert reply.envelope.src != "supervisor"
        failed = sup.request("echo.fail", {"code": "nope", "reason": "asked"}, target="echo")
        assert not failed.ok and failed.error.code == "nope"


def test_request_to_a_missing_worker_is_answered_unknown_worker() -> None:
    with supervised({"idle": IDLE}) as sup:
        reply = sup.request("echo", target="ghost")
        assert not reply.ok and reply.error.code == "unknown_worker"
        reply = sup.request("stop", {"worker": "ghost"})
        assert not reply.ok and reply.error.code == "unknown_worker"


def test_request_to_a_stopped_worker_is_answered_worker_unavailable() -> None:
    with supervised({"echo": ECHO}) as sup:
        sup.wait_running("echo")
        sup.request("stop", {"worker": "echo"})
        wait_for(lambda: sup.worker("echo")["state"] == "STOPPED", 10.0, "echo STOPPED")
        reply = sup.request("echo", target="echo")
        assert not reply.ok and reply.error.code == "worker_unavailable"


def test_slow_worker_reply_is_answered_timeout_by_the_supervisor() -> None:
    with supervised({"echo": ECHO}, {"request_timeout_seconds": 0.5}) as sup:
        sup.wait_running("echo")
        wait_for(lambda: sup.request("echo", target="echo").ok, 10.0, "hello", interval=0.1)
        reply = sup.request("echo", {"delay": 3.0}, target="echo", timeout=5.0)
        assert not reply.ok and reply.error.code == "timeout"


def test_unknown_command_and_bad_arguments_get_error_replies() -> None:
    with supervised({"idle": IDLE}) as sup:
        assert sup.request("dance").error.code == "unknown_command"
        assert sup.request("restart").error.code == "bad_request"


def test_garbage_frames_on_the_bus_and_control_socket_are_ignored() -> None:
    with supervised({"idle": IDLE}) as sup:
        before = sup.wait_running("idle")
        addresses = read_endpoints(sup.runtime_dir)
        pub = sup.ctx.socket(zmq.PUB)
        pub.connect(addresses.events_in)
        dealer = sup.ctx.socket(zmq.DEALER)
        dealer.connect(addresses.control)
        try:
            for _ in range(20):
                pub.send_multipart([topics.WORKER_HEARTBEAT.encode(), b"\xc1garbage"])
                pub.send_multipart([topics.WORKER_HEARTBEAT.encode()])
                pub.send(b"\x00" * 1000)
            bad_heartbeat = make_envelope(topics.WORKER_HEARTBEAT, {"worker": 7}, "evil", 1)
            pub.send_multipart([topics.WORKER_HEARTBEAT.encode(), encode(bad_heartbeat)])
            dealer.send_multipart([b"", b"\xc1not msgpack"])
            assert dealer.poll(5000)
            frames = dealer.recv_multipart()
            reply = decode(frames[-1])
            assert reply.body["ok"] is False and reply.body["error"]["code"] == "bad_request"
            dealer.send_multipart([b"", b"a", b"b", b"c"])  # bad framing: dropped
        finally:
            pub.close(linger=0)
            dealer.close(linger=0)
        assert sup.request("ping").ok
        after = sup.wait_running("idle")
        assert after["pid"] == before["pid"]


def test_supervisor_events_reach_subscribers_through_the_proxy() -> None:
    with supervised({"idle": IDLE}) as sup:
        sub = sup.subscribe([topics.SUPERVISOR_HEARTBEAT, topics.WORKER_HEARTBEAT])
        seen: set[str] = set()

        def both() -> bool:
            env = sub.recv(timeout=0.2)
            if env is not None:
                seen.add(env.type)
            return seen == {topics.SUPERVISOR_HEARTBEAT, topics.WORKER_HEARTBEAT}

        wait_for(both, 10.0, "supervisor and worker heartbeats", interval=0)
        publisher = Publisher(sup.ctx, read_endpoints(sup.runtime_dir).events_in, "test")
        publisher.close()
