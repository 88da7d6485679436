"""``POST /api/Client/Register``: clients obtain their own passcode, as on newer WATS servers.

A registered client authenticates with ``Basic base64("<clientId>:<passcode>")``. Registering the
same id again with the same type returns the same passcode (idempotent); another type gets 409.
Registrations are kept in ``<data>/clients.json`` (mode 0600) so they survive restarts.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from wats.fsutil import atomic_write
from wats.server.auth import TokenChecker, make_token

CLIENTS_FILE = "clients.json"


class ClientConflict(ValueError):
    """The id is already registered with another client type."""


@dataclass(frozen=True)
class RegisteredClient:
    """One registration; ``repr`` leaves the passcode out."""

    id: str
    type: str
    name: str
    location: str
    purpose: str
    passcode: str

    def __repr__(self) -> str:
        return f"RegisteredClient(id={self.id!r}, type={self.type!r}, name={self.name!r})"


class ClientRegistry:
    """Registrations, persisted, each adding its token to the accepted ones."""

    def __init__(self, data_dir: Path, tokens: TokenChecker) -> None:
        self._path = data_dir / CLIENTS_FILE
        self._tokens = tokens
        self._lock = threading.Lock()
        self._clients: dict[str, RegisteredClient] = {}
        if self._path.exists():
            for entry in json.loads(self._path.read_text("utf-8")):
                client = RegisteredClient(**entry)
                self._clients[client.id.lower()] = client
                tokens.add(make_token(client.id, client.passcode))

    def register(
        self, client_id: str, client_type: str, name: str, location: str, purpose: str
    ) -> str:
        """Register (or re-register) a client and return its passcode."""
        key = client_id.lower()
        with self._lock:
            existing = self._clients.get(key)
            if existing is not None:
                if existing.type.lower() != client_type.lower():
                    raise ClientConflict(
                        f"client id {client_id!r} is registered with type {existing.type!r}"
                    )
                return existing.passcode
            client = RegisteredClient(
                client_id, client_type, name, location, purpose, secrets.token_urlsafe(18)
            )
            self._clients[key] = client
            self._save()
        self._tokens.add(make_token(client.id, client.passcode))
        return client.passcode

    def _save(self) -> None:
        data = json.dumps([asdict(c) for c in self._clients.values()], indent=2)
        atomic_write(self._path, data.encode("utf-8"), mode=0o600)
