"""Configuration: pydantic models, TOML loading with readable errors, per-instance paths.

``load_config`` finds and validates the file; ``InstancePaths.for_config`` says where the
instance keeps its data, logs, lock and sockets. See docs/configuration.md.
"""

from __future__ import annotations

from wats.config.folders import ConverterFolders, converter_folders, site_converters_dir
from wats.config.load import (
    CONFIG_ENV,
    ConfigError,
    config_to_toml,
    converter_field,
    dump_runtime_config,
    find_config_path,
    load_config,
    load_runtime_config,
    parse_config,
    render_default_config,
)
from wats.config.models import (
    DEFAULT_WORKERS,
    ClientConfig,
    ConverterConfig,
    EmbeddedServerSection,
    HealthSection,
    InstanceSection,
    LoggingSection,
    PathsSection,
    ServerSection,
    StationPreset,
    StationSection,
    SupervisorSection,
    SyncSection,
    WorkerSpec,
)
from wats.config.paths import InstancePaths, default_config_path, instances_root

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_WORKERS",
    "ClientConfig",
    "ConfigError",
    "ConverterConfig",
    "ConverterFolders",
    "EmbeddedServerSection",
    "HealthSection",
    "InstancePaths",
    "InstanceSection",
    "LoggingSection",
    "PathsSection",
    "ServerSection",
    "StationPreset",
    "StationSection",
    "SupervisorSection",
    "SyncSection",
    "WorkerSpec",
    "config_to_toml",
    "converter_field",
    "converter_folders",
    "default_config_path",
    "dump_runtime_config",
    "find_config_path",
    "instances_root",
    "load_config",
    "load_runtime_config",
    "parse_config",
    "render_default_config",
    "site_converters_dir",
]
