"""``wats-supervisor keys generate|authorize|revoke|list``: CurveZMQ keys for a hub's network bus.

A hub that lets a monitor on another machine watch it listens with CurveZMQ (docs/bus.md,
"Security"). The hub needs a server key pair (``keys generate --name server``, then ``[bus]
server_key``); each watching machine makes its own pair, and the hub admits it by its public key
(``keys authorize monitor.key``). Only public keys are ever printed or copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from wats.cli.main import app
from wats.cli.options import ConfigOption, InstanceOption

keys_app = typer.Typer(
    help="CurveZMQ keys for a bus that listens beyond this machine (hubs and their monitors).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

EXIT_KEY_ERROR = 1

AuthorizedDirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Authorized-keys folder (default: \\[bus] authorized_keys)."),
]


def _key_paths(config: Path | None, instance: str | None) -> Any:
    """The instance's key folders (``[bus] key_dir`` / ``authorized_keys`` or their defaults)."""
    from wats.cli.config_cmd import load_config_or_exit
    from wats.config.paths import InstancePaths
    from wats.protocol.security import KeyPaths

    cfg, _ = load_config_or_exit(config, instance)
    paths = InstancePaths.for_config(cfg)
    return KeyPaths.resolve(
        paths.data_dir, cfg.bus.key_dir, cfg.bus.authorized_keys, cfg.bus.client_key
    )


def _authorized_dir(directory: Path | None, config: Path | None, instance: str | None) -> Path:
    """``--dir`` if given, else the instance's authorized-keys folder."""
    if directory is not None:
        return directory
    return Path(_key_paths(config, instance).authorized_dir)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(EXIT_KEY_ERROR)


@keys_app.command("generate")
def generate(
    name: Annotated[
        str, typer.Option("--name", help="Key name: 'server' on a hub, e.g. 'client' elsewhere.")
    ] = "client",
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder for the pair (default: \\[bus] key_dir)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing pair of that name.")
    ] = False,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Make a key pair: NAME.key (public, share it) and NAME.key_secret (0600, keep it here)."""
    from wats.protocol.security import BusSecurityError, generate_keypair

    folder = directory if directory is not None else _key_paths(config, instance).key_dir
    try:
        made = generate_keypair(folder, name, overwrite=force)
    except (BusSecurityError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(f"public key:  {made.public_key}")
    typer.echo(f"public file: {made.public_file}")
    typer.echo(f"secret file: {made.secret_file}  (mode 0600; never copy it elsewhere)")
    if name == "server":
        typer.echo(f"next: set [bus] server_key = {str(made.secret_file)!r} and listen_host;")
        typer.echo(f"      give {made.public_file.name} to each monitor ([bus] hub_public_key)")
    else:
        typer.echo(
            f"next: on the hub, `wats-supervisor keys authorize {made.public_file.name}`; "
            f"here, [bus] client_key = {str(made.secret_file)!r}"
        )


@keys_app.command("authorize")
def authorize(
    public_key_file: Annotated[
        Path, typer.Argument(help="A client's public key file (NAME.key).", show_default=False)
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Name to file it under (default: file's stem).")
    ] = None,
    directory: AuthorizedDirOption = None,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Admit a client to the hub's network listeners (a running hub admits it at its next
    connection; no restart)."""
    from wats.protocol.security import BusSecurityError, authorize_key

    folder = _authorized_dir(directory, config, instance)
    try:
        target = authorize_key(public_key_file, folder, name)
    except (BusSecurityError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(f"authorized: {target}")
    typer.echo("a running supervisor admits it at the client's next connection")


@keys_app.command("revoke")
def revoke(
    name: Annotated[
        str, typer.Argument(help="The authorized key's name (see `keys list`).", show_default=False)
    ],
    directory: AuthorizedDirOption = None,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Stop admitting a client: new connections with its key are refused at once (one already
    open stays until it disconnects; restart the supervisor to cut it off)."""
    from wats.protocol.security import BusSecurityError, revoke_key

    folder = _authorized_dir(directory, config, instance)
    try:
        target = revoke_key(name, folder)
    except (BusSecurityError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(f"revoked: {target} removed")
    typer.echo("new connections with this key are refused; an open one stays until it ends")


@keys_app.command("list")
def list_command(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="List this folder only (default: key folder and authorized)."),
    ] = None,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Show the key pairs here and the client keys the hub admits (public keys only)."""
    from wats.protocol.security import list_keys

    if directory is not None:
        folders = [("keys", directory)]
    else:
        key_paths = _key_paths(config, instance)
        folders = [("keys", key_paths.key_dir), ("authorized", key_paths.authorized_dir)]
    for title, folder in folders:
        keys = list_keys(folder)
        typer.echo(f"{title} ({folder}): {len(keys) or 'none'}")
        for key in keys:
            kind = "pair  " if key.has_secret else "public"
            typer.echo(f"  {kind} {key.name:<20} {key.public_key}")
