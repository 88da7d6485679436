"""Integration fixtures: a real embedded WATS server on a free 127.0.0.1 port per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wats.server.auth import make_token
from wats.server.testing import EmbeddedServer

TEST_TOKEN = make_token("test", "secret")


@pytest.fixture
def wats_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A running server with an empty store in ``tmp_path``; send ``Basic <wats_server.token>``.

    Attributes: ``url``, ``token`` (base64 of ``test:secret``), ``data_dir``; ``set_faults(...)``,
    ``clear_faults()``, ``refuse_connections()``/``accept_connections()``, ``report_count()``.
    """
    with EmbeddedServer(tmp_path / "wats-server", token=TEST_TOKEN) as server:
        yield server
