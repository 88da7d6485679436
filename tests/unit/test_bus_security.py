"""Bus security parts: loopback hosts, key files and modes, config rules, the router's drops."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.auth
from pydantic import ValidationError
from structlog.testing import capture_logs

from wats.config.models import BusSection, ClientConfig
from wats.protocol.codec import MAX_FRAME_BYTES, decode
from wats.protocol.security import (
    BusSecurityError,
    CurveClientKeys,
    KeyPaths,
    authorize_key,
    ensure_private_dir,
    generate_keypair,
    is_loopback_host,
    list_keys,
    load_client_keys,
    load_public_key,
    load_server_keys,
)
from wats.supervisor.broker import ControlRouter, RemoteListener

pytestmark = pytest.mark.timeout(10)
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_recognised(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "*", "192.168.1.5", "eth0", "hub.example.com"])
def test_wildcards_interfaces_and_lan_addresses_are_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


@posix_only
def test_generated_secret_key_is_owner_only_in_a_private_folder(tmp_path: Path) -> None:
    made = generate_keypair(tmp_path / "keys", "server")
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE(made.secret_file.stat().st_mode) == 0o600
    assert made.secret_file.name == "server.key_secret"
    assert made.public_file.name == "server.key"
    assert len(made.public_key) == 40


def test_generated_keys_are_readable_by_zeromq_tools(tmp_path: Path) -> None:
    made = generate_keypair(tmp_path, "client")
    public, secret = zmq.auth.load_certificate(made.secret_file)
    assert public.decode() == made.public_key
    assert secret is not None and len(secret) == 40
    assert zmq.auth.load_certificate(made.public_file) == (public, None)
    assert zmq.auth.load_certificates(tmp_path) == {public: True}


def test_generate_keeps_an_existing_pair_unless_told_to_replace_it(tmp_path: Path) -> None:
    first = generate_keypair(tmp_path, "server")
    with pytest.raises(BusSecurityError, match="already exists"):
        generate_keypair(tmp_path, "server")
    assert load_public_key(first.public_file).decode() == first.public_key
    second = generate_keypair(tmp_path, "server", overwrite=True)
    assert second.public_key != first.public_key


def test_key_names_that_are_not_file_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BusSecurityError, match="key name"):
        generate_keypair(tmp_path, "../escape")


def test_server_keys_need_the_secret_file_not_the_public_one(tmp_path: Path) -> None:
    made = generate_keypair(tmp_path, "server")
    with pytest.raises(BusSecurityError, match=r"\[bus\] server_key.*only a public key"):
        load_server_keys(made.public_file)
    keys = load_server_keys(made.secret_file)
    assert keys.public.decode() == made.public_key


@posix_only
def test_a_secret_key_file_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    made = generate_keypair(tmp_path, "server")
    made.secret_file.chmod(0o640)
    with pytest.raises(BusSecurityError, match="chmod 600") as info:
        load_server_keys(made.secret_file)
    assert zmq.auth.load_certificate(made.secret_file)[1].decode() not in str(info.value)


def test_a_missing_or_garbled_key_file_is_named_without_quoting_it(tmp_path: Path) -> None:
    with pytest.raises(BusSecurityError, match="does not exist"):
        load_server_keys(tmp_path / "nope.key_secret")
    garbled = tmp_path / "bad.key_secret"
    garbled.write_text('curve\n    public-key = "short"\n    secret-key = "s3cr3t-value"\n')
    garbled.chmod(0o600)
    with pytest.raises(BusSecurityError, match="no valid CurveZMQ public key") as info:
        load_server_keys(garbled)
    assert "s3cr3t-value" not in str(info.value)


def test_secret_keys_never_show_in_reprs(tmp_path: Path) -> None:
    server = generate_keypair(tmp_path, "server")
    client = generate_keypair(tmp_path, "client")
    server_keys = load_server_keys(server.secret_file)
    client_keys = load_client_keys(server.public_file, client.secret_file)
    assert isinstance(client_keys, CurveClientKeys)
    assert server_keys.secret.decode() not in repr(server_keys)
    assert client_keys.secret.decode() not in repr(client_keys)
    assert server.public_key in repr(server_keys)


def test_authorizing_copies_only_the_public_half(tmp_path: Path) -> None:
    made = generate_keypair(tmp_path / "monitor", "monitor")
    target = authorize_key(made.secret_file, tmp_path / "authorized")
    assert target == tmp_path / "authorized" / "monitor.key"
    assert "secret-key" not in target.read_text()
    assert load_public_key(target).decode() == made.public_key
    assert authorize_key(made.public_file, tmp_path / "authorized") == target  # idempotent


def test_authorizing_a_different_key_under_a_taken_name_is_refused(tmp_path: Path) -> None:
    one = generate_keypair(tmp_path / "a", "monitor")
    other = generate_keypair(tmp_path / "b", "monitor")
    authorize_key(one.public_file, tmp_path / "authorized")
    with pytest.raises(BusSecurityError, match="different key"):
        authorize_key(other.public_file, tmp_path / "authorized")
    assert authorize_key(other.public_file, tmp_path / "authorized", name="monitor-2").exists()


def test_list_shows_pairs_and_public_keys_by_name(tmp_path: Path) -> None:
    generate_keypair(tmp_path, "server")
    (tmp_path / "notes.txt").write_text("not a key")
    keys = list_keys(tmp_path)
    assert [(k.name, k.has_secret) for k in keys] == [("server", False), ("server", True)]
    assert list_keys(tmp_path / "missing") == []


@posix_only
def test_a_too_open_folder_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    ensure_private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_key_paths_default_under_the_instance_data_dir(tmp_path: Path) -> None:
    paths = KeyPaths.resolve(tmp_path)
    assert paths.key_dir == tmp_path / "bus-keys"
    assert paths.authorized_dir == tmp_path / "bus-keys" / "authorized"
    assert paths.client_key == tmp_path / "bus-keys" / "client.key_secret"
    custom = KeyPaths.resolve(tmp_path, "/k", "/auth", "/me.key_secret")
    assert (custom.key_dir, custom.authorized_dir, custom.client_key) == (
        Path("/k"),
        Path("/auth"),
        Path("/me.key_secret"),
    )


# -- config ------------------------------------------------------------------------------------


def test_a_network_listen_host_without_a_server_key_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="set server_key") as info:
        ClientConfig.model_validate({"bus": {"listen_host": "0.0.0.0"}})
    assert any(err["loc"] == ("bus",) for err in info.value.errors())


def test_a_loopback_listen_host_needs_no_key_and_the_default_listens_nowhere() -> None:
    assert BusSection().listen_host == ""
    assert BusSection(listen_host="127.0.0.1").server_key == ""


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"listen_host": "tcp://0.0.0.0:7700", "server_key": "k"}, "host name or address only"),
        ({"listen_host": "127.0.0.1", "events_port": 7000, "control_port": 7000}, "must differ"),
        ({"hub": "hub.example.com"}, "hub_public_key"),
    ],
)
def test_bus_settings_that_cannot_work_are_refused(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BusSection.model_validate(section)


def test_remote_listener_refuses_a_network_host_without_a_key_even_unvalidated(
    tmp_path: Path,
) -> None:
    section = BusSection.model_construct(
        listen_host="0.0.0.0",
        events_port=7700,
        control_port=7701,
        key_dir="",
        server_key="",
        authorized_keys="",
    )
    with pytest.raises(BusSecurityError, match=r"\[bus\] server_key"):
        RemoteListener.from_config(section, tmp_path)


def test_remote_listener_loads_keys_and_formats_endpoints(tmp_path: Path) -> None:
    made = generate_keypair(tmp_path / "bus-keys", "server")
    listener = RemoteListener.from_config(
        BusSection(listen_host="::", server_key=str(made.secret_file)), tmp_path
    )
    assert listener is not None and listener.keys is not None
    assert listener.authorized_dir == tmp_path / "bus-keys" / "authorized"
    assert listener.endpoint(7700) == "tcp://[::]:7700"
    assert listener.endpoint(0) == "tcp://[::]:*"
    assert RemoteListener.from_config(BusSection(), tmp_path) is None
    plain = RemoteListener.from_config(BusSection(listen_host="127.0.0.1"), tmp_path)
    assert plain is not None and plain.keys is None


# -- the router drops bad frames, logs them rate-limited, and answers what it can --------------


@pytest.fixture
def router_pair() -> Any:
    ctx: zmq.Context[Any] = zmq.Context()
    server = ctx.socket(zmq.ROUTER)
    server.bind("inproc://router-test")
    client = ctx.socket(zmq.DEALER)
    client.connect("inproc://router-test")
    router = ControlRouter(server, lambda c, a, i: "pong", lambda t: None, 1.0)
    yield router, client
    client.close(0)
    server.close(0)
    ctx.term()


def _bad_frames() -> dict[str, bytes]:
    return {
        "malformed": b"\xc1 garbage",
        "oversized": b"\x00" * (MAX_FRAME_BYTES + 1),
        "version": msgpack.packb({"v": 2, "type": "control.request"}),
        "shape": msgpack.packb([1, 2, 3]),
    }


def test_router_answers_bad_frames_with_bad_request_and_logs_each_cause(router_pair: Any) -> None:
    router, client = router_pair
    with capture_logs() as logs:
        for frame in _bad_frames().values():
            client.send_multipart([b"", frame])
            assert router.socket.poll(2000)
            router.handle_ready()
            assert client.poll(2000)
            reply = decode(client.recv_multipart()[1])
            assert reply.body["error"]["code"] == "bad_request"
    warned = [e for e in logs if e["event"] == "bus.frame_dropped"]
    assert {e["kind"] for e in warned} == set(_bad_frames())
    assert all(e["log_level"] == "warning" and e["socket"] == "router" for e in warned)
    assert router.dropped_by_kind == dict.fromkeys(_bad_frames(), 1)


def test_a_flood_of_garbage_costs_one_warning_per_second_per_cause(router_pair: Any) -> None:
    router, client = router_pair
    with capture_logs() as logs:
        for _ in range(50):
            client.send_multipart([b"", b"\xc1"])
        while router.dropped < 50:
            assert router.socket.poll(2000)
            router.handle_ready()
    assert len([e for e in logs if e["event"] == "bus.frame_dropped"]) == 1
    assert router.dropped == 50


def test_router_drops_badly_framed_messages_without_a_reply(router_pair: Any) -> None:
    router, client = router_pair
    client.send_multipart([b"a", b"b", b"c", b"d"])
    assert router.socket.poll(2000)
    router.handle_ready()
    assert router.dropped_by_kind == {"shape": 1}
    client.send_multipart([b"", msgpack.packb({"v": 1})])  # still serving afterwards
    assert router.socket.poll(2000)
    router.handle_ready()
    assert client.poll(2000)
