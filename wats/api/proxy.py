"""HTTP proxy settings for the WATS client: none, the system's, or a manual host and port.

Factories put stations behind proxies; the client must reach the WATS server through them and
must never reach the embedded (loopback) server through one. The password, when the proxy wants
one, is a :class:`~wats.api.auth.Secret`, so it never reaches a repr, a log line or an
exception; it is stored encrypted by wats.credentials.

Why the credentials never go into the proxy URL: httpx (and the errors it raises) may print the
proxy URL, and ``http://user:password@host:port`` would print the password with it. The URL is
built from host and port only; user and password travel separately as ``httpx.Proxy(auth=...)``,
whose repr masks the password.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wats.api.auth import Secret

__all__ = [
    "LOOPBACK_HOSTS",
    "ProxyMode",
    "ProxySettings",
    "is_loopback_url",
    "proxy_arguments",
]

ProxyMode = Literal["none", "system", "manual"]

LOOPBACK_HOSTS = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# A host name or an IP literal, nothing else: a scheme, credentials, a path or a port in here
# are configuration mistakes we name rather than guess around.
_HOST_FORBIDDEN = re.compile(r"[\s/@?#\\]|://")


class ProxySettings(BaseModel):
    """How the client reaches the server: ``none`` (direct), ``system`` (the environment's
    ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``), or ``manual`` (``host``:``port``, optionally
    with ``username`` and ``password``)."""

    # hide_input_in_errors: a validation error would otherwise print the whole input, the
    # password included, in its message.
    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, hide_input_in_errors=True
    )

    mode: ProxyMode = "none"
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = None
    password: Secret | None = Field(default=None, repr=False, exclude=True)

    @field_validator("host")
    @classmethod
    def _host_is_a_bare_host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host = value.strip().removeprefix("[").removesuffix("]")
        if not host:
            return None
        if _HOST_FORBIDDEN.search(host) or (":" in host and not _is_ip(host)):
            raise ValueError(
                "must be a host name or IP address only, e.g. proxy.example.com; the port goes "
                "in 'port' and the credentials in 'username'/'password'"
            )
        return host

    @field_validator("username")
    @classmethod
    def _username_has_no_colon(cls, value: str | None) -> str | None:
        if value is not None and ":" in value:
            raise ValueError("must not contain ':' (Basic authentication cannot carry it)")
        return value or None

    @model_validator(mode="before")
    @classmethod
    def _password_is_a_secret(cls, data: object) -> object:
        """Accept a plain string (from a prompt) and wrap it before anything else runs, so it
        is never held bare — not even in the input a validation error carries."""
        if isinstance(data, dict) and isinstance(data.get("password"), str):
            text = data["password"]
            data = {**data, "password": Secret(text) if text else None}
        return data

    @model_validator(mode="after")
    def _manual_needs_host_and_port(self) -> ProxySettings:
        if self.mode == "manual" and (not self.host or self.port is None):
            raise ValueError(
                'mode = "manual" needs both host and port (e.g. proxy.example.com and 3128)'
            )
        if self.password and not self.username:
            raise ValueError("a proxy password needs a username")
        return self

    @property
    def url(self) -> str | None:
        """``http://host:port`` for a manual proxy (never with credentials); else None."""
        if self.mode != "manual" or not self.host or self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def describe(self) -> str:
        """One line for ``status`` and logs: mode, address and whether it authenticates; no
        password, ever."""
        if self.mode == "none":
            return "no proxy (direct connection)"
        if self.mode == "system":
            return "system proxy (HTTPS_PROXY / HTTP_PROXY / NO_PROXY)"
        who = f" as {self.username}" if self.username else ""
        return f"manual proxy {self.url}{who}"


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (127.0.0.0/8, ::1, localhost): no proxy could
    reach such a server, so none is ever used for it."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, TypeError):
        return False
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_arguments(settings: ProxySettings | None, base_url: str | None = None) -> dict[str, Any]:
    """The ``httpx.Client`` keyword arguments (``proxy``, ``trust_env``) for ``settings``.

    - ``None`` or ``none``: direct; ``trust_env=False`` so a stray ``HTTPS_PROXY`` in the
      environment cannot reroute us (it also means ``SSL_CERT_FILE`` is not read: pass
      ``verify=`` for a custom CA).
    - ``system``: ``trust_env=True``; httpx reads ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``
      and honours ``NO_PROXY``.
    - ``manual``: ``httpx.Proxy("http://host:port", auth=(user, password))`` and
      ``trust_env=False``: the configured proxy and nothing else.

    A loopback ``base_url`` (the embedded server) is always reached directly.
    """
    direct: dict[str, Any] = {"proxy": None, "trust_env": False}
    if settings is None or settings.mode == "none":
        return direct
    if base_url is not None and is_loopback_url(base_url):
        return direct
    if settings.mode == "system":
        return {"proxy": None, "trust_env": True}
    url = settings.url
    assert url is not None  # the model validator guarantees host and port in manual mode
    auth = None
    if settings.username:
        password = settings.password.reveal() if settings.password else ""
        auth = (settings.username, password)
    return {"proxy": httpx.Proxy(url, auth=auth), "trust_env": False}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
