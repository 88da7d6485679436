"""The sync worker: a local copy of the server's reference data, so stations work offline.

Reports name their operation by process code, and stations look codes up by name; both need the
server's processes, levels and product groups. This worker fetches them at start, every
``[sync] interval_seconds``, whenever ``connection.status`` turns ONLINE, and on ``sync.now``.
Each good fetch is written to ``<cache dir>/reference.json`` atomically (temp file, fsync, rename,
fsync of the folder), so a kill at any instant leaves the old cache or the new one. At start the
cache is loaded first: with the server down, lookups are answered from it at once.

Commands: ``sync.now`` (fetch now; the reply has the counts), ``sync.lookup`` (``{"code": 10}`` or
``{"name": "..."}``, optional ``"kind"``: ``process`` (default), ``level`` or ``product_group``),
``sync.status``. Events: ``sync.completed`` (source ``server`` or ``cache``), ``sync.failed``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from wats.api import WatsClient
from wats.api.retry import RetryPolicy
from wats.config.paths import InstancePaths
from wats.fsutil import atomic_write
from wats.protocol import topics
from wats.protocol.envelope import Envelope
from wats.workers.base import ControlError, Later, Worker, handles
from wats.workers.connection import ServerTarget, make_client, resolve_server
from wats.workers.health import describe_error

__all__ = ["CACHE_FILE", "CACHE_VERSION", "ReferenceCache", "SyncWorker"]

CACHE_FILE = "reference.json"
CACHE_VERSION = 1

# kind -> (list key in the cache, code field, name field), in WATS's camelCase wire names.
_KINDS: dict[str, tuple[str, str, str]] = {
    "process": ("processes", "code", "name"),
    "level": ("levels", "levelId", "levelName"),
    "product_group": ("product_groups", "productGroupId", "productGroupName"),
}


EMBEDDED_FIRST_SYNC_SECONDS = 5.0
"""With the embedded server, when the first sync runs if no ONLINE has come before it."""


@dataclass
class ReferenceCache:
    """Processes, levels and product groups as the server sent them (camelCase dicts)."""

    processes: list[dict[str, Any]]
    levels: list[dict[str, Any]]
    product_groups: list[dict[str, Any]]
    fetched_at: float
    server: str

    def counts(self) -> dict[str, int]:
        """How many of each kind (the body of ``sync.completed`` minus ``source``)."""
        return {
            "processes": len(self.processes),
            "levels": len(self.levels),
            "product_groups": len(self.product_groups),
        }

    def to_json(self) -> dict[str, Any]:
        """The cache file's content."""
        return {
            "version": CACHE_VERSION,
            "fetched_at": self.fetched_at,
            "server": self.server,
            "processes": self.processes,
            "levels": self.levels,
            "product_groups": self.product_groups,
        }

    @classmethod
    def from_json(cls, data: Any) -> ReferenceCache:
        """Parse a cache file's content; ``ValueError`` if it is not one we wrote."""
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            raise ValueError(f"not a version-{CACHE_VERSION} reference cache")
        lists = {key: data.get(key) for key in ("processes", "levels", "product_groups")}
        for key, value in lists.items():
            if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
                raise ValueError(f"{key}: expected a list of objects")
        return cls(
            processes=lists["processes"],  # type: ignore[arg-type]
            levels=lists["levels"],  # type: ignore[arg-type]
            product_groups=lists["product_groups"],  # type: ignore[arg-type]
            fetched_at=float(data.get("fetched_at") or 0.0),
            server=str(data.get("server") or ""),
        )

    def lookup(self, kind: str, code: int | None, name: str | None) -> dict[str, Any] | None:
        """The item of ``kind`` with ``code``, or named ``name`` (case and outer spaces ignored)."""
        key, code_field, name_field = _KINDS[kind]
        items: list[dict[str, Any]] = getattr(self, key)
        if code is not None:
            return next((i for i in items if i.get(code_field) == code), None)
        wanted = (name or "").strip().casefold()
        return next(
            (i for i in items if str(i.get(name_field, "")).strip().casefold() == wanted), None
        )


class SyncWorker(Worker):
    """Keeps ``reference.json`` fresh and answers lookups from memory (loaded from it)."""

    target: ServerTarget
    client: WatsClient

    def setup(self) -> None:
        """Load the cache, then sync now, every interval and whenever the server comes back."""
        self.interval = float(self.config.sync.interval_seconds)
        self.cache_file = InstancePaths.for_config(self.config).cache_dir / CACHE_FILE
        self.target = resolve_server(self.config)
        # The client retries transient failures itself; the timeout bounds each attempt.
        self.client = make_client(
            self.target, float(self.config.sync.timeout_seconds), retry=RetryPolicy(max_attempts=2)
        )
        self.data: ReferenceCache | None = None
        self.source: str | None = None  # "server" or "cache": where self.data came from
        self.syncs = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_attempt: float | None = None
        self._in_flight = False
        self._again = False  # a sync was asked for while one was running
        self._online: bool | None = None
        self._fetch_lock = threading.Lock()
        self._load_cache()
        self.subscribe(topics.CONNECTION_STATUS, self._on_connection_status)
        # The embedded server is a sibling worker starting at the same moment: syncing at once
        # would fail (and say so) every start. Its first ONLINE from health syncs instead; the
        # delayed first tick covers an instance without a health worker.
        first = EMBEDDED_FIRST_SYNC_SECONDS if self.config.server.uses_embedded else 0.0
        self.every(self.interval, self.sync, first=min(first, self.interval))
        self.ready = True

    def teardown(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    def heartbeat_detail(self) -> dict[str, Any]:
        """Where the data in use came from and how much of it there is."""
        return {"source": self.source, **(self.data.counts() if self.data else {})}

    # ---- cache ----------------------------------------------------------------------------

    def _load_cache(self) -> None:
        try:
            raw = self.cache_file.read_bytes()
        except FileNotFoundError:
            self.log.info("no reference cache yet", file=str(self.cache_file))
            return
        try:
            self.data = ReferenceCache.from_json(json.loads(raw))
        except ValueError as exc:  # JSONDecodeError is a ValueError
            self.log.warning(
                "reference cache unreadable; ignored", file=str(self.cache_file), error=str(exc)
            )
            return
        self.source = "cache"
        self.log.info("reference cache loaded", file=str(self.cache_file), **self.data.counts())
        self.publish(topics.SYNC_COMPLETED, {**self.data.counts(), "source": "cache"})

    # ---- syncing ----------------------------------------------------------------------------

    def sync(self) -> bool:
        """Start a sync unless one is running (then one more runs after it); True if started."""
        if self._in_flight:
            self._again = True
            return False
        self._in_flight = True
        self.run_in_thread(self._fetch_and_store, self._on_synced, name="sync")
        return True

    def _fetch_and_store(self) -> ReferenceCache:
        """Blocking: fetch all three lists, then write the cache (runs in a thread)."""
        with self._fetch_lock:
            processes = self.client.process.get_processes(
                include_test_operations=True,
                include_repair_operations=True,
                include_wip_operations=True,
                include_inactive_processes=True,
            )
            levels = self.client.process.get_levels()
            groups = self.client.process.get_product_groups()
            fresh = ReferenceCache(
                processes=[p.model_dump(by_alias=True, mode="json") for p in processes],
                levels=[lv.model_dump(by_alias=True, mode="json") for lv in levels],
                product_groups=[g.model_dump(by_alias=True, mode="json") for g in groups],
                fetched_at=time.time(),
                server=self.target.url,
            )
            atomic_write(self.cache_file, json.dumps(fresh.to_json(), indent=1).encode())
            return fresh

    def _on_synced(self, fresh: ReferenceCache | None, error: BaseException | None) -> None:
        self._in_flight = False
        self._apply(fresh, error)
        if self._again and not self.stopping:
            self._again = False
            self.sync()

    def _apply(self, fresh: ReferenceCache | None, error: BaseException | None) -> None:
        self.tick()
        self.last_attempt = time.time()
        if error is None and fresh is not None:
            self.data, self.source = fresh, "server"
            self.syncs += 1
            self.last_error = None
            self.log.info("reference data synced", **fresh.counts())
            self.publish(topics.SYNC_COMPLETED, {**fresh.counts(), "source": "server"})
        else:
            self.failures += 1
            self.last_error = describe_error(error) if error else "no data"
            self.log.warning("reference data sync failed; keeping the cache", error=self.last_error)
            self.publish(topics.SYNC_FAILED, {"error": self.last_error})

    def _on_connection_status(self, env: Envelope, body: Any) -> None:
        online = getattr(body, "status", None) == "ONLINE"
        came_back = online and self._online is not True
        self._online = online
        if came_back:
            self.log.info("server is online; syncing")
            self.sync()

    # ---- commands -------------------------------------------------------------------------

    @handles("sync.now")
    def sync_now(self, args: dict[str, Any]) -> Later:
        """Fetch now; the reply has the counts, or the error if the server cannot be reached."""

        def then(fresh: ReferenceCache | None, error: BaseException | None) -> dict[str, Any]:
            self._apply(fresh, error)
            if error is not None or fresh is None:
                raise ControlError("sync_failed", self.last_error or "no data")
            return {**fresh.counts(), "source": "server", "fetched_at": fresh.fetched_at}

        return self.later(self._fetch_and_store, then)

    @handles("sync.lookup")
    def lookup(self, args: dict[str, Any]) -> dict[str, Any]:
        """One process (or level, product group) by ``code`` or ``name``, from memory."""
        kind = str(args.get("kind", "process"))
        if kind not in _KINDS:
            raise ControlError("bad_request", f"kind must be one of {', '.join(_KINDS)}")
        code, name = args.get("code"), args.get("name")
        if (code is None) == (name is None):
            raise ControlError("bad_request", "give exactly one of 'code' or 'name'")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise ControlError("bad_request", f"code must be an integer, got {code!r}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ControlError("bad_request", "name must be a non-empty string")
        if self.data is None:
            raise ControlError(
                "no_data",
                f"no reference data yet: the server was not reached and {self.cache_file} "
                "does not exist",
            )
        item = self.data.lookup(kind, code, name)
        if item is None:
            wanted = f"code {code}" if code is not None else f"name {name!r}"
            raise ControlError("not_found", f"no {kind} with {wanted}")
        return {
            "kind": kind,
            "item": item,
            "source": self.source,
            "fetched_at": self.data.fetched_at,
        }

    @handles("sync.status")
    def status(self, args: dict[str, Any]) -> dict[str, Any]:
        """What is cached, from where, and how syncing went."""
        return {
            "source": self.source,
            "counts": self.data.counts() if self.data else None,
            "fetched_at": self.data.fetched_at if self.data else None,
            "cache_file": str(self.cache_file),
            "server": self.target.url,
            "interval_seconds": self.interval,
            "syncs": self.syncs,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_attempt": self.last_attempt,
            "in_flight": self._in_flight,
        }
