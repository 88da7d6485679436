"""What ``login`` and ``proxy set`` store is what the workers use: ``resolve_server`` +
``make_client`` (the health, sync and uploader workers' way to the server) reach the real
server with the stored token, through the stored proxy.

The server is named by a host that never resolves, so a request can only arrive through the
forward proxy on 127.0.0.1, which hands everything to the embedded server.
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from tests.support.forward_proxy import ForwardProxy
from wats.api import Secret
from wats.api.errors import WatsConnectionError
from wats.api.proxy import ProxySettings
from wats.config import ClientConfig, ConfigError, load_config
from wats.credentials import login, set_proxy
from wats.credentials import store as store_module
from wats.credentials.crypto import MACHINE_ID_FILE_ENV
from wats.server.testing import EmbeddedServer
from wats.workers.connection import make_client, resolve_server

pytestmark = pytest.mark.timeout(30)

UNRESOLVABLE = "http://wats.stored-connection.invalid"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClientConfig:
    monkeypatch.setattr(store_module, "KDF_ITERATIONS", 1_000)
    machine = tmp_path / "machine-id"
    machine.write_text("fedcba9876543210fedcba9876543210\n")
    monkeypatch.setenv(MACHINE_ID_FILE_ENV, str(machine))
    monkeypatch.delenv("WATS_TOKEN", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[server]\nurl = "{UNRESOLVABLE}"\n\n[paths]\ndata_dir = "{tmp_path.as_posix()}/data"\n'
    )
    return load_config(path)[0]


@pytest.fixture
def proxy(wats_server: EmbeddedServer) -> Iterator[ForwardProxy]:
    with ForwardProxy(("127.0.0.1", wats_server.port), credentials=("px", "px-pass")) as running:
        yield running


def test_workers_reach_the_server_with_the_stored_token_through_the_stored_proxy(
    config: ClientConfig, wats_server: EmbeddedServer, proxy: ForwardProxy
) -> None:
    login(config, UNRESOLVABLE, "test", Secret(wats_server.token))
    set_proxy(
        config,
        ProxySettings(
            mode="manual", host="127.0.0.1", port=proxy.port, username="px", password="px-pass"
        ),
    )
    target = resolve_server(config)
    assert target.token == wats_server.token and target.proxy is not None
    assert "px-pass" not in repr(target)
    with make_client(target, 5.0) as client:
        assert client.app.version()
    assert proxy.count >= 1


def test_without_a_stored_proxy_the_worker_does_not_use_one(
    config: ClientConfig, wats_server: EmbeddedServer, proxy: ForwardProxy
) -> None:
    login(config, UNRESOLVABLE, "test", Secret(wats_server.token))
    target = resolve_server(config)
    assert target.proxy is None
    with make_client(target, 2.0) as client, pytest.raises(WatsConnectionError):
        client.app.version()  # the name does not resolve: nothing reached the server
    assert proxy.count == 0


def test_a_private_ca_bundle_is_resolved_beside_the_config_and_used_for_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATS_TOKEN", "dXNlcjpwdw==")
    path = tmp_path / "station.toml"
    path.write_text('[server]\nurl = "https://wats.example"\nca_bundle = "certs/site-ca.pem"\n')
    with pytest.raises(ConfigError, match=r"server\.ca_bundle: no such file"):
        load_config(path)
    (tmp_path / "certs").mkdir()
    shutil.copyfile(certifi.where(), tmp_path / "certs" / "site-ca.pem")  # any valid PEM bundle
    cfg = load_config(path)[0]
    assert cfg.server.ca_bundle == str(tmp_path / "certs" / "site-ca.pem")
    target = resolve_server(cfg)
    with make_client(target, 2.0) as client:
        assert isinstance(client.verify, ssl.SSLContext)
        assert client.verify.cert_store_stats()["x509_ca"] > 0  # the bundle's CAs, loaded
    default = cfg.model_copy(deep=True)
    default.server.ca_bundle = ""
    with make_client(resolve_server(default), 2.0) as client:
        assert client.verify is True
