"""``wats-supervisor config show|init|validate``, and the config loading every command shares.

Other command modules call ``load_config_or_exit`` (and reuse ``ConfigOption`` /
``InstanceOption``) so that every command finds the file the same way and a bad config looks the
same everywhere: one ``error: <file>: <field>: <problem>`` line per problem, exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from wats.cli.main import app
from wats.cli.options import ConfigOption, InstanceOption
from wats.config import (
    CONFIG_ENV,
    ClientConfig,
    ConfigError,
    InstancePaths,
    config_to_toml,
    default_config_path,
    find_config_path,
    load_config,
    render_default_config,
)
from wats.fsutil import atomic_write

__all__ = [
    "EXIT_BAD_CONFIG",
    "ConfigOption",
    "InstanceOption",
    "config_app",
    "load_config_or_exit",
]

EXIT_BAD_CONFIG = 2


config_app = typer.Typer(help="Show, create or check the configuration file.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def load_config_or_exit(
    config: Path | None, instance: str | None
) -> tuple[ClientConfig, Path | None]:
    """``load_config`` for commands: on a bad config print why (stderr) and exit with code 2."""
    try:
        return load_config(config, instance)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from None


def exit_on_converter_problems(cfg: ClientConfig, source: Path | None, *, load_site: bool) -> None:
    """Exit 2 naming each ``[[converters]]`` field that is wrong in a way only the converter
    classes can tell (unknown arguments, two converters competing for the same files)."""
    from wats.converters.check import converter_problems, problem_lines

    problems = converter_problems(cfg, load_site=load_site)
    if not problems:
        return
    for line in problem_lines(problems, source):
        typer.echo(line, err=True)
    raise typer.Exit(EXIT_BAD_CONFIG)


@config_app.command("show")
def show(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML.")] = False,
) -> None:
    """Print the effective configuration (file merged with defaults) and where it came from."""
    cfg, source = load_config_or_exit(config, instance)
    paths = InstancePaths.for_config(cfg)
    if as_json:
        document: dict[str, Any] = {
            "source": str(source) if source else None,
            "config": cfg.model_dump(mode="json"),
            "paths": _paths_dict(paths),
            "station_name": cfg.station.resolved_name(),
        }
        typer.echo(json.dumps(document, indent=2))
        return
    origin = str(source) if source else f"built-in defaults (no file at {default_config_path()})"
    typer.echo(f"# Effective configuration from: {origin}")
    typer.echo(f"# Station name on reports: {cfg.station.resolved_name()}")
    for name, value in _paths_dict(paths).items():
        typer.echo(f"# {name}: {value}")
    typer.echo("")
    typer.echo(config_to_toml(cfg), nl=False)


@config_app.command("init")
def init(
    path: Annotated[
        Path | None,
        typer.Argument(
            help=f"Where to write (default: ${CONFIG_ENV}, else the per-user config.toml).",
            dir_okay=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented configuration file with every setting at its default."""
    target, _ = find_config_path(path)
    target = target or default_config_path()
    if target.exists() and not force:
        typer.echo(f"error: {target} already exists (use --force to overwrite it)", err=True)
        raise typer.Exit(1)
    try:
        # 0700 / 0600: the config says which server and which login folder; other users of a
        # shared station have no business reading or changing it.
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(target, render_default_config().encode("utf-8"), mode=0o600)
    except OSError as exc:
        typer.echo(f"error: cannot write {target}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Wrote {target}")
    typer.echo(f"Edit it, then check it with: wats-supervisor config validate --config {target}")


@config_app.command("validate")
def validate(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    elsewhere: Annotated[
        bool,
        typer.Option(
            "--elsewhere",
            help="The config is for another machine (checked in CI or before deploying): "
            "check the file and its converters, not whether its watch folders exist here.",
        ),
    ] = False,
) -> None:
    """Check the configuration file; exit 0 if it is valid, 2 with the problems if not.

    Converters are loaded as the converter worker will load them (a site's own too), so wrong
    arguments and a missing or broken site converter show here. So does what `start` would
    refuse that does not depend on what is running: a watch folder that does not exist (and
    is not to be created: create_watch_folder), since a mistyped network path must not become
    an empty local folder. The embedded server's port and an instance already running are
    checked by `start` itself.
    """
    from wats.supervisor.preflight import config_problems

    cfg, source = load_config_or_exit(config, instance)
    exit_on_converter_problems(cfg, source, load_site=True)
    problems = [] if elsewhere else config_problems(cfg)
    for problem in problems:
        typer.echo(f"error: {problem.key}: {problem.message}", err=True)
    if problems:
        typer.echo(
            "(start refuses this config here; --elsewhere checks a config meant for another "
            "machine without its folders)",
            err=True,
        )
        raise typer.Exit(2)
    origin = str(source) if source else "built-in defaults (no config file)"
    workers = ", ".join(cfg.enabled_workers()) or "none"
    server = cfg.server.url or f"embedded at {cfg.server.effective_url()}"
    typer.echo(f"OK: {origin}")
    typer.echo(f"instance {cfg.instance.name!r}, server {server}, workers: {workers}")


def _paths_dict(paths: InstancePaths) -> dict[str, str]:
    return {
        "data_dir": str(paths.data_dir),
        "cache_dir": str(paths.cache_dir),
        "log_file": str(paths.log_file),
        "runtime_dir": str(paths.runtime_dir),
        "lock_file": str(paths.lock_file),
        "state_file": str(paths.state_file),
        "server_data_dir": str(paths.server_data_dir),
    }
