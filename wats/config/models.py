"""The station client's configuration: one pydantic model per TOML table.

Every section forbids unknown keys, so a typo (``intervall_seconds``) is an error that names the
key rather than a setting silently ignored. Defaults here are the documented defaults
(docs/configuration.md); ``configs/station.toml`` shows them in a file.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wats.config.builtins import BUILTIN_CONVERTERS
from wats.config.cron import check_cron

if TYPE_CHECKING:
    from wats.api.station import Station

__all__ = [
    "DEFAULT_WORKERS",
    "BusSection",
    "ClientConfig",
    "ConverterConfig",
    "CredentialsSection",
    "EmbeddedServerSection",
    "HealthSection",
    "IdConflictPolicy",
    "InstanceSection",
    "LoggingSection",
    "PathsSection",
    "QueueSection",
    "ServerSection",
    "StationPreset",
    "StationSection",
    "SupervisorSection",
    "SyncSection",
    "WorkerSpec",
    "check_cron",
]

_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_WORKER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InstanceSection(_Section):
    """Which instance this is; several instances on one machine keep separate data and locks."""

    name: str = "default"

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, value: str) -> str:
        if not _INSTANCE_NAME.match(value):
            raise ValueError(
                "must be 1-64 characters of letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value


class EmbeddedServerSection(_Section):
    """Where the embedded WATS-compatible server listens when no server URL is configured."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: str = ""  # empty: <instance data>/server


class ServerSection(_Section):
    """The WATS server to deliver to, and the name of the env var that holds its API token.

    The token itself never goes in the file: config files are copied, mailed and committed.
    """

    url: str = ""  # empty: run the embedded server
    token_env: str = "WATS_TOKEN"
    ca_bundle: str = ""  # a PEM file of CA certificates for a private CA; empty: the usual CAs
    embedded: EmbeddedServerSection = Field(default_factory=EmbeddedServerSection)

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL, or empty for the embedded server")
        return value.rstrip("/")

    @field_validator("token_env")
    @classmethod
    def _token_env_is_a_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (e.g. WATS_TOKEN), not the token"
            )
        return value

    @property
    def uses_embedded(self) -> bool:
        """True when no URL is configured, so the supervisor runs the embedded server."""
        return not self.url

    def effective_url(self) -> str:
        """The configured URL, or the embedded server's address when none is configured."""
        if self.url:
            return self.url
        host = self.embedded.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.embedded.port}"

    def token_from_env(self) -> str | None:
        """The token from the environment variable named by ``token_env`` (None if unset/empty)."""
        return os.environ.get(self.token_env) or None


class StationSection(_Section):
    """The station identity written on every report (machineName, location, purpose)."""

    name_source: Literal["hostname", "config"] = "hostname"
    name: str = Field(default="", max_length=100, validate_default=True)
    location: str = Field(default="Unknown", min_length=1, max_length=100)
    purpose: str = Field(default="Development", min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _config_source_needs_a_name(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("name_source") == "config" and not value.strip():
            raise ValueError('must be set when name_source = "config"')
        return value

    def resolved_name(self) -> str:
        """The station name reports carry: ``name`` from the file, or this machine's host name."""
        if self.name_source == "config":
            return self.name.strip()
        return (socket.gethostname() or "localhost")[:100]


class HealthSection(_Section):
    """How often the health worker asks the server whether it is there."""

    interval_seconds: float = Field(default=30.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)


class SyncSection(_Section):
    """How often the sync worker refreshes the reference-data cache."""

    interval_seconds: float = Field(default=300.0, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)


class SupervisorSection(_Section):
    """The supervision policy: heartbeats, stop grace, restart backoff, flapping breaker."""

    heartbeat_interval_seconds: float = Field(default=1.0, gt=0)
    heartbeat_misses: int = Field(default=3, ge=1)
    heartbeat_grace_seconds: float = Field(default=0.4, ge=0)
    stop_grace_seconds: float = Field(default=5.0, ge=0)
    backoff_first_seconds: float = Field(default=0.0, ge=0)
    backoff_base_seconds: float = Field(default=0.1, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    backoff_reset_after_seconds: float = Field(default=60.0, gt=0)
    flap_max_restarts: int = Field(default=10, ge=1)
    flap_window_seconds: float = Field(default=60.0, gt=0)
    flap_cooldown_seconds: float = Field(default=300.0, ge=0)
    start_failure_limit: int = Field(default=3, ge=1)
    orphan_timeout_seconds: float = Field(default=2.0, gt=0)
    request_timeout_seconds: float = Field(default=5.0, gt=0)
    startup_timeout_seconds: float = Field(default=10.0, gt=0)
    warm_spare_seconds: float = Field(default=300.0, ge=0)

    @field_validator("backoff_max_seconds")
    @classmethod
    def _backoff_max_covers_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("backoff_base_seconds")
        if base is not None and value < base:
            raise ValueError("must be at least backoff_base_seconds")
        return value

    @field_validator("orphan_timeout_seconds")
    @classmethod
    def _orphan_timeout_exceeds_heartbeat(cls, value: float, info: ValidationInfo) -> float:
        # Workers count the supervisor dead after this much heartbeat silence: at or below one
        # interval, every healthy worker would exit as an orphan over and over.
        interval = info.data.get("heartbeat_interval_seconds")
        if interval is not None and value <= interval:
            raise ValueError("must be greater than heartbeat_interval_seconds")
        return value


class WorkerSpec(_Section):
    """One supervised worker: the class to run, its role in the stop order, its arguments."""

    enabled: bool = True
    target: str
    role: Literal["producer", "consumer", "service"] = "service"
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("target")
    @classmethod
    def _target_is_module_colon_class(cls, value: str) -> str:
        if not _TARGET.match(value):
            raise ValueError('must be "package.module:ClassName"')
        return value


DEFAULT_WORKERS: dict[str, WorkerSpec] = {
    "health": WorkerSpec(target="wats.workers.health:HealthWorker", role="service"),
    "sync": WorkerSpec(target="wats.workers.sync:SyncWorker", role="service"),
    "server": WorkerSpec(target="wats.workers.server:ServerWorker", role="service"),
    # The report pipeline (docs/pipeline.md). Roles order the stop: the watcher stops taking
    # files first, then the converter and uploader finish what they hold.
    "watcher": WorkerSpec(target="wats.workers.watcher:WatcherWorker", role="producer"),
    "converter": WorkerSpec(target="wats.workers.converter:ConverterWorker", role="consumer"),
    "uploader": WorkerSpec(target="wats.workers.uploader:UploaderWorker", role="consumer"),
}

_NEEDS_CONVERTERS = ("watcher", "converter")


# -- converters and hub-mode stations -------------------------------------------------------------

_CONVERTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_BARE_NAME_RE = r"[A-Za-z_][\w-]*"  # a built-in's short name (teststand-xml)
_BARE_NAME = re.compile(f"^{_BARE_NAME_RE}$")
_CONVERTER_SPEC = re.compile(
    rf"^({_BARE_NAME_RE}"  # built-in short name
    r"|[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*"  # package.module:Class
    r"|.+\.[pP][yY](:[A-Za-z_]\w*)?)$"  # file.py or file.py:Class
)


class IdConflictPolicy(StrEnum):
    """What the converter worker does with a report whose own id is already queued or
    delivered with other content (a station program that never renews its template's id)."""

    NEW_ID = "new-id"  # deliver it under its derived id; publish report.id_conflict
    REFUSE = "refuse"  # the whole file goes to error/ (reason id_conflict), nothing queued


class StationPreset(_Section):
    """A station a hub speaks for (``[stations.NAME]``); converters name it in ``station``.

    Empty fields fall back: ``name`` to the table's key, ``location`` and ``purpose`` to the
    ``[station]`` section, so a preset only spells out what differs.
    """

    name: str = Field(default="", max_length=100)
    location: str = Field(default="", max_length=100)
    purpose: str = Field(default="", max_length=100)
    override_file_station: bool = False
    """Stamp this preset's identity on its converters' reports even where the file names a
    station of its own (for stations whose files carry a meaningless one)."""


class ConverterConfig(_Section):
    """One ``[[converters]]`` entry: which converter reads which folder, and what happens to
    the files. Folder defaults live under ``<instance data>/converters/<name>/``
    (see ``wats.config.folders.converter_folders``)."""

    name: str
    enabled: bool = True
    converter: str = Field(min_length=1)
    watch_folder: str = Field(min_length=1)
    # False: a missing watch folder stops `start` (a mistyped share must not become a local
    # folder no station writes to); True: create it (and keep creating it) where it is missing.
    create_watch_folder: bool = False
    pending_folder: str = ""
    done_folder: str = ""
    error_folder: str = ""
    kind: Literal["file", "folder", "scheduled"] | None = None  # None: the converter's own
    file_patterns: list[str] | None = None  # None: the converter's own
    folder_patterns: list[str] = Field(default_factory=list)
    recursive: bool = False
    readiness_marker: str = "COMPLETE.marker"
    min_file_count: int = Field(default=0, ge=0)
    alarm_threshold: float = Field(default=0.5, ge=0, le=1)
    reject_threshold: float = Field(default=0.2, ge=0, le=1)
    max_retries: int = Field(default=3, ge=1)  # sandbox deaths on one file (wats.workers.attempts)
    max_worker_deaths: int = Field(default=10, ge=1)  # worker/fork-server deaths with it in hand
    retry_delay_seconds: float = Field(default=30.0, ge=0)
    schedule_interval_seconds: float | None = Field(default=None, gt=0)
    cron: str | None = None
    run_on_startup: bool = False
    post_action: Literal["move", "delete", "archive", "keep"] = "move"
    archive_folder: str = Field(default="", validate_default=True)
    arguments: dict[str, Any] = Field(default_factory=dict)
    station: str = ""  # a [stations.NAME] preset; empty: the [station] section
    # None: the preset's setting (False without one). True: the configured identity wins over
    # the station the file records; False: the file's wins, configuration fills the blanks.
    override_file_station: bool | None = None
    # A report whose own id (WSJF, WSXF, ATML) is already queued or delivered with other content:
    # "new-id" delivers it under its derived id (and says so), "refuse" sends the file to error/.
    on_id_conflict: IdConflictPolicy = IdConflictPolicy.NEW_ID

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, value: str) -> str:
        if not _CONVERTER_NAME.match(value):
            raise ValueError(
                "must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a "
                "letter or digit (it names the converter's folders and its report ids)"
            )
        return value

    @field_validator("converter")
    @classmethod
    def _converter_is_a_spec(cls, value: str) -> str:
        value = value.strip()
        known = ", ".join(BUILTIN_CONVERTERS)
        if not _CONVERTER_SPEC.match(value):
            raise ValueError(
                f"must be a built-in name ({known}), an import path "
                "'package.module:ClassName', or a Python file 'name.py[:ClassName]'"
            )
        if _BARE_NAME.match(value) and value.lower() not in BUILTIN_CONVERTERS:
            # A bare word can only be a built-in: an import path has a ':' and a file a '.py'.
            guess = difflib.get_close_matches(value.lower(), list(BUILTIN_CONVERTERS), n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            raise ValueError(
                f"{value!r} is not a built-in converter; {hint}built-ins: {known} (a site's own "
                "converter is 'package.module:ClassName' or 'name.py[:ClassName]')"
            )
        return value

    @field_validator("file_patterns", "folder_patterns")
    @classmethod
    def _patterns_are_not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not p.strip() for p in value):
            raise ValueError("patterns must not be empty strings")
        return value

    @field_validator("readiness_marker")
    @classmethod
    def _marker_is_a_file_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or value in (".", ".."):
            raise ValueError("must be a file name (no folder separators), or empty")
        return value

    @field_validator("reject_threshold")
    @classmethod
    def _reject_not_above_alarm(cls, value: float, info: ValidationInfo) -> float:
        alarm = info.data.get("alarm_threshold")
        if alarm is not None and value > alarm:
            raise ValueError("must not be above alarm_threshold")
        return value

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("schedule_interval_seconds") is not None:
            raise ValueError("set either cron or schedule_interval_seconds, not both")
        return check_cron(value)

    @field_validator("archive_folder")
    @classmethod
    def _archive_needs_a_folder(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("post_action") == "archive" and not value.strip():
            raise ValueError('must be set when post_action = "archive"')
        return value

    @field_validator("station")
    @classmethod
    def _station_is_stripped(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _scheduled_needs_a_schedule(self) -> ConverterConfig:
        if self.kind == "scheduled" and self.schedule_interval_seconds is None and not self.cron:
            raise ValueError(
                f'converter {self.name!r}: kind = "scheduled" needs schedule_interval_seconds '
                "or cron"
            )
        return self


class LoggingSection(_Section):
    """Log level and the JSON-lines log file of the supervisor."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    file: str = ""  # empty: <instance logs>/supervisor.jsonl

    @field_validator("level", mode="before")
    @classmethod
    def _level_is_case_insensitive(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class PathsSection(_Section):
    """Overrides of the per-instance folders (empty = the platform default)."""

    data_dir: str = ""
    runtime_dir: str = ""
    converters_dir: str = ""  # empty: <instance data>/site-converters (a site's converter files)


class QueueSection(_Section):
    """The durable report queue: where it lives, what it keeps, how uploads are retried.

    ``keep_completed = false`` deletes a report once the server has it; otherwise completed
    reports are kept (as a local record) until either retention limit removes them (0 = no limit).
    """

    folder: str = ""  # empty: <instance data>/queue
    keep_completed: bool = True
    completed_max_count: int = Field(default=10000, ge=0)
    completed_max_age_days: float = Field(default=30.0, ge=0)
    max_in_flight: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=50, ge=1)
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    rescan_seconds: float = Field(default=30.0, gt=0)

    @field_validator("retry_max_seconds")
    @classmethod
    def _retry_max_covers_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("retry_base_seconds")
        if base is not None and value < base:
            raise ValueError("must be at least retry_base_seconds")
        return value


class BusSection(_Section):
    """Remote access to the bus (hubs), and where the CurveZMQ keys are; see docs/bus.md.

    Local processes always meet on the private runtime dir (ipc://, or tcp://127.0.0.1); this
    section only adds network listeners for monitors on other machines, and the client side of
    attaching to such a hub.
    """

    listen_host: str = ""  # empty: no network listener
    events_port: int = Field(default=7700, ge=0, le=65535)  # 0: an ephemeral port (tests)
    control_port: int = Field(default=7701, ge=0, le=65535)
    key_dir: str = ""  # empty: <instance data>/bus-keys
    server_key: str = ""  # the hub's .key_secret file; required when listen_host is not loopback
    authorized_keys: str = ""  # empty: <key_dir>/authorized
    hub: str = ""  # on a watching machine: host of the hub that `events`/`monitor` attach to
    hub_public_key: str = ""  # the hub's server .key file
    client_key: str = ""  # this machine's .key_secret file; empty: <key_dir>/client.key_secret

    @field_validator("listen_host", "hub")
    @classmethod
    def _host_is_bare(cls, value: str) -> str:
        value = value.strip()
        if "://" in value or "/" in value:
            raise ValueError('a host name or address only, e.g. "0.0.0.0" (ports are separate)')
        return value

    @model_validator(mode="after")
    def _network_listener_needs_a_key(self) -> BusSection:
        from wats.protocol.security import is_loopback_host

        if self.listen_host and not is_loopback_host(self.listen_host) and not self.server_key:
            raise ValueError(
                f"listen_host {self.listen_host!r} is not a loopback address, so the bus must use "
                "CurveZMQ: set server_key to the hub's secret key file (make one with "
                "`wats-supervisor keys generate --name server`)"
            )
        if self.listen_host and self.events_port and self.events_port == self.control_port:
            raise ValueError("events_port and control_port must differ")
        if self.hub and not self.hub_public_key:
            raise ValueError(
                "hub is set: set hub_public_key to the hub's server .key file (copy it from the "
                "hub's key folder)"
            )
        return self


class CredentialsSection(_Section):
    """No settings yet: the encrypted token lives in ``<instance data>/credentials/`` (written by
    ``wats-supervisor login``, see ``wats.credentials``), never in the config file. Kept so a
    future setting has its table; any key in it today is an unknown-key error."""


class ClientConfig(_Section):
    """The whole station-client configuration, as read from one TOML file."""

    instance: InstanceSection = Field(default_factory=InstanceSection)
    server: ServerSection = Field(default_factory=ServerSection)
    station: StationSection = Field(default_factory=StationSection)
    stations: dict[str, StationPreset] = Field(default_factory=dict)
    health: HealthSection = Field(default_factory=HealthSection)
    sync: SyncSection = Field(default_factory=SyncSection)
    supervisor: SupervisorSection = Field(default_factory=SupervisorSection)
    workers: dict[str, WorkerSpec] = Field(
        default_factory=lambda: {k: v.model_copy() for k, v in DEFAULT_WORKERS.items()}
    )
    logging: LoggingSection = Field(default_factory=LoggingSection)
    paths: PathsSection = Field(default_factory=PathsSection)
    converters: list[ConverterConfig] = Field(default_factory=list)
    queue: QueueSection = Field(default_factory=QueueSection)
    credentials: CredentialsSection = Field(default_factory=CredentialsSection)
    bus: BusSection = Field(default_factory=BusSection)

    @field_validator("workers", mode="before")
    @classmethod
    def _merge_with_default_workers(cls, value: object) -> object:
        """Tables in the file override or extend the built-in workers rather than replace them.

        ``[workers.sync] enabled = false`` turns one off; ``[workers.crashy] target = ...`` adds
        one; a built-in worker's target is kept unless the file names another.
        """
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {name: spec.model_dump() for name, spec in DEFAULT_WORKERS.items()}
        for name, given in value.items():
            if isinstance(given, WorkerSpec):
                given = given.model_dump()
            if name in merged and isinstance(given, dict):
                merged[name] = {**merged[name], **given}
            else:
                merged[name] = given
        return merged

    @field_validator("workers")
    @classmethod
    def _worker_names_are_simple(cls, value: dict[str, WorkerSpec]) -> dict[str, WorkerSpec]:
        for name in value:
            if not _WORKER_NAME.match(name):
                raise ValueError(
                    f"worker name {name!r} must be 1-32 characters of a-z, 0-9, '_' or '-', "
                    "starting with a letter"
                )
        return value

    @field_validator("stations")
    @classmethod
    def _station_keys_are_simple(cls, value: dict[str, StationPreset]) -> dict[str, StationPreset]:
        for key in value:
            if not _CONVERTER_NAME.match(key):
                raise ValueError(
                    f"station preset name {key!r} must be 1-64 characters of letters, digits, "
                    "'.', '_' or '-', starting with a letter or digit"
                )
        return value

    @field_validator("converters")
    @classmethod
    def _converters_are_unique_and_name_known_stations(
        cls, value: list[ConverterConfig], info: ValidationInfo
    ) -> list[ConverterConfig]:
        seen: set[str] = set()
        for conv in value:
            # Names become folder names: two that differ only in case collide on Windows/macOS.
            folded = conv.name.casefold()
            if folded in seen:
                raise ValueError(
                    f"converter name {conv.name!r} is used twice (names are compared "
                    "ignoring case, as they name folders); names must be unique"
                )
            seen.add(folded)
        stations: dict[str, StationPreset] = info.data.get("stations") or {}
        for conv in value:
            if conv.station and conv.station not in stations:
                known = ", ".join(repr(k) for k in stations) or "none defined"
                raise ValueError(
                    f"converter {conv.name!r}: station {conv.station!r} is not a "
                    f"[stations.NAME] preset (known: {known})"
                )
        return value

    def station_for(self, converter: ConverterConfig | None = None) -> Station:
        """The identity stamped on reports of ``converter``: its ``[stations.NAME]`` preset
        (blanks filled from ``[station]``), or the ``[station]`` section when it names none."""
        from wats.api.station import Station

        base = Station(
            name=self.station.resolved_name(),
            location=self.station.location,
            purpose=self.station.purpose,
        )
        if converter is None or not converter.station:
            return base
        preset = self.stations[converter.station]
        return Station(
            name=preset.name.strip() or converter.station,
            location=preset.location.strip() or base.location,
            purpose=preset.purpose.strip() or base.purpose,
        )

    def overrides_file_station(self, converter: ConverterConfig) -> bool:
        """Whether ``converter``'s reports carry the configured identity even where the file
        names a station: its own setting, else its preset's, else False (the file wins)."""
        if converter.override_file_station is not None:
            return converter.override_file_station
        preset = self.stations.get(converter.station) if converter.station else None
        return bool(preset and preset.override_file_station)

    def converter(self, name: str) -> ConverterConfig:
        """The ``[[converters]]`` entry called ``name``; ``KeyError`` naming the known ones."""
        for conv in self.converters:
            if conv.name == name:
                return conv
        known = ", ".join(repr(c.name) for c in self.converters) or "none configured"
        raise KeyError(f"no converter named {name!r} (known: {known})")

    def enabled_workers(self) -> dict[str, WorkerSpec]:
        """The workers the supervisor should run, in file order.

        The ``server`` worker runs only when no server URL is configured: with a real WATS
        server there is nothing to embed. The ``watcher`` and ``converter`` workers run only
        when at least one converter is enabled: with none there is nothing to watch. The
        ``uploader`` always runs, so reports already queued are delivered even then.
        """
        has_converters = any(conv.enabled for conv in self.converters)
        return {
            name: spec
            for name, spec in self.workers.items()
            if spec.enabled
            and not (name == "server" and not self.server.uses_embedded)
            and not (name in _NEEDS_CONVERTERS and not has_converters)
        }
