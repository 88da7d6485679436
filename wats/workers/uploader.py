"""The uploader worker: delivers the queue's pending reports to the WATS server, each exactly once.

Why it is shaped like this: the queue folder is the truth (DESIGN invariant 1), so the uploader
only ever moves a report's file — pending → completed (or deleted) on success, pending → failed/
when the server refuses it for good — and everything it knows beyond the folders (what is due,
what is in flight, whether the server is reachable) is a cache it can rebuild by rescanning.
Delivery is at least once; the report's own id makes it land once (invariant 3), so an upload
whose answer was lost is simply sent again.

Retrying belongs to the queue, not to the HTTP client: the client makes exactly one attempt, and a
transient failure is written into the report's file (attempts, next attempt time, last error), so
the backoff survives a restart and ``queue list`` shows it. Backoff is capped exponential with
jitter; a server's ``Retry-After`` wins, and a 429 also holds back every other upload until then.

Connection trouble is not a per-report problem: after a connection error, or while the health
worker's last ``connection.status`` is OFFLINE, no new uploads start. A cheap probe
(``GET /api/App/Version``) runs meanwhile, 1 s after the outage began and doubling; ONLINE from
health, a good probe or any successful upload resumes, and the reports the outage parked are
sent again at once rather than after their backoff.

Wake-ups: ``report.queued`` (the new report is sent at once), the ``uploader.wake`` request (the
queue CLI sends it after ``queue retry``) and a rescan every ``[queue] rescan_seconds`` — so a lost
message delays a report by one rescan at most, never loses it.

Events: ``report.uploaded``, ``report.failed`` (``permanent`` or with ``next_attempt``) and
``queue.stats`` (counts read from the folders, at most once a second, only on change).
Commands: ``uploader.wake``, ``uploader.status``.
"""

from __future__ import annotations

import contextlib
import json
import random as _random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wats.api import WatsClient
from wats.api.errors import (
    AuthenticationError,
    ProxyAuthenticationError,
    RateLimitError,
    WatsConnectionError,
    WatsError,
    WatsHTTPError,
)
from wats.api.ratelimit import DEFAULT_MAX_REQUESTS, DEFAULT_WINDOW_SECONDS, RateLimiter
from wats.api.retry import RetryPolicy, parse_retry_after
from wats.api.services.report import ReportRepository
from wats.config.models import ClientConfig
from wats.config.paths import InstancePaths
from wats.protocol import topics
from wats.protocol.envelope import Envelope
from wats.queue import ItemNotFound, QueueItem, ReportQueue
from wats.workers.base import Later, Timer, Worker, handles
from wats.workers.connection import (
    ServerTarget,
    changed_target,
    make_client,
    resolve_server,
)
from wats.workers.health import describe_error

__all__ = [
    "Backoff",
    "ConnectionGate",
    "StatsThrottle",
    "UploadVerdict",
    "UploaderSettings",
    "UploaderWorker",
    "judge_failure",
    "refuse_non_json_numbers",
    "retry_after_of",
]

ONLINE = "ONLINE"
OFFLINE = "OFFLINE"

# A Retry-After beyond this is a broken header, not a plan: an hour is the most we honour.
RETRY_AFTER_LIMIT_SECONDS = 3600.0


# ---- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploaderSettings:
    """Everything the uploader is tuned by: ``[queue]`` plus the worker's own ``args``.

    From ``[queue]``: the folder, max_in_flight, max_attempts, retry_base_seconds,
    retry_max_seconds, rescan_seconds (the queue itself reads keep_completed and retention).
    From ``[workers.uploader] args``: ``timeout_seconds`` (per HTTP attempt, 60),
    ``probe_first_seconds`` (1) / ``probe_max_seconds`` (30) (the probe cadence while paused),
    ``stats_interval_seconds`` (1), ``purge_interval_seconds`` (600),
    ``rate_limit_requests`` / ``rate_limit_window_seconds``: client-side pacing, by default the
    500 requests per 60 s WATS documents for a configured server and none for the embedded one
    (ours, on loopback, never throttles); ``rate_limit_requests = 0`` turns pacing off.
    ``rate_limit_requests`` is ``None`` when pacing is off.
    """

    queue_root: Path
    max_in_flight: int = 4
    max_attempts: int = 50
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 600.0
    rescan_seconds: float = 30.0
    timeout_seconds: float = 60.0
    probe_first_seconds: float = 1.0
    probe_max_seconds: float = 30.0
    stats_interval_seconds: float = 1.0
    purge_interval_seconds: float = 600.0
    rate_limit_requests: int | None = DEFAULT_MAX_REQUESTS
    rate_limit_window_seconds: float = DEFAULT_WINDOW_SECONDS

    @classmethod
    def from_config(
        cls, config: ClientConfig, args: dict[str, Any] | None = None
    ) -> UploaderSettings:
        """Read ``[queue]`` and the worker args; a bad arg is a ``ValueError`` naming it."""
        q = config.queue
        args = dict(args or {})

        def arg(
            name: str, default: float, kind: Callable[[Any], Any] = float, *, zero: bool = False
        ) -> Any:
            try:
                value = kind(args.get(name, default))
            except (TypeError, ValueError):
                raise ValueError(f"[workers.uploader] args.{name}: not a number") from None
            if value < 0 or (value == 0 and not zero):
                limit = ">= 0" if zero else "> 0"
                raise ValueError(f"[workers.uploader] args.{name}: must be {limit}, got {value}")
            return value

        # The embedded server is ours and never throttles; a configured one is a WATS server
        # whose documented budget is the client library's default.
        default_requests = DEFAULT_MAX_REQUESTS if config.server.url else 0
        requests = arg("rate_limit_requests", default_requests, int, zero=True)

        return cls(
            queue_root=InstancePaths.for_config(config).queue_dir,
            max_in_flight=q.max_in_flight,
            max_attempts=q.max_attempts,
            retry_base_seconds=q.retry_base_seconds,
            retry_max_seconds=q.retry_max_seconds,
            rescan_seconds=q.rescan_seconds,
            timeout_seconds=arg("timeout_seconds", 60.0),
            probe_first_seconds=arg("probe_first_seconds", 1.0),
            probe_max_seconds=arg("probe_max_seconds", 30.0),
            stats_interval_seconds=arg("stats_interval_seconds", 1.0),
            purge_interval_seconds=arg("purge_interval_seconds", 600.0),
            rate_limit_requests=requests or None,
            rate_limit_window_seconds=arg("rate_limit_window_seconds", DEFAULT_WINDOW_SECONDS),
        )


# ---- retry policy (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter, unless the server said when (``Retry-After``).

    The n-th failure waits ``base * 2**(n-1)`` capped at ``cap``, scaled by a random factor in
    ``[1 - jitter, 1]`` so stations recovering from the same outage do not retry in lockstep.
    A ``Retry-After`` is honoured as given (up to an hour), plus up to 10 % so that reports
    throttled together do not all come back in the same instant — never earlier than asked.
    """

    base: float = 5.0
    cap: float = 600.0
    jitter: float = 0.5

    def delay(
        self,
        failures: int,
        retry_after: float | None = None,
        random: Callable[[], float] = _random.random,
    ) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1 = the first)."""
        if retry_after is not None:
            asked = min(max(retry_after, 0.0), RETRY_AFTER_LIMIT_SECONDS)
            return asked * (1.0 + 0.1 * random())
        exponent = min(max(failures, 1) - 1, 62)  # 2**62 * base is past any cap already
        raw = min(self.base * (2.0**exponent), self.cap)
        return raw * (1.0 - self.jitter * random())


def retry_after_of(error: BaseException) -> float | None:
    """The server's requested pause: a 429's ``retry_after``, or a ``Retry-After`` header on any
    other HTTP error (a 503 usually carries one); ``None`` when it named none."""
    if isinstance(error, RateLimitError):
        return error.retry_after
    if isinstance(error, WatsHTTPError) and error.response is not None:
        return parse_retry_after(error.response.headers.get("Retry-After"))
    return None


@dataclass(frozen=True)
class UploadVerdict:
    """What a failed attempt means for its report.

    ``action`` "retry": stays pending until ``next_attempt`` (epoch seconds); "fail": moves to
    failed/. ``message`` is stored as the report's last error (the server's message included).
    ``connection``: no answer at all (pause the uploads); ``hold``: seconds everyone waits
    after a 429 (its ``Retry-After``, or this report's backoff when it named none) or after a
    refusal of our credentials, else ``None``; ``credentials``: the server (401) or the proxy
    (407) refused the token or the proxy password - a fault of the login, not of the report.
    """

    action: Literal["retry", "fail"]
    message: str
    next_attempt: float | None = None
    connection: bool = False
    hold: float | None = None
    credentials: bool = False

    @property
    def permanent(self) -> bool:
        """True when the report went to failed/ (the ``permanent`` of ``report.failed``)."""
        return self.action == "fail"


def judge_failure(
    error: BaseException,
    failures: int,
    *,
    max_attempts: int,
    backoff: Backoff,
    now: float,
    random: Callable[[], float] = _random.random,
    credentials_wait: float = 30.0,
) -> UploadVerdict:
    """Decide a failed attempt's fate; ``failures`` counts this one (1 = first failure).

    Permanent errors (400 and other 4xx, an unusable answer, a report that cannot be serialised)
    fail at once. Transient ones (connection, timeout, 429, 5xx, local I/O trouble) are retried
    with backoff until ``max_attempts`` transient failures, then fail naming the count.

    A refused token (401) or proxy password (407) says nothing about the report: failing it
    would move the whole queue to failed/ while someone renews the login. The report stays
    pending, every upload waits ``credentials_wait`` seconds, and it never counts towards
    ``max_attempts``; the uploader picks up a new ``wats-supervisor login`` by itself.
    """
    message = _describe(error)
    if isinstance(error, AuthenticationError | ProxyAuthenticationError):
        return UploadVerdict(
            "retry",
            f"{message} (uploads wait for valid credentials: wats-supervisor login)",
            next_attempt=now + credentials_wait,
            hold=credentials_wait,
            credentials=True,
        )
    if isinstance(error, WatsError):
        transient = error.transient
    else:  # local trouble: a body we cannot encode is permanent, anything else (I/O) is not
        transient = not isinstance(error, ValueError | TypeError)
    if not transient:
        return UploadVerdict("fail", message)
    if failures >= max_attempts:
        return UploadVerdict(
            "fail", f"gave up after {failures} transient failures; last: {message}"
        )
    retry_after = retry_after_of(error)
    delay = backoff.delay(failures, retry_after, random)
    throttled = isinstance(error, RateLimitError)
    return UploadVerdict(
        "retry",
        message,
        next_attempt=now + delay,
        connection=isinstance(error, WatsConnectionError),
        # A 429 is about all of our requests, not this report: everyone waits.
        hold=(retry_after or delay) if throttled else None,
    )


def refuse_non_json_numbers(body: bytes) -> None:
    """``ValueError`` if ``body`` holds ``NaN`` or ``±Infinity`` as numbers: not JSON, so no WATS
    server accepts them (a permanent failure). A byte search first; only a body that contains
    those words somewhere (a step named "NaN check") is parsed to tell a number from a string.
    """
    if b"NaN" not in body and b"Infinity" not in body:
        return

    def refuse(token: str) -> Any:
        raise ValueError(f"Out of range float values are not JSON compliant: {token}")

    json.loads(body, parse_constant=refuse)


def _describe(error: BaseException) -> str:
    if isinstance(error, WatsError):
        return str(error)  # "<METHOD> <path> failed: HTTP <status>: <server message>"
    return describe_error(error)


# ---- the connection gate (pure) -----------------------------------------------------------------


class ConnectionGate:
    """Whether new uploads may start: paused while the server looks unreachable, held after 429.

    Two causes pause, and each has its own way out. Health's ``connection.status`` OFFLINE pauses
    until health says ONLINE (health keeps probing; it is the one shared view of the server).
    A connection error of our own pauses until health says ONLINE, a probe of ours answers or an
    upload succeeds; its probe is due ``probe_first`` seconds after the pause began, then
    doubling up to ``probe_max``. A hold (the server's ``Retry-After`` on a 429) blocks new
    uploads until it ends, whatever the connection says.
    """

    def __init__(
        self,
        probe_first: float = 1.0,
        probe_max: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe_first = probe_first
        self.probe_max = probe_max
        self._clock = clock
        self._health_offline: str | None = None  # why health says OFFLINE
        self._suspect: str | None = None  # our last connection error, until good news
        self.paused_since: float | None = None
        self.pauses = 0
        self._probe_delay = probe_first
        self._probe_at: float | None = None
        self._hold_until = 0.0

    @property
    def paused(self) -> bool:
        """True while the server is believed unreachable."""
        return self._health_offline is not None or self._suspect is not None

    @property
    def reason(self) -> str | None:
        """Why uploads are paused (``None`` when they are not)."""
        return self._health_offline or self._suspect

    def hear_status(self, status: str, error: str | None = None) -> bool:
        """Health's ``connection.status``; returns True when ``paused`` changed."""
        was_paused = self.paused
        if status == ONLINE:
            self._health_offline = self._suspect = None
            self._probe_at = None
            self._probe_delay = self.probe_first
        else:
            self._health_offline = f"connection.status OFFLINE ({error or 'no detail'})"
        return self._note_change(was_paused)

    def connection_failed(self, detail: str) -> bool:
        """An upload or probe got no answer; returns True when ``paused`` changed.

        Already suspect: the next probe waits twice as long (up to ``probe_max``).
        """
        was_paused = self.paused
        if self._suspect is None:
            self._probe_delay = self.probe_first
        else:
            self._probe_delay = min(self._probe_delay * 2, self.probe_max)
        self._suspect = f"connection error: {detail}"
        self._probe_at = self._clock() + self._probe_delay
        return self._note_change(was_paused)

    def succeeded(self) -> bool:
        """The server answered a probe or an upload; returns True when ``paused`` changed
        (a pause ordered by health's OFFLINE stays until health says ONLINE)."""
        was_paused = self.paused
        self._suspect = None
        self._probe_at = None
        self._probe_delay = self.probe_first
        return self._note_change(was_paused)

    def _note_change(self, was_paused: bool) -> bool:
        if self.paused == was_paused:
            return False
        if self.paused:
            self.pauses += 1
            self.paused_since = self._clock()
        else:
            self.paused_since = None
        return True

    def probe_in(self) -> float | None:
        """Seconds until our probe is due (0 = now); ``None`` when no probe of ours is wanted
        (not paused by a connection error, or health is the one watching: it said OFFLINE)."""
        if self._probe_at is None or self._health_offline is not None:
            return None
        return max(0.0, self._probe_at - self._clock())

    def probe_started(self) -> None:
        """A probe is on its way: none is due again until its result arrives."""
        self._probe_at = None

    def hold(self, seconds: float) -> None:
        """No new uploads for ``seconds`` (extends, never shortens, a hold already running)."""
        self._hold_until = max(self._hold_until, self._clock() + max(seconds, 0.0))

    def held_for(self) -> float:
        """Seconds the current hold still lasts (0 = none)."""
        return max(0.0, self._hold_until - self._clock())

    def may_start(self) -> bool:
        """True when new uploads may start now."""
        return not self.paused and self.held_for() == 0.0


# ---- queue.stats throttling (pure) --------------------------------------------------------------


class StatsThrottle:
    """``queue.stats`` on change, at most once per ``min_interval`` seconds.

    Many uploads finishing at once must not flood the bus, yet the last change must always be
    published: a change inside the interval waits (``wait()`` says how long) instead of vanishing.
    """

    def __init__(self, min_interval: float = 1.0, *, clock: Callable[[], float] = time.monotonic):
        self.min_interval = min_interval
        self._clock = clock
        self._last_at: float | None = None
        self.last: dict[str, Any] | None = None

    def wait(self) -> float:
        """Seconds until publishing is allowed again (0 = now)."""
        if self._last_at is None:
            return 0.0
        return max(0.0, self._last_at + self.min_interval - self._clock())

    def is_news(self, stats: dict[str, Any]) -> bool:
        """True when ``stats`` differ from what was last published (or nothing was)."""
        return stats != self.last

    def published(self, stats: dict[str, Any]) -> None:
        """Record that ``stats`` went out now."""
        self.last = dict(stats)
        self._last_at = self._clock()


# ---- the worker ---------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What an upload job did (it already moved the file); the loop publishes it."""

    item_id: str
    attempts: int  # attempts made, this one included
    latency_ms: float
    verdict: UploadVerdict | None = None  # None: uploaded
    error: BaseException | None = None


@dataclass
class _Scan:
    """A scan of the pending folder: due reports (at most ``limit``) and the next due time."""

    now: float
    items: list[QueueItem]
    next_due: float | None
    limit: int


@dataclass
class _Counters:
    uploaded: int = 0
    retried: int = 0
    failed: int = 0
    probes: int = 0
    last_error: str | None = None
    last_upload: float | None = None


@dataclass
class _Cooldown:
    """Reports whose queue file could not be updated: left alone until ``until`` (epoch)."""

    until: dict[str, float] = field(default_factory=dict)

    def active(self, item_id: str, now: float) -> bool:
        until = self.until.get(item_id)
        if until is None:
            return False
        if until <= now:
            del self.until[item_id]
            return False
        return True

    def earliest(self) -> float | None:
        return min(self.until.values(), default=None)


class UploaderWorker(Worker):
    """Uploads due pending reports, ``max_in_flight`` at a time (see the module docstring)."""

    settings: UploaderSettings
    queue: ReportQueue
    target: ServerTarget
    client: WatsClient

    def setup(self) -> None:
        """Open the queue and the client, listen for hints, rescan now and periodically."""
        self.settings = UploaderSettings.from_config(self.config, self.args)
        s = self.settings
        self.queue = ReportQueue.for_config(self.config)
        repaired = self.queue.recover()  # finish what a crash interrupted, before anything else
        if repaired:
            self.log.info("queue repaired after a crash", entries=repaired)
        self.target = resolve_server(self.config)
        # One attempt per upload: the queue's backoff owns retries (and survives restarts).
        self._limiter = (
            RateLimiter(s.rate_limit_requests, s.rate_limit_window_seconds)
            if s.rate_limit_requests
            else RateLimiter.disabled()
        )
        self.client = self._client_for(self.target)
        self.backoff = Backoff(s.retry_base_seconds, s.retry_max_seconds)
        self.gate = ConnectionGate(s.probe_first_seconds, s.probe_max_seconds)
        self.stats_throttle = StatsThrottle(s.stats_interval_seconds)
        self.counters = _Counters()
        self.counts: dict[str, int] = {"pending": 0, "failed": 0, "completed": 0}
        self._repo = ReportRepository()
        self._in_flight: dict[str, float] = {}  # id -> monotonic start
        self._backlog: OrderedDict[str, QueueItem] = OrderedDict()  # known due, not started
        self._more_due = False  # more may be due than the backlog holds: scan again
        self._scans = 0  # scans running
        self._rescan_again = False  # a rescan was asked for while one ran
        self._settled_during_scan: set[str] = set()
        self._parked: set[str] = set()  # retried because of an outage: resend on resume
        self._cooldown = _Cooldown()
        self._probing = False
        self._purging = False
        self._due_timer: Timer | None = None
        self._probe_timer: Timer | None = None
        self._hold_timer: Timer | None = None
        self._stats_timer: Timer | None = None
        self.subscribe(topics.REPORT_QUEUED, self._on_report_queued)
        self.subscribe(topics.CONNECTION_STATUS, self._on_connection_status)
        self.every(s.rescan_seconds, self.rescan, first=0)
        self.every(s.purge_interval_seconds, self.purge, first=0)
        self.ready = True
        self.log.info(
            "uploader ready",
            queue=str(s.queue_root),
            server=self.target.url,
            max_in_flight=s.max_in_flight,
        )

    def teardown(self) -> None:
        """Close the HTTP connection pool (running uploads were drained by the base)."""
        self.client.close()

    def heartbeat_detail(self) -> dict[str, Any]:
        """Counts (as last read from the folders), uploads in flight, paused or not."""
        return {**self.counts, "in_flight": len(self._in_flight), "paused": self.gate.paused}

    # ---- finding work ---------------------------------------------------------------------------

    @property
    def _batch(self) -> int:
        return max(64, 8 * self.settings.max_in_flight)

    def rescan(self) -> None:
        """Re-read the pending folder for due reports (in a thread), then start what may."""
        self._refill()
        self._stats_changed()

    def _refill(self) -> None:
        """Scan for due reports in a thread; the loop adds them to the backlog and pumps.

        A scan reads only metas (a stat per report, a few KB per changed file), yet with
        thousands of pending reports that is still disk I/O the loop thread, which must keep
        heartbeating, should not wait on.
        """
        if self._scans:
            self._rescan_again = True
            return
        self.run_in_thread(self._scan, self._apply_scan, name="scan")
        self._scans += 1

    def _scan(self) -> _Scan:
        """Blocking (a job thread): due reports, and when the next one falls due."""
        now = time.time()
        limit = self._batch + self.settings.max_in_flight + len(self._backlog)
        items = self.queue.due(now, limit=limit)
        next_due = self.queue.next_due_time() if len(items) < limit else None
        return _Scan(now, items, next_due, limit)

    def _apply_scan(self, scan: _Scan | None, error: BaseException | None) -> None:
        """Loop thread: take a scan's due reports, except those settled while it ran."""
        self._scans -= 1
        settled = set(self._settled_during_scan)
        if not self._scans:
            self._settled_during_scan.clear()
        if scan is None:
            # Unreadable folder: the worker must not die of it; the next rescan tries again.
            self.log.error("queue scan failed", error=describe_error(error) if error else "?")
            return
        known = 0
        for item in scan.items:
            if item.id in self._in_flight or item.id in self._backlog or item.id in settled:
                known += 1
                continue
            if self._cooldown.active(item.id, scan.now):
                continue
            self._backlog[item.id] = item
        self._more_due = len(scan.items) >= scan.limit and len(scan.items) > known
        if not self._backlog and not self._in_flight:
            when = scan.next_due
            if when is not None and when <= scan.now:  # due, yet skipped: all cooling down
                when = self._cooldown.earliest()
            self._arm_due_timer(when)
        if self._rescan_again:
            self._rescan_again = False
            self._refill()
        self._pump()

    def _on_report_queued(self, env: Envelope, body: Any) -> None:
        item_id = str(getattr(body, "id", "") or "")
        if item_id and item_id not in self._in_flight and item_id not in self._backlog:
            if self._backlog or len(self._in_flight) >= self.settings.max_in_flight:
                self._more_due = True  # busy anyway: the next scan takes it, read once
            elif self.gate.may_start():
                # A free slot: send it now (one file read; the latency path of the pipeline).
                item = self.queue.get(item_id)
                if (
                    item is not None
                    and item.state == "pending"
                    and item.next_attempt <= time.time()
                ):
                    self._backlog[item_id] = item
                    self._pump()
            else:
                self._more_due = True
        self._stats_changed()

    def _on_connection_status(self, env: Envelope, body: Any) -> None:
        status = str(getattr(body, "status", ""))
        if self.gate.hear_status(status, getattr(body, "error", None)):
            self._paused_changed()

    # ---- starting uploads -----------------------------------------------------------------------

    def _pump(self) -> None:
        """Start uploads until ``max_in_flight`` are running or nothing is due."""
        if self.stopping:
            return
        if not self.gate.may_start():
            if not self.gate.paused:
                self._arm_hold_timer()
            return
        while len(self._in_flight) < self.settings.max_in_flight and self._backlog:
            _, item = self._backlog.popitem(last=False)
            self._start(item)
        if self._more_due and len(self._backlog) < self.settings.max_in_flight:
            self._more_due = False
            self._refill()  # top the backlog up before it runs dry

    def _start(self, item: QueueItem) -> None:
        self._in_flight[item.id] = time.monotonic()
        self.run_in_thread(
            lambda: self._upload(item),
            self._on_upload_done(item),
            name=f"upload-{item.id}",
        )

    def _upload(self, item: QueueItem) -> _Outcome:
        """Blocking (a job thread): one attempt, then move the report's file accordingly."""
        attempts = item.attempts + 1
        started = time.perf_counter()
        try:
            body = item.report_bytes()  # as stored: no parse, no re-encoding
            refuse_non_json_numbers(body)
            self.log.debug(
                "uploading report",
                id=item.id,
                attempt=attempts,
                bytes=len(body),
                server=self.target.url,
            )
            self.client.execute(self._repo.submit_wsjf(body, item.id))
        except ItemNotFound:
            raise  # someone else moved the report meanwhile (see _on_upload_done)
        except Exception as exc:
            latency = (time.perf_counter() - started) * 1000
            self.log.debug(
                "upload attempt failed",
                id=item.id,
                attempt=attempts,
                latency_ms=round(latency, 1),
                error=describe_error(exc),
            )
            verdict = judge_failure(
                exc,
                attempts,
                max_attempts=self.settings.max_attempts,
                backoff=self.backoff,
                now=time.time(),
                credentials_wait=self.settings.probe_max_seconds,
            )
            if verdict.permanent:
                self.queue.mark_failed(item.id, verdict.message)
            else:
                self.queue.mark_retry(item.id, verdict.message, verdict.next_attempt)
            return _Outcome(item.id, attempts, latency, verdict, exc)
        latency = (time.perf_counter() - started) * 1000
        self.log.debug("report accepted", id=item.id, latency_ms=round(latency, 1))
        self.queue.mark_uploaded(item.id)
        return _Outcome(item.id, attempts, latency)

    def _on_upload_done(
        self, item: QueueItem
    ) -> Callable[[_Outcome | None, BaseException | None], None]:
        def done(outcome: _Outcome | None, error: BaseException | None) -> None:
            self._in_flight.pop(item.id, None)
            if self._scans:
                self._settled_during_scan.add(item.id)  # a running scan may have seen it pending
            self.tick()
            if outcome is None and isinstance(error, ItemNotFound):
                # Someone else (the queue CLI) moved the report meanwhile: nothing to record.
                self.log.info("report left pending meanwhile; skipped", id=item.id)
            elif outcome is None:
                # The queue file could not be updated (disk trouble): leave the report alone for
                # a while; its file still says pending, so nothing is lost.
                self.counters.last_error = describe_error(error) if error else "unknown"
                self.log.error(
                    "queue update failed; report left pending",
                    id=item.id,
                    error=self.counters.last_error,
                )
                wait = self.backoff.delay(item.attempts + 1)
                self._cooldown.until[item.id] = time.time() + wait
                self._arm_due_timer(time.time() + wait)
            else:
                self._report(outcome)
            self._pump()
            self._stats_changed()

        return done

    def _client_for(self, target: ServerTarget) -> WatsClient:
        s = self.settings
        return make_client(
            target, s.timeout_seconds, retry=RetryPolicy.never(), rate_limiter=self._limiter
        )

    def _refresh_credentials(self) -> bool:
        """After a 401/407: read the login again; True when it changed (new client in place).

        ``wats-supervisor login`` while the supervisor runs then takes effect at the next
        attempt, without restarting anything.
        """
        try:
            target = changed_target(self.config, self.target)
        except Exception as exc:  # the store cannot be read or decrypted: say why, keep waiting
            self.log.error("stored credentials unusable", error=str(exc))
            return False
        if target is None:
            return False
        old, self.target, self.client = self.client, target, self._client_for(target)
        with contextlib.suppress(Exception):
            old.close()
        self.log.info("credentials changed; uploads resume with the new login")
        return True

    def _report(self, outcome: _Outcome) -> None:
        """Publish an upload's result and feed it to the gate (loop thread)."""
        verdict = outcome.verdict
        if verdict is None:
            self.counters.uploaded += 1
            self.counters.last_upload = time.time()
            self.publish(
                topics.REPORT_UPLOADED,
                {
                    "id": outcome.item_id,
                    "attempts": outcome.attempts,
                    "latency_ms": round(outcome.latency_ms, 3),
                },
            )
            if self.gate.succeeded():
                self._paused_changed()
            return
        self.counters.last_error = verdict.message
        if verdict.permanent:
            self.counters.failed += 1
            self.log.warning("report failed", id=outcome.item_id, error=verdict.message)
        else:
            self.counters.retried += 1
            self.log.info(
                "upload failed; will retry",
                id=outcome.item_id,
                attempts=outcome.attempts,
                error=verdict.message,
                retry_in=round((verdict.next_attempt or time.time()) - time.time(), 3),
            )
            self._arm_due_timer(verdict.next_attempt)
        self.publish(
            topics.REPORT_FAILED,
            {
                "id": outcome.item_id,
                "error": verdict.message,
                "permanent": verdict.permanent,
                "attempts": outcome.attempts,
                "next_attempt": verdict.next_attempt,
            },
        )
        if verdict.credentials:
            self.log.warning(
                "the server refused our credentials; uploads wait (run wats-supervisor login)",
                error=verdict.message,
            )
            if self._refresh_credentials():
                self._parked.add(outcome.item_id)
                self._resume_parked()
                self._refill()
                self._pump()
                return
        if verdict.hold:
            self.gate.hold(verdict.hold)
            self._arm_hold_timer()
        if verdict.connection:
            self._parked.add(outcome.item_id)
            if self.gate.connection_failed(verdict.message):
                self._paused_changed()
            else:
                self._arm_probe()

    # ---- pausing and probing ------------------------------------------------------------------

    def _paused_changed(self) -> None:
        if self.gate.paused:
            self.log.warning("uploads paused", reason=self.gate.reason)
            self._arm_probe()
        else:
            self.log.info("uploads resumed", parked=len(self._parked))
            self._resume_parked()
            self._refill()
            self._pump()
        self._stats_changed()

    def _resume_parked(self) -> None:
        """Reports retried because of the outage go now, not after their backoff."""
        parked, self._parked = self._parked, set()
        for item_id in sorted(parked):
            if item_id in self._in_flight or item_id in self._backlog:
                continue
            item = self.queue.get(item_id)
            if item is not None and item.state == "pending":
                self._backlog[item_id] = item

    def _arm_probe(self) -> None:
        delay = self.gate.probe_in()
        if delay is None or self._probing:
            return
        if self._probe_timer is not None:
            self._probe_timer.cancel()
        self._probe_timer = self.after(delay, self._probe)

    def _probe(self) -> None:
        self._probe_timer = None
        if self.gate.probe_in() is None or self._probing or self.stopping:
            return
        self._probing = True
        self.gate.probe_started()
        self.counters.probes += 1
        self.run_in_thread(self.client.app.version, self._on_probe, name="probe")

    def _on_probe(self, version: str | None, error: BaseException | None) -> None:
        self._probing = False
        if error is None:
            self.log.info("probe answered; server reachable")
            if self.gate.succeeded():
                self._paused_changed()
            return
        self.gate.connection_failed(describe_error(error))
        self._arm_probe()

    def _arm_hold_timer(self) -> None:
        wait = self.gate.held_for()
        if wait <= 0 or self._hold_timer is not None:
            return

        def end_hold() -> None:
            self._hold_timer = None
            self._pump()

        self._hold_timer = self.after(wait, end_hold)

    def _arm_due_timer(self, when: float | None) -> None:
        """Rescan at epoch ``when`` (the earliest backoff we know of), unless one comes sooner."""
        if when is None:
            return
        delay = max(0.0, when - time.time()) + 0.01
        current = self._due_timer
        if current is not None and not current.cancelled:
            if current.due <= time.monotonic() + delay:
                return
            current.cancel()

        def due() -> None:
            self._due_timer = None
            self.rescan()

        self._due_timer = self.after(delay, due)

    # ---- stats and housekeeping ---------------------------------------------------------------

    def _stats_changed(self) -> None:
        """Publish ``queue.stats`` now if allowed, else once the interval has passed."""
        if self._stats_timer is not None:
            return
        wait = self.stats_throttle.wait()
        if wait > 0:

            def flush() -> None:
                self._stats_timer = None
                self._stats_changed()

            self._stats_timer = self.after(wait, flush)
            return
        stats = self._stats()
        if self.stats_throttle.is_news(stats):
            self.publish(topics.QUEUE_STATS, stats)
            self.stats_throttle.published(stats)

    def _stats(self) -> dict[str, Any]:
        counts = self.queue.counts()
        self.counts = {
            "pending": counts.pending,
            "failed": counts.failed,
            "completed": counts.completed,
        }
        return {
            **self.counts,
            "in_flight": len(self._in_flight),
            "uploaded_total": self.counters.uploaded,
            "paused": self.gate.paused,
        }

    def purge(self) -> None:
        """Apply the ``[queue]`` completed/ retention (count and age) in a thread."""
        if self._purging:
            return
        self._purging = True

        def done(removed: int | None, error: BaseException | None) -> None:
            self._purging = False
            if error is not None:
                self.log.warning("purging completed reports failed", error=describe_error(error))
            elif removed:
                self.log.info("purged completed reports", removed=removed)
                self._stats_changed()

        self.run_in_thread(self.queue.enforce_retention, done, name="purge")

    # ---- commands -----------------------------------------------------------------------------

    @handles("uploader.wake")
    def wake_command(self, args: dict[str, Any]) -> Later:
        """Rescan now (``queue retry`` sends this); replies once the scan is applied, with
        what is running and waiting."""
        self._parked.clear()  # a person asked: whatever is due goes, outage or not
        self._scans += 1

        def then(scan: _Scan | None, error: BaseException | None) -> dict[str, Any]:
            self._apply_scan(scan, error)
            self._stats_changed()
            return {"in_flight": len(self._in_flight), "backlog": len(self._backlog)}

        return self.later(self._scan, then)

    @handles("uploader.status")
    def status_command(self, args: dict[str, Any]) -> dict[str, Any]:
        """Counts, uploads in flight, pause state and totals: what ``status`` needs."""
        stats = self._stats()
        now = time.monotonic()
        return {
            **stats,
            "queue": str(self.settings.queue_root),
            "server": self.target.url,
            "pause_reason": self.gate.reason,
            "held_seconds": round(self.gate.held_for(), 3),
            "in_flight_ids": sorted(self._in_flight),
            "in_flight_seconds": {k: round(now - v, 3) for k, v in self._in_flight.items()},
            "backlog": len(self._backlog),
            "max_in_flight": self.settings.max_in_flight,
            "retried_total": self.counters.retried,
            "failed_total": self.counters.failed,
            "probes": self.counters.probes,
            "last_error": self.counters.last_error,
            "last_upload": self.counters.last_upload,
        }
