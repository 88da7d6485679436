"""``wats-supervisor login|logout`` and ``wats-supervisor proxy set|show|clear``.

``login`` verifies the credentials against the server before storing anything, so a typo never
replaces a working login. The token is stored encrypted in the instance's credential folder
(docs/credentials.md); nothing here ever prints it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from wats.cli.event_format import counted
from wats.cli.main import app
from wats.cli.options import ConfigOption, InstanceOption

__all__ = ["login_summary", "proxy_app"]

proxy_app = typer.Typer(
    help="Set, show or clear the HTTP proxy used to reach the WATS server.", no_args_is_help=True
)
app.add_typer(proxy_app, name="proxy")

EXIT_FAILED = 1
EXIT_USAGE = 2


def load_config_or_exit(config: Path | None, instance: str | None) -> tuple[Any, Path | None]:
    """``wats.cli.config_cmd.load_config_or_exit``, imported late (see ``ConfigOption``)."""
    from wats.cli.config_cmd import load_config_or_exit as load

    return load(config, instance)


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command("login")
def login_command(
    url: Annotated[
        str | None,
        typer.Option("--url", help="WATS server URL (default: \\[server] url of the config)."),
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="User name (prompted if not given).")
    ] = None,
    token_stdin: Annotated[
        bool,
        typer.Option(
            "--token-stdin",
            help="Read an existing API token (base64 of user:password) from stdin instead of "
            "prompting for a password.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the server.")
    ] = 10.0,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Verify credentials against the WATS server and store the token encrypted."""
    from wats.api.auth import Secret, basic_token
    from wats.credentials import (
        CredentialError,
        LoginError,
        login,
        same_server,
        stored_proxy,
        token_username,
        verify_token,
    )

    cfg, _ = load_config_or_exit(config, instance)
    server_url = (url or cfg.server.url).strip()
    if not server_url:
        raise _fail(
            "no server URL: pass --url https://your.wats.server or set [server] url in the config",
            EXIT_USAGE,
        )
    if token_stdin:
        text = sys.stdin.read().strip()
        if not text:
            raise _fail("--token-stdin: stdin was empty; pipe the API token in", EXIT_USAGE)
        token = Secret(text)
        del text
        who = username or token_username(token.reveal()) or "(API token)"
    else:
        who = username or typer.prompt("User name")
        password = Secret(typer.prompt("Password", hide_input=True, default="", show_default=False))
        try:
            token = Secret(basic_token(who, password.reveal()))
        except ValueError as exc:
            raise _fail(f"cannot build a token: {exc}", EXIT_USAGE) from None
        del password
    try:
        proxy = stored_proxy(cfg)
    except CredentialError as exc:
        raise _fail(f"the stored proxy settings cannot be used: {exc}") from None
    try:
        verify_token(server_url, token, proxy=proxy, timeout=timeout)
    except LoginError as exc:
        raise _fail(f"{exc}; nothing was stored") from None
    try:
        record = login(cfg, server_url, who, token)
    except CredentialError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"logged in to {record.server_url} as {who}")
    if not cfg.server.url:
        typer.echo(
            f"note: the config names no [server] url, so the workers use the embedded server; "
            f'set [server] url = "{record.server_url}" to deliver there with this login',
            err=True,
        )
    elif not same_server(cfg.server.url, server_url):
        typer.echo(
            f"note: the config's [server] url is {cfg.server.url}; the workers use this login "
            f"only once it is {record.server_url}",
            err=True,
        )
    if cfg.server.token_from_env() is not None:
        typer.echo(
            f"note: ${cfg.server.token_env} is set and takes precedence over the stored login",
            err=True,
        )


@app.command("logout")
def logout_command(config: ConfigOption = None, instance: InstanceOption = None) -> None:
    """Remove the stored API token (nothing happens if nobody is logged in)."""
    from wats.credentials import CredentialError, load_connection, logout

    cfg, _ = load_config_or_exit(config, instance)
    try:
        record = load_connection(cfg)
        who = logout(cfg)
    except CredentialError as exc:
        raise _fail(str(exc)) from None
    if who is None:
        typer.echo("not logged in; nothing to remove")
        return
    where = f" from {record.server_url}" if record is not None and record.server_url else ""
    typer.echo(f"logged out {who}{where}; the stored token was removed")


# ---- proxy ---------------------------------------------------------------------------------------


@proxy_app.command("set")
def proxy_set(
    mode: Annotated[
        str, typer.Option("--mode", help="none (direct), system (environment) or manual.")
    ],
    host: Annotated[str | None, typer.Option("--host", help="Proxy host (manual).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Proxy port (manual).")] = None,
    username: Annotated[
        str | None, typer.Option("--username", help="Proxy user name (manual, optional).")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the proxy password from stdin instead of a prompt."
        ),
    ] = False,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Store proxy settings (the password encrypted, like the API token)."""
    from pydantic import ValidationError

    from wats.api.auth import Secret
    from wats.api.proxy import ProxySettings
    from wats.credentials import CredentialError, set_proxy

    cfg, _ = load_config_or_exit(config, instance)
    password: Secret | None = None
    if username and mode == "manual":
        text = (
            sys.stdin.read().rstrip("\r\n")
            if password_stdin
            else typer.prompt(
                "Proxy password (empty: none)", hide_input=True, default="", show_default=False
            )
        )
        password = Secret(text) if text else None
        del text
    try:
        settings = ProxySettings(
            mode=mode,  # type: ignore[arg-type]  # validated here
            host=host,
            port=port,
            username=username,
            password=password,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'proxy'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise _fail(f"invalid proxy settings: {problems}", EXIT_USAGE) from None
    try:
        set_proxy(cfg, settings)
    except CredentialError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"proxy set: {settings.describe()}")


@proxy_app.command("show")
def proxy_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Show the stored proxy settings (never the password)."""
    from wats.credentials import CredentialError, load_connection

    cfg, _ = load_config_or_exit(config, instance)
    try:
        record = load_connection(cfg)
    except CredentialError as exc:
        raise _fail(str(exc)) from None
    summary = record.summary()["proxy"] if record is not None else None
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    if summary is None:
        typer.echo("no proxy stored (a configured server is reached as the environment says)")
        return
    typer.echo(_describe_proxy(summary))


@proxy_app.command("clear")
def proxy_clear(config: ConfigOption = None, instance: InstanceOption = None) -> None:
    """Remove the stored proxy settings."""
    from wats.credentials import CredentialError, clear_proxy

    cfg, _ = load_config_or_exit(config, instance)
    try:
        removed = clear_proxy(cfg)
    except CredentialError as exc:
        raise _fail(str(exc)) from None
    typer.echo("proxy settings removed" if removed else "no proxy stored; nothing to remove")


# ---- for status ----------------------------------------------------------------------------------


def login_summary(cfg: Any) -> dict[str, Any] | None:
    """Who is logged in where, the link's state and counters, for ``status`` — never a secret.

    None when the instance has no connection record; ``{"error": ...}`` when it is unreadable.
    """
    from wats.credentials import CredentialError, load_connection

    try:
        record = load_connection(cfg)
    except CredentialError as exc:
        return {"error": str(exc)}
    return record.summary() if record is not None else None


def login_lines(
    summary: dict[str, Any] | None, *, embedded: bool = False, running: bool = True
) -> list[str]:
    """``login_summary`` as lines of text for ``status``; ``embedded``: no ``[server] url``, so
    the instance delivers to its embedded server, which needs no login; ``running``: False when
    no supervisor runs, so the recorded state is the last one seen, not the link's now."""
    not_logged_in = (
        "login      none needed (the embedded server; set [server] url for a WATS server)"
        if embedded
        else "login      not logged in (wats-supervisor login)"
    )
    if summary is None:
        return [not_logged_in]
    if "error" in summary:
        return [f"login      unusable: {summary['error']}"]
    lines = []
    if summary["logged_in"]:
        lines.append(
            f"login      {summary['username']} at {summary['server_url']} "
            f"since {summary['logged_in_at']}"
        )
    else:
        lines.append(not_logged_in)
    stats = summary["stats"]
    since = f" since {summary['state_since']}" if summary["state_since"] else ""
    state = f"{summary['state']}{since}"
    if not running:
        state = f"last seen {state} (no supervisor runs to check it now)"
    lines.append(
        f"link       {state}; {counted(stats['connections'], 'connection')}, "
        f"{counted(stats['disconnections'], 'disconnection')}, "
        f"{counted(stats['health_checks'], 'check')} ({stats['failed_checks']} failed)"
    )
    if summary["proxy"] is not None:
        lines.append(f"proxy      {_describe_proxy(summary['proxy'])}")
    return lines


def _describe_proxy(proxy: dict[str, Any]) -> str:
    if proxy["mode"] == "none":
        return "none (direct connection)"
    if proxy["mode"] == "system":
        return "system (HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment)"
    who = f" as {proxy['username']}" if proxy["username"] else ""
    password = ", password stored encrypted" if proxy["password_stored"] else ""
    return f"manual http://{proxy['host']}:{proxy['port']}{who}{password}"
