"""The health worker: is the WATS server there? Everyone else asks the bus, not the server.

It calls ``GET /api/App/Version`` (WATS has no health endpoint; the API never caches this call)
every ``[health] interval_seconds`` with ``timeout_seconds``, and publishes ``connection.status``
ONLINE/OFFLINE when the answer changes — so the uploader and sync react to one shared view of
the connection instead of each probing the server. While OFFLINE it probes sooner (from
``args.offline_retry_seconds``, default 1 s, doubling up to the interval) so a recovery is seen
within seconds, not a whole interval later.

With the embedded server it also checks *whose* server answers: every answer of this
instance's server carries ``X-Wats-Instance`` (``wats.workers.connection.embedded_identity``).
An answer without it, or with another value — another program or another instance's server on
the configured port — is OFFLINE with "not this instance's embedded server", never ONLINE and
never "credentials refused" (another server refusing our token says nothing about our login).

Commands: ``health.status`` (the current status and statistics; also re-publishes the status for
late subscribers) and ``health.check`` (probe now and answer with the result).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from wats.api import WatsClient
from wats.api._client import ApiCall
from wats.api.errors import (
    AuthenticationError,
    ProxyAuthenticationError,
    WatsConnectionError,
    WatsError,
    WatsHTTPError,
    WatsTimeoutError,
)
from wats.api.response import Response
from wats.api.retry import RetryPolicy
from wats.api.services.app import AppRepository
from wats.credentials import CredentialError, HealthCheckSettings, record_health
from wats.protocol import topics
from wats.workers.base import Later, Timer, Worker, handles
from wats.workers.connection import (
    INSTANCE_HEADER,
    ServerTarget,
    changed_target,
    embedded_identity,
    make_client,
    resolve_server,
)

__all__ = ["HealthStats", "HealthWorker"]

ONLINE = "ONLINE"
OFFLINE = "OFFLINE"

EMBEDDED_START_GRACE_SECONDS = 20.0
"""With the embedded server, how long a refused connection at start means "not listening yet"."""
_GRACE_RETRY_SECONDS = 0.2


@dataclass
class HealthStats:
    """Counters a person checks first when a station says "offline"."""

    checks: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_check: float | None = None
    last_online: float | None = None  # when the status last became ONLINE
    last_offline: float | None = None  # when the status last became OFFLINE
    last_latency_ms: float | None = None
    last_error: str | None = None


@dataclass
class _Probe:
    latency_ms: float
    version: str


class ForeignServerError(WatsError):
    """The embedded server's address is answered, but not by this instance's server."""

    transient = True


def describe_error(exc: BaseException) -> str:
    """A short, token-free reason for a failed probe (the error's type and message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class HealthWorker(Worker):
    """Publishes ``connection.status`` on change; answers ``health.status`` and ``health.check``."""

    target: ServerTarget
    client: WatsClient

    def setup(self) -> None:
        """Resolve the server, then probe at once and every interval."""
        self.interval = float(self.config.health.interval_seconds)
        self.timeout = float(self.config.health.timeout_seconds)
        self.offline_retry_first = float(self.args.get("offline_retry_seconds", 1.0))
        self.target = resolve_server(self.config)
        self.identity = embedded_identity(self.config) if self.target.embedded else None
        # One attempt per probe: retries would hide the latency and delay the verdict.
        self.client = make_client(self.target, self.timeout, retry=RetryPolicy.never())
        self.stats = HealthStats()
        self.record_settings = HealthCheckSettings(
            interval_seconds=self.interval,
            timeout_seconds=self.timeout,
            auto_reconnect=True,  # the worker never stops probing
            reconnect_attempts=0,
            reconnect_delay_seconds=self.offline_retry_first,
        )
        self.status: dict[str, Any] | None = None  # the last published connection.status body
        self.server_version: str | None = None
        self._probing = False
        self._offline_delay = self.offline_retry_first
        self._retry: Timer | None = None
        # The embedded server is a sibling worker that starts at the same time as this one: a
        # refused connection before its first answer is its start-up, not an outage, and is
        # neither published as OFFLINE nor counted as a disconnection.
        embedded = self.config.server.uses_embedded
        self._grace_until = time.monotonic() + (EMBEDDED_START_GRACE_SECONDS if embedded else 0)
        self._recorded = False  # this process has not written the connection record yet
        self.every(self.interval, self.check, first=0)
        self.ready = True

    def teardown(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    def heartbeat_detail(self) -> dict[str, Any]:
        """The connection state, for ``status`` and the monitor."""
        return {"status": self.status["status"] if self.status else None}

    # ---- probing ------------------------------------------------------------------------

    def check(self) -> bool:
        """Start a probe unless one is running; returns whether one was started."""
        if self._probing:
            return False
        self._probing = True
        self.run_in_thread(self._probe, self._on_probe, name="probe")
        return True

    def _probe(self) -> _Probe:
        started = time.perf_counter()
        if self.identity is None:
            version = self.client.app.version()
        else:
            plain = AppRepository().version()
            call = ApiCall(plain.method, plain.path, parse=self._own_version, retry=False)
            try:
                version = self.client.execute(call)
            except WatsHTTPError as exc:
                if exc.response is not None:
                    self._check_identity(exc.response)  # a refusal from a foreign server
                raise
        return _Probe(round((time.perf_counter() - started) * 1000, 3), version)

    def _own_version(self, response: Response) -> str:
        self._check_identity(response)
        return AppRepository().version().parse(response)

    def _check_identity(self, response: Response) -> None:
        """Raise ``ForeignServerError`` unless the answer is from this instance's server."""
        if response.headers.get(INSTANCE_HEADER) != self.identity:
            raise ForeignServerError(
                f"{self.target.url} answers, but not as this instance's embedded server "
                "(another program or another instance holds the port; see the server "
                "worker in wats-supervisor status)"
            )

    def _on_probe(self, probe: _Probe | None, error: BaseException | None) -> None:
        self._probing = False
        self.tick()
        now = time.time()
        stats = self.stats
        stats.checks += 1
        stats.last_check = now
        if error is None and probe is not None:
            stats.consecutive_failures = 0
            stats.last_latency_ms = probe.latency_ms
            self.server_version = probe.version
            self._offline_delay = self.offline_retry_first
            self._set_status(ONLINE, now, latency_ms=probe.latency_ms, error=None)
        elif self._starting_up(error):
            self.log.debug("embedded server not listening yet", error=describe_error(error))
            if self._retry is not None:
                self._retry.cancel()
            self._retry = self.after(_GRACE_RETRY_SECONDS, self.check)
            return
        else:
            stats.failures += 1
            stats.consecutive_failures += 1
            stats.last_error = describe_error(error) if error else "no answer"
            refused = isinstance(error, AuthenticationError | ProxyAuthenticationError)
            if refused:
                stats.last_error += " (credentials refused: run wats-supervisor login)"
            self._set_status(OFFLINE, now, latency_ms=None, error=stats.last_error)
            if refused:
                self._refresh_credentials()
            self._schedule_offline_retry()
        self._record(now, failed=error is not None or probe is None)

    def _starting_up(self, error: BaseException | None) -> bool:
        """A refused connection before the embedded server has ever answered, within the grace."""
        return (
            self.status is None
            and time.monotonic() < self._grace_until
            and isinstance(error, WatsConnectionError)
            and not isinstance(error, WatsTimeoutError)
        )

    def _refresh_credentials(self) -> None:
        """Refused credentials: read the login again, so a new ``wats-supervisor login`` is
        used from the next probe on (the next probe comes soon: the link counts as down)."""
        try:
            fresh = changed_target(self.config, self.target)
        except Exception as exc:  # the store cannot be decrypted: keep probing, say why
            self.log.error("stored credentials unusable", error=str(exc))
            return
        if fresh is None:
            return
        old, self.target = self.client, fresh
        self.client = make_client(fresh, self.timeout, retry=RetryPolicy.never())
        with contextlib.suppress(Exception):
            old.close()
        self._offline_delay = self.offline_retry_first
        self.log.info("credentials changed; probing with the new login")

    def _record(self, now: float, *, failed: bool) -> None:
        """Count the check into the connection record, where ``status`` reads the link's history
        even with the supervisor stopped. Not fatal when it fails: the bus carries the state."""
        if self.status is None:  # pragma: no cover - _set_status ran just before
            return
        try:
            record_health(
                self.config,
                self.status["status"],
                url=self.target.url,
                at=now,
                failed=failed,
                error=self.status["error"],
                settings=self.record_settings,
                first_of_run=not self._recorded,
            )
            self._recorded = True
        except (OSError, CredentialError) as exc:
            self.log.warning("cannot update the connection record", error=describe_error(exc))

    def _set_status(
        self, status: str, now: float, *, latency_ms: float | None, error: str | None
    ) -> None:
        changed = self.status is None or self.status["status"] != status
        since = now if changed or self.status is None else self.status["since"]
        self.status = {
            "status": status,
            "url": self.target.url,
            "since": since,
            "latency_ms": latency_ms,
            "error": error,
        }
        if changed:
            if status == ONLINE:
                self.stats.last_online = now
            else:
                self.stats.last_offline = now
            self.log.info(
                "connection status changed", status=status, url=self.target.url, error=error
            )
            self.publish(topics.CONNECTION_STATUS, self.status)

    def _schedule_offline_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        delay = min(self._offline_delay, self.interval)
        self._offline_delay = min(self._offline_delay * 2, self.interval)
        if delay < self.interval:
            self._retry = self.after(delay, self.check)

    # ---- commands -------------------------------------------------------------------------

    @handles("health.status")
    def status_command(self, args: dict[str, Any]) -> dict[str, Any]:
        """The current status (None before the first probe) and statistics; re-publishes the
        status so a subscriber that joined late learns it."""
        if self.status is not None:
            self.publish(topics.CONNECTION_STATUS, self.status)
        return {
            "status": self.status,
            "server_version": self.server_version,
            "interval_seconds": self.interval,
            "timeout_seconds": self.timeout,
            "stats": asdict(self.stats),
        }

    @handles("health.check")
    def check_command(self, args: dict[str, Any]) -> Later:
        """Probe now; the reply is the resulting status."""

        def then(probe: _Probe | None, error: BaseException | None) -> dict[str, Any] | None:
            self._on_probe(probe, error)
            return self.status

        # A probe already running still gets its own answer here: a second probe is cheap.
        self._probing = True
        return self.later(self._probe, then)
