"""``wats-supervisor server``: run the embedded WATS-compatible server in the foreground."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from wats.cli.main import app

_FAULTS = "Fault injection"


@app.command("server")
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8080,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Data folder (reports, credentials). "
            "Default: $WATS_SERVER_DATA or the per-user data folder.",
        ),
    ] = None,
    token: Annotated[
        list[str] | None,
        typer.Option(
            "--token",
            help="Accepted API token (base64 of user:password); repeatable. "
            "Without it, credentials are created once in <data>/credentials.json.",
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="JSON or TOML file replacing the processes, levels and product groups.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    latency_ms: Annotated[
        float, typer.Option(help="Added latency per request (ms).", rich_help_panel=_FAULTS)
    ] = 0,
    error_500_rate: Annotated[
        float, typer.Option(help="Probability of answering 500.", rich_help_panel=_FAULTS)
    ] = 0,
    error_503_rate: Annotated[
        float, typer.Option(help="Probability of answering 503.", rich_help_panel=_FAULTS)
    ] = 0,
    throttle_next: Annotated[
        int, typer.Option(help="Answer the next N requests with 429.", rich_help_panel=_FAULTS)
    ] = 0,
    throttle_rate: Annotated[
        float, typer.Option(help="Probability of answering 429.", rich_help_panel=_FAULTS)
    ] = 0,
    retry_after: Annotated[
        int, typer.Option(help="Retry-After seconds sent with 429/503.", rich_help_panel=_FAULTS)
    ] = 1,
    offline: Annotated[
        bool,
        typer.Option(help="Answer everything except /admin with 503.", rich_help_panel=_FAULTS),
    ] = False,
    reject_next_reports: Annotated[
        int,
        typer.Option(
            help="Answer the next N report submissions with 400.", rich_help_panel=_FAULTS
        ),
    ] = 0,
    fault_seed: Annotated[
        int | None, typer.Option(help="Seed for random faults.", rich_help_panel=_FAULTS)
    ] = None,
    max_body_mb: Annotated[
        float,
        typer.Option(
            min=0.001, help="Largest report body accepted (MiB); bigger ones are answered 413."
        ),
    ] = 64,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the embedded WATS-compatible server in the foreground (Ctrl+C or SIGTERM stops it)."""
    from pydantic import ValidationError

    from wats.server.app import build_context, create_app
    from wats.server.auth import CREDENTIALS_FILE, load_or_create_credentials, token_username
    from wats.server.faults import FaultSettings
    from wats.server.reference import ReferenceDataError
    from wats.server.serving import RefusableServer, bind_socket
    from wats.server.settings import ServerSettings, default_data_dir

    data_dir = (data or default_data_dir()).expanduser().resolve()
    try:
        faults = FaultSettings(
            latency_ms=latency_ms,
            error_500_probability=error_500_rate,
            error_503_probability=error_503_rate,
            throttle_next=throttle_next,
            throttle_probability=throttle_rate,
            retry_after_seconds=retry_after,
            offline=offline,
            reject_next_reports=reject_next_reports,
            seed=fault_seed,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = ServerSettings(
        data_dir=data_dir,
        host=host,
        port=port,
        tokens=list(token or []),
        reference_file=reference,
        faults=faults,
        max_body_mb=max_body_mb,
    )
    try:
        context = build_context(settings)
    except (ReferenceDataError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        context.close()
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    actual_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{actual_port}"

    typer.echo(f"WATS-compatible server: {url}/ (HTML page at /, API under /api)")
    typer.echo(f"Data folder: {data_dir}")
    if token:
        names = sorted({token_username(t) or "?" for t in token})
        typer.echo(f"Accepting {len(token)} token(s) from --token (user(s): {', '.join(names)})")
    else:
        creds = load_or_create_credentials(data_dir)
        typer.echo(
            f"Credentials: {data_dir / CREDENTIALS_FILE} (username {creds.username!r}; "
            "token = base64 of username:password)"
        )
    typer.echo(f"Reference data: {reference or 'built-in defaults'}")
    if faults != FaultSettings():
        active = {
            k: v
            for k, v in faults.model_dump().items()
            if v != FaultSettings.model_fields[k].default
        }
        typer.echo(f"Faults: {active}")
    typer.echo(f"wats-server-url: {url}", nl=True)

    config = uvicorn.Config(
        create_app(context),
        lifespan="off",
        log_level=log_level,
        loop="asyncio",
        http="h11",
        timeout_graceful_shutdown=5,
    )
    uvicorn_server = RefusableServer(config)
    context.connection_control = uvicorn_server
    # uvicorn re-raises the stop signal once it has shut down; a no-op handler lets us close the
    # store and exit 0 instead of being killed by that re-raised signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn_server.run(sockets=[sock])
    finally:
        context.close()
        sock.close()
        logging.getLogger(__name__).info("server stopped")
    typer.echo("WATS-compatible server stopped")
