"""Everything one running server shares between requests, owned in one place.

The app, the admin endpoints and the test harness all reach the store, reference data, faults and
credentials through a :class:`ServerContext`. The context outlives any one uvicorn run, which is
what lets ``EmbeddedServer`` stop listening and come back on the same port with its data intact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from wats.server.auth import TokenChecker
from wats.server.clients import ClientRegistry
from wats.server.faults import FaultInjector
from wats.server.reference import ReferenceData
from wats.server.store import ReportStore

DEFAULT_SERVER_VERSION = "24.1.0"
DEFAULT_MAX_BODY_MB = 64
"""Largest report body accepted, in MiB: a bigger one is answered 413 without being read."""


class ConnectionControl(Protocol):
    """What the serving layer offers to make the listening socket refuse connections."""

    def schedule_refusal(self, seconds: float) -> None:
        """Stop accepting connections now and accept again after ``seconds`` (from the loop)."""


@dataclass
class ServerContext:
    """The shared state of one embedded server; ``close()`` releases the database."""

    data_dir: Path
    store: ReportStore
    reference: ReferenceData
    faults: FaultInjector
    tokens: TokenChecker
    clients: ClientRegistry
    server_version: str = DEFAULT_SERVER_VERSION
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * 1024 * 1024
    connection_control: ConnectionControl | None = field(default=None, repr=False)

    def close(self) -> None:
        """Close the store (idempotent)."""
        self.store.close()
