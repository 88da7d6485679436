"""The station client's configuration: one pydantic model per TOML table.

Every section forbids unknown keys, so a typo (``intervall_seconds``) is an error that names the
key rather than a setting silently ignored. Defaults here are the documented defaults
(docs/configuration.md); ``configs/station.toml`` shows them in a file.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = [
    "DEFAULT_WORKERS",
    "ClientConfig",
    "CredentialsSection",
    "EmbeddedServerSection",
    "HealthSection",
    "InstanceSection",
    "LoggingSection",
    "PathsSection",
    "QueueSection",
    "ServerSection",
    "StationSection",
    "SupervisorSection",
    "SyncSection",
    "WorkerSpec",
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
}


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


class QueueSection(_Section):
    """Reserved for the durable report queue (a later issue); must stay empty for now."""


class CredentialsSection(_Section):
    """Reserved for the encrypted token store (a later issue); must stay empty for now."""


class ClientConfig(_Section):
    """The whole station-client configuration, as read from one TOML file."""

    instance: InstanceSection = Field(default_factory=InstanceSection)
    server: ServerSection = Field(default_factory=ServerSection)
    station: StationSection = Field(default_factory=StationSection)
    health: HealthSection = Field(default_factory=HealthSection)
    sync: SyncSection = Field(default_factory=SyncSection)
    supervisor: SupervisorSection = Field(default_factory=SupervisorSection)
    workers: dict[str, WorkerSpec] = Field(
        default_factory=lambda: {k: v.model_copy() for k, v in DEFAULT_WORKERS.items()}
    )
    logging: LoggingSection = Field(default_factory=LoggingSection)
    paths: PathsSection = Field(default_factory=PathsSection)
    converters: list[dict[str, Any]] = Field(default_factory=list)
    queue: QueueSection = Field(default_factory=QueueSection)
    credentials: CredentialsSection = Field(default_factory=CredentialsSection)

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

    def enabled_workers(self) -> dict[str, WorkerSpec]:
        """The workers the supervisor should run, in file order.

        The ``server`` worker runs only when no server URL is configured: with a real WATS
        server there is nothing to embed.
        """
        return {
            name: spec
            for name, spec in self.workers.items()
            if spec.enabled and not (name == "server" and not self.server.uses_embedded)
        }
