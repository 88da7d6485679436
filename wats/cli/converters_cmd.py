"""``wats-supervisor converters list``: which converters exist and which folders they serve.

Configured converters are loaded (built-in, import path or site file) exactly as the converter
worker will load them, so a typo in a spec, a missing package or a syntax error in a site file
shows here - with exit code 1 - before any result file is waiting on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from wats.cli.main import app
from wats.cli.options import ConfigOption, InstanceOption
from wats.config import (
    ClientConfig,
    ConverterConfig,
    converter_folders,
    site_converters_dir,
)
from wats.converters import (
    BUILTIN_CONVERTERS,
    ConverterArgumentsError,
    ConverterBase,
    ConverterLoadError,
    builtin_converters,
    load_converter_class,
)

__all__ = ["converters_app"]

EXIT_CONVERTER_BROKEN = 1

converters_app = typer.Typer(help="List the built-in and configured converters.")
app.add_typer(converters_app, name="converters")


def _source_of(cls: type[ConverterBase]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _builtin_rows() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "converter": cls.name,
            "version": cls.version,
            "kind": cls.kind,
            "file_patterns": list(cls.file_patterns),
            "source": BUILTIN_CONVERTERS[name],
            "description": cls.summary(),
        }
        for name, cls in builtin_converters().items()
    ]


def _configured_row(cfg: ClientConfig, conv: ConverterConfig, code_dir: Path) -> dict[str, Any]:
    folders = converter_folders(cfg, conv)
    station = cfg.station_for(conv)
    row: dict[str, Any] = {
        "name": conv.name,
        "enabled": conv.enabled,
        "converter": conv.converter,
        "kind": conv.kind,
        "file_patterns": conv.file_patterns,
        "watch_folder": str(folders.watch),
        "pending_folder": str(folders.pending),
        "done_folder": str(folders.done),
        "error_folder": str(folders.error),
        "post_action": conv.post_action,
        "station": {"preset": conv.station or None, **station.model_dump()},
        "source": None,
        "version": None,
        "error": None,
    }
    try:
        cls = load_converter_class(conv.converter, code_dir)
        cls.parse_arguments(conv.arguments)
    except (ConverterLoadError, ConverterArgumentsError) as exc:
        row["error"] = str(exc)
        return row
    row.update(
        source=_source_of(cls),
        version=cls.version,
        kind=conv.kind or cls.kind,
        file_patterns=(
            conv.file_patterns if conv.file_patterns is not None else list(cls.file_patterns)
        ),
    )
    return row


@converters_app.command("list")
def list_converters(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List built-in converters and the configured ones (folders, station, patterns).

    Exits with code 1 when a configured converter cannot be loaded or its arguments are wrong.
    """
    from wats.cli.config_cmd import load_config_or_exit

    cfg, _source = load_config_or_exit(config, instance)
    code_dir = site_converters_dir(cfg)
    builtin = _builtin_rows()
    configured = [_configured_row(cfg, conv, code_dir) for conv in cfg.converters]
    broken = [row for row in configured if row["error"]]
    if as_json:
        document = {"builtin": builtin, "configured": configured, "converters_dir": str(code_dir)}
        typer.echo(json.dumps(document, indent=2))
    else:
        _print(builtin, configured, code_dir)
    if broken:
        raise typer.Exit(EXIT_CONVERTER_BROKEN)


def _patterns(patterns: list[str] | None) -> str:
    return ", ".join(patterns) if patterns else "(any)"


def _print(builtin: list[dict[str, Any]], configured: list[dict[str, Any]], code_dir: Path) -> None:
    lines = ["Built-in converters:"]
    # every column as wide as its widest cell, so a long pattern list never shifts a row
    names = [row["name"] for row in builtin]
    kinds = [row["kind"] for row in builtin]
    patterns = [_patterns(row["file_patterns"]) for row in builtin]
    versions = [f"v{row['version']}" for row in builtin]
    widths = [max(map(len, column), default=0) for column in (names, kinds, patterns, versions)]
    for row, *cells in zip(builtin, names, kinds, patterns, versions, strict=True):
        padded = " ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        lines.append(f"  {padded}  {row['description']}")
    lines.append("")
    if not configured:
        lines.append("No converters configured (add [[converters]] tables; see configs/hub.toml).")
    else:
        lines.append(f"Configured converters (site files from {code_dir}):")
    for row in configured:
        state = "" if row["enabled"] else "  [disabled]"
        lines.append(f"  {row['name']}{state}")
        lines.append(f"    converter  {row['converter']}")
        if row["error"]:
            lines.append(f"    ERROR      {row['error']}")
        else:
            lines.append(f"    source     {row['source']} v{row['version']}")
            lines.append(
                f"    kind       {row['kind']}, patterns {_patterns(row['file_patterns'])}"
            )
        lines.append(f"    watch      {row['watch_folder']}")
        lines.append(f"    done/error {row['done_folder']} | {row['error_folder']}")
        lines.append(f"    after      {row['post_action']}")
        station = row["station"]
        preset = f" (preset {station['preset']})" if station["preset"] else ""
        lines.append(
            f"    station    {station['name']}, {station['location']}, {station['purpose']}{preset}"
        )
    typer.echo("\n".join(lines))
