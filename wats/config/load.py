"""Reading, checking and writing configuration files.

Which file: an explicit path, else ``$WATS_SUPERVISOR_CONFIG``, else the per-user default path;
when none of these names an existing file the built-in defaults apply (so a fresh machine runs
with the embedded server and no setup). An explicitly named file that is missing is an error.
Errors name the file and the dotted field, one line per problem, so they can be fixed without
reading a stack trace.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from wats.config.models import ClientConfig
from wats.config.paths import default_config_path
from wats.config.template import DEFAULT_CONFIG_TEMPLATE
from wats.fsutil import atomic_write

__all__ = [
    "CONFIG_ENV",
    "ConfigError",
    "config_to_toml",
    "converter_field",
    "dump_runtime_config",
    "find_config_path",
    "load_config",
    "load_runtime_config",
    "parse_config",
    "render_default_config",
]

CONFIG_ENV = "WATS_SUPERVISOR_CONFIG"


class ConfigError(ValueError):
    """A configuration that cannot be used; ``str()`` is ready to show a user.

    ``problems`` holds one ``"<dotted.field>: <what is wrong>"`` line per problem; the message
    prefixes each with the file name.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def find_config_path(path: Path | None = None) -> tuple[Path | None, bool]:
    """The config file to read and whether it was asked for explicitly (path or env var).

    Returns ``(None, False)`` when there is no explicit choice and no default file.
    """
    if path is not None:
        return Path(path).expanduser(), True
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env).expanduser(), True
    default = default_config_path()
    return (default, False) if default.is_file() else (None, False)


def load_config(
    path: Path | None = None, instance: str | None = None
) -> tuple[ClientConfig, Path | None]:
    """Load and validate the configuration; ``instance`` (``--instance``) overrides the file's.

    Returns the config and the file it came from (None = built-in defaults). Relative paths in
    the file (``[paths]``, ``[logging] file``, ``[server.embedded] data_dir``) are resolved
    against the file's folder, so workers with another working directory agree on them.
    Raises ``ConfigError`` for a missing, unreadable, malformed or invalid file.
    """
    chosen, _explicit = find_config_path(path)
    if chosen is None:
        data: dict[str, Any] = {}
        source = "(built-in defaults)"
    else:
        source = str(chosen)
        try:
            text = chosen.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(source, ["file not found"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(source, [f"cannot read: {exc}"]) from None
        data = _parse_toml(text, source)
    if instance is not None:
        section = data.setdefault("instance", {})
        if isinstance(section, dict):
            section["name"] = instance
    cfg = parse_config(data, source)
    if chosen is not None:
        cfg = _resolve_relative_paths(cfg, chosen.resolve().parent)
    bundle = cfg.server.ca_bundle
    if bundle and not Path(bundle).is_file():
        raise ConfigError(source, [f"server.ca_bundle: no such file {bundle!r} (a PEM of CAs)"])
    return cfg, chosen


def parse_config(data: dict[str, Any], source: str = "(config)") -> ClientConfig:
    """Validate already-parsed TOML data, turning pydantic errors into a ``ConfigError``."""
    try:
        return ClientConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _describe(exc, data)) from None


def render_default_config() -> str:
    """A commented TOML file of every setting at its default: what ``config init`` writes."""
    return DEFAULT_CONFIG_TEMPLATE


def config_to_toml(cfg: ClientConfig) -> str:
    """``cfg`` as TOML that loads back to an equal config (what ``config show`` prints).

    Written by hand: the structure is a few flat tables, not worth a TOML-writing dependency.
    """
    data = cfg.model_dump(mode="json")
    lines: list[str] = []
    for section in ("instance", "server", "station", "health", "sync", "supervisor"):
        _emit_table(lines, [section], data[section])
    for name, preset in data["stations"].items():
        _emit_table(lines, ["stations", name], preset)
    for name, spec in data["workers"].items():
        _emit_table(lines, ["workers", name], spec)
    for section in ("logging", "paths", "queue", "credentials"):
        _emit_table(lines, [section], data[section])
    for converter in data["converters"]:
        lines.append("")
        lines.append("[[converters]]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in converter.items() if v is not None)
    return "\n".join(lines).lstrip("\n") + "\n"


def dump_runtime_config(cfg: ClientConfig, path: Path) -> None:
    """Write the effective config as JSON (atomically, mode 0600) for workers to read.

    The supervisor resolves ``--instance``, env and paths once; workers load this dump rather
    than re-resolving, so every process runs with exactly the same settings.
    """
    payload = json.dumps(cfg.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    atomic_write(path, payload.encode("utf-8"), mode=0o600)


def load_runtime_config(path: Path) -> ClientConfig:
    """Read a config written by ``dump_runtime_config``; ``ConfigError`` if it is unusable."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(source, [f"cannot read: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, ["not a JSON object"])
    return parse_config(data, source)


# -- helpers -------------------------------------------------------------------------------------


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"invalid TOML: {exc}"]) from None


def _resolve_relative_paths(cfg: ClientConfig, base: Path) -> ClientConfig:
    def resolved(value: str) -> str:
        if not value:
            return value
        candidate = Path(value).expanduser()
        return str(candidate if candidate.is_absolute() else base / candidate)

    paths = cfg.paths.model_copy(
        update={
            "data_dir": resolved(cfg.paths.data_dir),
            "runtime_dir": resolved(cfg.paths.runtime_dir),
        }
    )
    logging = cfg.logging.model_copy(update={"file": resolved(cfg.logging.file)})
    embedded = cfg.server.embedded.model_copy(
        update={"data_dir": resolved(cfg.server.embedded.data_dir)}
    )
    server = cfg.server.model_copy(
        update={"embedded": embedded, "ca_bundle": resolved(cfg.server.ca_bundle)}
    )
    paths = paths.model_copy(update={"converters_dir": resolved(cfg.paths.converters_dir)})
    converters = [
        conv.model_copy(
            update={
                key: resolved(getattr(conv, key))
                for key in (
                    "watch_folder",
                    "pending_folder",
                    "done_folder",
                    "error_folder",
                    "archive_folder",
                )
            }
        )
        for conv in cfg.converters
    ]
    queue = cfg.queue.model_copy(update={"folder": resolved(cfg.queue.folder)})
    bus = cfg.bus.model_copy(
        update={
            key: resolved(getattr(cfg.bus, key))
            for key in ("key_dir", "server_key", "authorized_keys", "hub_public_key", "client_key")
        }
    )
    return cfg.model_copy(
        update={
            "paths": paths,
            "logging": logging,
            "server": server,
            "converters": converters,
            "bus": bus,
            "queue": queue,
        }
    )


def converter_field(index: int, name: object, rest: list[str] | tuple[str, ...] = ()) -> str:
    """How a message names a field of one ``[[converters]]`` table: by the converter's name
    (``[[converters]] "json-results" watch_folder``), else by its place counted from 1
    (``[[converters]] #2 watch_folder``), as the user sees the tables in the file; a bare
    ``converters.0`` made them count from zero."""
    label = f'"{name}"' if isinstance(name, str) and name.strip() else f"#{index + 1}"
    field = ".".join(rest)
    return f"[[converters]] {label}" + (f" {field}" if field else "")


def _where(loc: list[str | int], data: Any) -> str:
    """The dotted field of a pydantic error location, converters named (see converter_field)."""
    if len(loc) >= 2 and loc[0] == "converters" and isinstance(loc[1], int):
        converters = data.get("converters") if isinstance(data, dict) else None
        table = (
            converters[loc[1]]
            if isinstance(converters, list) and 0 <= loc[1] < len(converters)
            else None
        )
        name = table.get("name") if isinstance(table, dict) else None
        return converter_field(loc[1], name, [str(part) for part in loc[2:]])
    return ".".join(str(part) for part in loc) if loc else "(top level)"


def _describe(exc: ValidationError, data: Any = None) -> list[str]:
    """One line per problem. A misspelt key is one problem, not two: its "did you mean" names
    the required key it was meant to be, so that key's "required setting is missing" goes."""
    errors = exc.errors(include_url=False)
    guesses: dict[tuple[Any, ...], str] = {}
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = list(error["loc"])
            guess = _guess(loc)
            if guess:
                guesses[(*loc[:-1], guess)] = str(loc[-1])
    problems = []
    for error in errors:
        loc = list(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = _unknown_key_message(loc)
        elif error["type"] == "missing":
            if tuple(loc) in guesses:
                continue
            message = "required setting is missing"
        problems.append(f"{_where(loc, data)}: {message}")
    return problems


def _guess(loc: list[Any]) -> str | None:
    """The known key closest to the unknown one at ``loc``, if one is close."""
    known = _known_keys(loc[:-1])
    found = difflib.get_close_matches(str(loc[-1]), known, n=1) if known else []
    return found[0] if found else None


def _unknown_key_message(loc: list[Any]) -> str:
    guess = _guess(loc)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return f"unknown setting{hint} (see docs/configuration.md for the valid keys)"


def _known_keys(loc: list[Any]) -> list[str]:
    """Field names of the model at ``loc``, walking sections, the ``[[converters]]`` list (an
    index), and the ``[workers.NAME]`` and ``[stations.NAME]`` tables (a name)."""
    model: type[BaseModel] = ClientConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        origin = get_origin(annotation)
        if origin in (list, dict):
            if not parts:
                return []
            parts.pop(0)  # the list index, or the table's name
            annotation = get_args(annotation)[-1]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return []
    return list(model.model_fields)


def _key(name: str) -> str:
    if name and all(ch.isalnum() or ch in "_-" for ch in name) and name.isascii():
        return name
    return _value(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _emit_table(lines: list[str], path: list[str], data: dict[str, Any]) -> None:
    scalars = {k: v for k, v in data.items() if not _is_subtable(k, v, path)}
    lines.append("")
    lines.append("[" + ".".join(_key(p) for p in path) + "]")
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars.items() if v is not None)
    for key, value in data.items():
        if _is_subtable(key, value, path):
            _emit_table(lines, [*path, key], value)


def _is_subtable(key: str, value: Any, path: list[str]) -> bool:
    # nested sections are tables; free-form dicts (a worker's args) stay inline
    return isinstance(value, dict) and path[0] != "workers"
