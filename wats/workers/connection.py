"""Which WATS server the workers talk to, and with which token.

Why here and not in each worker: health and sync (and later the uploader) must agree exactly on
the URL and token, including the embedded-server case, where the token is the one the embedded
server created for itself in its data folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wats.api import Secret, WatsClient
from wats.api.ratelimit import RateLimiter
from wats.api.retry import RetryPolicy
from wats.config.models import ClientConfig
from wats.config.paths import InstancePaths

__all__ = ["ServerTarget", "embedded_data_dir", "make_client", "resolve_server"]


@dataclass(frozen=True)
class ServerTarget:
    """A server URL and its token (``repr`` hides the token); ``embedded`` if it is ours."""

    url: str
    token: str = field(repr=False)
    embedded: bool = False


def embedded_data_dir(config: ClientConfig) -> Path:
    """``[server.embedded] data_dir``, or ``<instance data>/server`` when empty."""
    return InstancePaths.for_config(config).server_data_dir


def resolve_server(config: ClientConfig) -> ServerTarget:
    """The configured server and the token from ``$<token_env>``; or the embedded server and the
    token from its ``credentials.json`` (created on first use, exactly as the server does)."""
    if config.server.url:
        return ServerTarget(config.server.url, config.server.token_from_env() or "")
    from wats.server.auth import load_or_create_credentials

    creds = load_or_create_credentials(embedded_data_dir(config))
    return ServerTarget(config.server.effective_url(), creds.token, embedded=True)


def make_client(
    target: ServerTarget,
    timeout: float,
    *,
    retry: RetryPolicy | None = None,
    rate_limiter: RateLimiter | None = None,
) -> WatsClient:
    """A blocking client for ``target``; proxies from the environment are ignored for the
    embedded (loopback) server, which a corporate proxy could never reach.

    ``retry`` and ``rate_limiter`` default to the client library's (3 attempts; 500 requests
    per 60 s); a worker that owns its retries or its pacing passes its own.
    """
    return WatsClient(
        target.url,
        Secret(target.token),
        timeout=timeout,
        retry=retry,
        rate_limiter=rate_limiter,
        trust_env=not target.embedded,
    )
