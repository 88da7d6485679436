"""Which WATS server the workers talk to, and with which token.

Why here and not in each worker: health and sync (and later the uploader) must agree exactly on
the URL and token, including the embedded-server case, where the token is the one the embedded
server created for itself in its data folder.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from wats.api import Secret, WatsClient
from wats.api.proxy import ProxySettings
from wats.api.ratelimit import RateLimiter
from wats.api.retry import RetryPolicy
from wats.config.models import ClientConfig
from wats.config.paths import InstancePaths

__all__ = [
    "INSTANCE_HEADER",
    "ServerTarget",
    "changed_target",
    "embedded_data_dir",
    "embedded_identity",
    "make_client",
    "resolve_server",
]


@dataclass(frozen=True)
class ServerTarget:
    """A server URL and its token (``repr`` hides the token); ``embedded`` if it is ours."""

    url: str
    token: str = field(repr=False)
    embedded: bool = False
    proxy: ProxySettings | None = field(default=None, repr=False, compare=False)
    ca_bundle: str = ""


def embedded_data_dir(config: ClientConfig) -> Path:
    """``[server.embedded] data_dir``, or ``<instance data>/server`` when empty."""
    return InstancePaths.for_config(config).server_data_dir


INSTANCE_HEADER = "X-Wats-Instance"
"""The response header by which this instance's embedded server says whose it is."""


def embedded_identity(config: ClientConfig) -> str:
    """Who an instance's embedded server is: a digest of the instance name and its data folder.

    The server worker sends it in :data:`INSTANCE_HEADER` on every answer, and the health
    worker checks it, so a port answered by another program — or by another instance's server
    (another user's ``default`` instance has the same name but not the same folder) — is never
    taken for our own server. Both sides compute it from the configuration: nothing to hand
    over at start, and it stays the same across restarts. It is an identity, not a secret.
    """
    import hashlib

    folder = embedded_data_dir(config).expanduser().resolve()
    seed = f"{config.instance.name}\0{folder}".encode()
    return hashlib.sha256(seed).hexdigest()[:32]


def resolve_server(config: ClientConfig) -> ServerTarget:
    """The configured server, its token and the proxy to reach it through; or the embedded
    server and the token from its ``credentials.json`` (created on first use, exactly as the
    server does). The proxy is the one ``wats-supervisor proxy set`` stored (None: the
    environment's proxies, as mode "system").

    The token of a configured server, first found wins (docs/credentials.md): ``$<token_env>``
    (CI, containers: an explicit override), then the encrypted token ``wats-supervisor login``
    stored — only if it was stored for this very URL —, else none. A stored token that cannot
    be decrypted (the files were copied from another machine) raises ``CredentialError`` saying
    to log in again: failing loudly beats a worker sending 401s forever.
    """
    if config.server.url:
        token = config.server.token_from_env()
        if token is None:
            from wats.credentials import stored_token

            stored = stored_token(config, config.server.url)
            token = stored.reveal() if stored is not None else ""
        from wats.credentials import stored_proxy

        return ServerTarget(
            config.server.url,
            token,
            proxy=stored_proxy(config),
            ca_bundle=config.server.ca_bundle,
        )
    from wats.server.auth import load_or_create_credentials

    creds = load_or_create_credentials(embedded_data_dir(config))
    return ServerTarget(config.server.effective_url(), creds.token, embedded=True)


def changed_target(config: ClientConfig, current: ServerTarget) -> ServerTarget | None:
    """The target read afresh, when its token or proxy differ from ``current``; else None.

    Workers call it when the server refuses their credentials (401, or 407 from the proxy), so
    a ``wats-supervisor login`` made while they run takes effect without a restart. Raises
    ``CredentialError`` when the store cannot be decrypted.
    """
    fresh = resolve_server(config)
    if fresh.token == current.token and fresh.proxy == current.proxy:
        return None
    return fresh


def make_client(
    target: ServerTarget,
    timeout: float,
    *,
    retry: RetryPolicy | None = None,
    rate_limiter: RateLimiter | None = None,
    proxy: ProxySettings | None = None,
) -> WatsClient:
    """A blocking client for ``target``, through ``proxy`` (default: the target's own).

    The embedded (loopback) server is always reached directly, whatever the proxy settings or
    the environment say: a corporate proxy could never reach it. Without ``proxy`` a remote
    server is reached as before, with proxies from the environment (mode "system").

    ``retry`` and ``rate_limiter`` default to the client library's (3 attempts; 500 requests
    per 60 s); a worker that owns its retries or its pacing passes its own.
    """
    if target.embedded:
        proxy = ProxySettings(mode="none")
    elif proxy is None:
        proxy = target.proxy
    return WatsClient(
        target.url,
        Secret(target.token),
        timeout=timeout,
        retry=retry,
        rate_limiter=rate_limiter,
        proxy=proxy,
        trust_env=not target.embedded,
        verify=ssl.create_default_context(cafile=target.ca_bundle) if target.ca_bundle else True,
    )
