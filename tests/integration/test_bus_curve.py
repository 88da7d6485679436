"""The supervisor's bus with a network listener: CurveZMQ admits authorized keys only.

Real sockets throughout: the broker binds ipc:// in a private runtime dir plus tcp on all
interfaces with CURVE, a router thread answers ``ping``, and clients connect over tcp with keys
(authorized, unknown, none). Local ipc peers keep working without keys.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.integration.supervisor_harness import (
    Supervised,
    new_root,
    output,
    start_process,
    wait_for,
    wait_ready,
    write_config,
)
from wats.protocol.addresses import read_endpoints, read_remote_endpoints
from wats.protocol.bus import ControlClient, ControlTimeout, Publisher, Subscriber
from wats.protocol.security import (
    CurveClientKeys,
    authorize_key,
    generate_keypair,
    load_client_keys,
    load_server_keys,
    revoke_key,
)
from wats.supervisor.broker import BoundBus, ControlRouter, RemoteListener, bind_bus

pytestmark = pytest.mark.timeout(30)
CLI = [sys.executable, "-c", "from wats.cli.main import app; app()"]


@dataclass
class Hub:
    """A bound bus with a router thread serving ``ping``, and the keys of one authorized client."""

    ctx: zmq.Context[Any]
    bus: BoundBus
    root: Path
    authorized: CurveClientKeys
    unknown: CurveClientKeys

    def remote(self, field: str) -> str:
        """The tcp endpoint a remote client dials (the wildcard bind, reached via loopback)."""
        assert self.bus.remote is not None
        port = self.bus.remote[field].rsplit(":", 1)[1]
        return f"tcp://127.0.0.1:{port}"


def _serve(router: ControlRouter, stop: threading.Event) -> None:
    while not stop.is_set():
        if router.socket.poll(50, zmq.POLLIN):
            router.handle_ready()


@pytest.fixture
def hub() -> Iterator[Hub]:
    root = Path(tempfile.mkdtemp(prefix="wc-", dir="/tmp"))  # ipc paths must stay short
    keys = root / "keys"
    server = generate_keypair(keys, "server")
    client = generate_keypair(keys, "monitor")
    stranger = generate_keypair(root / "elsewhere", "stranger")
    authorize_key(client.public_file, keys / "authorized")
    listener = RemoteListener(
        host="0.0.0.0",
        events_port=0,
        control_port=0,
        keys=load_server_keys(server.secret_file),
        authorized_dir=keys / "authorized",
    )
    ctx: zmq.Context[Any] = zmq.Context()
    bus = bind_bus(ctx, root / "run", listener)
    router = ControlRouter(bus.router, lambda cmd, args, ident: "pong", lambda t: None, 2.0)
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(router, stop), daemon=True)
    thread.start()
    try:
        yield Hub(
            ctx,
            bus,
            root,
            load_client_keys(server.public_file, client.secret_file),
            load_client_keys(server.public_file, stranger.secret_file),
        )
    finally:
        stop.set()
        thread.join(2)
        bus.close()
        ctx.term()
        shutil.rmtree(root, ignore_errors=True)


def _first_event(ctx: zmq.Context[Any], hub: Hub, sub: Subscriber, within: float) -> bool:
    """Publish locally until ``sub`` receives one event or ``within`` seconds pass."""
    local = read_endpoints(hub.root / "run")
    with Publisher(ctx, local.events_in, "test") as pub:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pub.publish("test.tick", {"n": 1})
            if sub.recv(timeout=0.05) is not None:
                return True
    return False


def test_authorized_remote_client_gets_events_and_replies(hub: Hub) -> None:
    with Subscriber(hub.ctx, hub.remote("events_out"), [""], curve=hub.authorized) as sub:
        assert _first_event(hub.ctx, hub, sub, within=5.0)
    with ControlClient(hub.ctx, hub.remote("control"), "remote", curve=hub.authorized) as client:
        assert client.request("ping", timeout=5.0).unwrap() == "pong"


def test_an_authorized_remote_peer_may_not_act_as_a_worker(hub: Hub) -> None:
    with ControlClient(
        hub.ctx, hub.remote("control"), "remote", identity=b"worker:uploader", curve=hub.authorized
    ) as impostor:
        reply = impostor.request("ping", timeout=5.0)
    assert not reply.ok and reply.error is not None and reply.error.code == "forbidden"
    # the same identity over the local ipc socket is a worker's, and is served
    local = read_endpoints(hub.root / "run").control
    with ControlClient(hub.ctx, local, "worker", identity=b"worker:uploader") as worker:
        assert worker.request("ping", timeout=5.0).unwrap() == "pong"


@pytest.mark.parametrize("keys", ["none", "unknown"])
def test_unauthenticated_remote_client_receives_nothing_and_gets_no_reply(
    hub: Hub, keys: str
) -> None:
    curve = None if keys == "none" else hub.unknown
    with Subscriber(hub.ctx, hub.remote("events_out"), [""], curve=curve) as sub:
        assert not _first_event(hub.ctx, hub, sub, within=1.0)
    with (
        ControlClient(hub.ctx, hub.remote("control"), "intruder", curve=curve) as client,
        pytest.raises(ControlTimeout),
    ):
        client.request("ping", timeout=1.0)
    # ... while an authorized client, connected after them, is still served.
    with ControlClient(hub.ctx, hub.remote("control"), "remote", curve=hub.authorized) as client:
        assert client.request("ping", timeout=5.0).ok


def _answered(hub: Hub, curve: CurveClientKeys, timeout: float) -> bool:
    """Whether a new remote connection with ``curve`` gets a reply to ``ping``."""
    with ControlClient(hub.ctx, hub.remote("control"), "remote", curve=curve) as client:
        try:
            return client.request("ping", timeout=timeout).ok
        except ControlTimeout:
            return False


def test_keys_authorized_and_revoked_while_running_take_effect_at_the_next_connection(
    hub: Hub,
) -> None:
    """No restart needed: the authorized folder is read again when it changes."""
    assert not _answered(hub, hub.unknown, timeout=1.0)
    authorize_key(hub.root / "elsewhere" / "stranger.key", hub.root / "keys" / "authorized")
    assert _answered(hub, hub.unknown, timeout=5.0)
    assert _answered(hub, hub.authorized, timeout=5.0)
    revoke_key("monitor", hub.root / "keys" / "authorized")
    assert not _answered(hub, hub.authorized, timeout=1.0)
    assert _answered(hub, hub.unknown, timeout=5.0)


def test_local_ipc_peers_need_no_keys_beside_a_curve_listener(hub: Hub) -> None:
    local = read_endpoints(hub.root / "run")
    assert local.control.startswith("ipc://")
    with ControlClient(hub.ctx, local.control, "local") as client:
        assert client.request("ping", timeout=5.0).unwrap() == "pong"
    with Subscriber(hub.ctx, local.events_out, [""]) as sub:
        assert _first_event(hub.ctx, hub, sub, within=5.0)


def test_remote_endpoints_are_recorded_and_the_events_input_is_not_offered(hub: Hub) -> None:
    remote = read_remote_endpoints(hub.root / "run")
    assert set(remote) == {"events_out", "control"}
    assert remote == hub.bus.remote
    assert all(e.startswith("tcp://0.0.0.0:") for e in remote.values())


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_ipc_sockets_are_owner_only_in_a_private_runtime_dir(hub: Hub) -> None:
    # Root bypasses file modes, so the modes themselves are checked here (for any user); the
    # test below connects as another uid where it can. Connecting to a Unix socket needs write
    # permission on it, and entering the dir needs x.
    run = hub.root / "run"
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    local = read_endpoints(run)
    for endpoint in (local.events_in, local.events_out, local.control):
        path = Path(endpoint.removeprefix("ipc://"))
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


_CONNECT_AS_OTHER_USER = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("refused")
else:
    print("connected")
"""


def _connect_as_nobody(path: Path) -> str:
    """Try to connect to the Unix socket ``path`` as uid/gid 65534 (needs root to switch)."""
    python = shutil.which("python3", path=os.defpath)
    if python is None:
        pytest.skip("no system python3 another user may run")
    done = subprocess.run(
        [python, "-I", "-c", _CONNECT_AS_OTHER_USER, str(path)],
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=10,
        cwd="/",
    )
    if done.returncode != 0:
        pytest.skip(f"cannot run python3 as another user: {done.stderr.strip()[:200]}")
    return done.stdout.strip()


@pytest.mark.skipif(os.name == "nt" or os.geteuid() != 0, reason="needs root to switch users")
def test_another_user_cannot_connect_to_the_ipc_sockets(hub: Hub) -> None:
    run = hub.root / "run"
    control = Path(read_endpoints(run).control.removeprefix("ipc://"))
    assert _connect_as_nobody(control) == "refused"  # the 0700 runtime dir keeps it out
    # Open the folders as a misconfiguration would: the 0600 socket still refuses ...
    hub.root.chmod(0o711)
    run.chmod(0o711)
    assert _connect_as_nobody(control) == "refused"
    # ... and the check is real: a socket open to everyone would have let it in.
    control.chmod(0o666)
    assert _connect_as_nobody(control) == "connected"


def test_a_secret_key_never_shows_in_reprs_or_logs(hub: Hub, capsys: pytest.CaptureFixture) -> None:
    secret = hub.authorized.secret.decode()
    assert secret not in repr(hub.authorized)
    assert secret not in capsys.readouterr().err


# -- a real supervisor process -------------------------------------------------------------------


def _hub_config(root: Path, bus: dict[str, Any]) -> Path:
    config = write_config(root, {})
    lines = ["", "[bus]"] + [f'{key} = "{value}"' for key, value in bus.items() if key != "ports"]
    lines += ["events_port = 0", "control_port = 0"]
    with config.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return config


@pytest.fixture
def root() -> Iterator[Path]:
    path = new_root()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _watcher_config(root: Path, remote: dict[str, str], hub_key: Path, own_key: Path) -> Path:
    """The config of a machine that watches the hub from afar (here: over loopback)."""
    events_port = remote["events_out"].rsplit(":", 1)[1]
    control_port = remote["control"].rsplit(":", 1)[1]
    config = root / "watcher.toml"
    config.write_text(
        "\n".join(
            [
                "[instance]",
                'name = "watcher"',
                "[paths]",
                f'data_dir = "{root / "wdata"}"',
                f'runtime_dir = "{root / "wrun"}"',
                "[bus]",
                'hub = "127.0.0.1"',
                f"events_port = {events_port}",
                f"control_port = {control_port}",
                f'hub_public_key = "{hub_key}"',
                f'client_key = "{own_key}"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return config


def _log_events(root: Path) -> list[str]:
    log = root / "data" / "logs" / "supervisor.jsonl"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@pytest.mark.timeout(60)
def test_supervisor_listens_on_the_network_for_authorized_keys_only(root: Path) -> None:
    keys = root / "keys"
    server = generate_keypair(keys, "server")
    client = generate_keypair(keys, "monitor")
    authorize_key(client.public_file, keys / "authorized")
    config = _hub_config(
        root,
        {"listen_host": "0.0.0.0", "key_dir": str(keys), "server_key": str(server.secret_file)},
    )
    sup = Supervised(root, config, start_process(config))
    try:
        wait_ready(sup)
        remote = read_remote_endpoints(sup.runtime_dir)
        port = remote["control"].rsplit(":", 1)[1]
        address = f"tcp://127.0.0.1:{port}"
        curve = load_client_keys(server.public_file, client.secret_file)
        with ControlClient(sup.ctx, address, "remote", curve=curve) as good:
            assert good.request("ping", timeout=5.0).result["pid"] == sup.proc.pid
        with ControlClient(sup.ctx, address, "intruder") as bad, pytest.raises(ControlTimeout):
            bad.request("ping", timeout=1.0)
        # The events CLI on a "watching machine" attaches through [bus] hub with its own keys.
        watcher = _watcher_config(root, remote, server.public_file, client.secret_file)
        done = subprocess.run(
            [
                *CLI,
                "events",
                "--config",
                str(watcher),
                "--json",
                "--all",  # the supervisor's heartbeat is the event that proves the link
                "--count",
                "1",
                "--duration",
                "15",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[0])["src"] == "supervisor"
        secret = curve.secret.decode()
        assert secret not in done.stdout + done.stderr
        assert not any(secret in line for line in _log_events(root))
        assert secret not in output(sup)
        server_secret = load_server_keys(server.secret_file).secret.decode()
        assert not any(server_secret in line for line in _log_events(root))
    finally:
        sup.close()


@pytest.mark.parametrize("problem", ["no server_key", "world-readable key"])
def test_supervisor_refuses_a_network_listener_it_cannot_secure(root: Path, problem: str) -> None:
    bus: dict[str, Any] = {"listen_host": "0.0.0.0"}
    expected = "server_key"
    if problem == "world-readable key":
        made = generate_keypair(root / "keys", "server")
        made.secret_file.chmod(0o644)
        bus["server_key"] = str(made.secret_file)
        expected = "chmod 600"
    config = _hub_config(root, bus)
    proc = start_process(config)
    try:
        assert proc.wait(timeout=20) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    said = (root / "supervisor.out").read_text(encoding="utf-8")
    assert expected in said
    assert not (root / "run" / "endpoints.json").exists()


@pytest.mark.timeout(60)
def test_supervisor_keeps_serving_after_garbage_oversized_and_wrong_version_frames(
    root: Path,
) -> None:
    import msgpack

    from wats.protocol.codec import MAX_FRAME_BYTES, decode

    config = write_config(root, {})
    sup = Supervised(root, config, start_process(config))
    try:
        wait_ready(sup)
        local = read_endpoints(sup.runtime_dir)
        wrong_version = msgpack.packb(
            {
                "v": 99,
                "type": "control.request",
                "id": "x",
                "ts": 0.0,
                "src": "t",
                "seq": 0,
                "body": {"command": "shutdown"},
            }
        )
        bad_frames = {
            "malformed": b"\xc1\xc1 not msgpack",
            "oversized": b"\x00" * (MAX_FRAME_BYTES + 1),
            "version": wrong_version,
        }
        raw = sup.ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(local.control)
        try:
            for frame in bad_frames.values():
                raw.send_multipart([b"", frame])
                assert raw.poll(5000, zmq.POLLIN), "no answer to a bad control frame"
                _, payload = raw.recv_multipart()
                reply = decode(payload)
                assert reply.body["ok"] is False
                assert reply.body["error"]["code"] == "bad_request"
        finally:
            raw.close()
        # The same garbage on the event path: the supervisor's own subscriber drops it.
        pub = sup.ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.connect(local.events_in)
        try:
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:  # PUB joins asynchronously: repeat for a while
                for frame in bad_frames.values():
                    pub.send_multipart([b"worker.heartbeat", frame])
                if any('"socket": "sub:' in line for line in _log_events(root)):
                    break
                time.sleep(0.05)
        finally:
            pub.close()
        assert sup.request("ping", timeout=5.0).ok
        assert sup.proc.poll() is None

        def dropped_kinds() -> set[str] | None:
            lines = [line for line in _log_events(root) if "bus.frame_dropped" in line]
            kinds = {k for k in bad_frames if any(f'"kind": "{k}"' in ln for ln in lines)}
            return kinds if kinds == set(bad_frames) else None

        wait_for(dropped_kinds, 5.0, "a logged warning per bad frame kind")
        warnings = [ln for ln in _log_events(root) if "bus.frame_dropped" in ln]
        assert all('"level": "warning"' in ln for ln in warnings)
        assert any('"socket": "router"' in ln for ln in warnings)
        assert any('"socket": "sub:' in ln for ln in warnings)
    finally:
        sup.close()
