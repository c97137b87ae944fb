"""Who may read /metrics: a client on a loopback or private address, or one that sends
the metrics token.

Rules of this module:
- The address judged is the client's as the app sees it: the connection's own, or, from
  a trusted proxy (`trusted_proxies`), the client that proxy names in X-Forwarded-For.
  X-Forwarded-For from anyone else changes nothing, so it cannot be forged in; and a
  public client behind nginx is public here, though nginx itself is on loopback.
- The token is compared in constant time; with no `metrics_token` set there is none.
- A refusal is a 403 that says both ways in.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.errors import Forbidden
from gateway.runtime import Runtime

INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    )
)


def is_internal(host: str | None) -> bool:
    """Whether `host` is an address on loopback or a private network."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False  # no address at all (a test client's name, a Unix socket)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in INTERNAL_NETWORKS)


def has_token(authorization: str | None, token: str | None) -> bool:
    """Whether `Authorization` carries `Bearer <token>`; never with no token set."""
    if not token or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_access(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The guard of /metrics: the rules in the module docstring."""
    runtime: Runtime = connection.app.state.runtime
    token = runtime.settings.metrics_token
    if is_internal(connection.client.host if connection.client else None):
        return
    if has_token(connection.headers.get("authorization"), token):
        return
    how = (
        "send `Authorization: Bearer <token>` with the gateway's metrics_token"
        if token
        else "set metrics_token (GATEWAY_METRICS_TOKEN) and send it as "
        "`Authorization: Bearer <token>`"
    )
    raise Forbidden(
        f"/metrics answers loopback and private addresses only; from elsewhere, {how}",
        code="metrics_forbidden",
    )
