"""Where a webhook may be sent: public addresses only, unless its endpoint says otherwise.

Rules:
* A webhook URL whose host is a loopback, private, link-local, shared, multicast,
  reserved or unspecified address (or a name like `localhost`) is refused when the
  configuration is loaded, unless the endpoint sets `allow_private = true`.
* At delivery time the host name is resolved and every address it resolves to must be
  public; the request then goes to the address that was checked (the name still goes in
  `Host` and, for https, in SNI and the certificate check), so a name that changes its
  answer between the check and the connection (DNS rebinding) cannot reach inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class PrivateAddress(Exception):
    """The webhook's host is, or resolves to, an address that is not public."""


def is_public(address: str) -> bool:
    """Whether an IP address is one the internet routes to a third party."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_refusal(url: str) -> str | None:
    """Why `url` is refused without a DNS look-up (an IP literal or a local name), or None."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"{host} is this machine"
    try:
        public = is_public(host)
    except ValueError:
        return None  # a name: checked when it is resolved, at delivery time
    return None if public else f"{host} is not a public address"


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL with the checked address, and the name."""

    url: str
    host_header: str | None = None
    sni_hostname: str | None = None


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return sorted({str(info[4][0]) for info in infos})


async def public_target(url: str) -> Target:
    """The URL pinned to a public address its host resolves to; `PrivateAddress` if the
    host is or resolves to any address that is not public, or does not resolve."""
    refusal = literal_refusal(url)
    if refusal:
        raise PrivateAddress(refusal)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise PrivateAddress(f"{host} does not resolve: {exc}") from exc
    private = [a for a in addresses if not is_public(a)]
    if private or not addresses:
        raise PrivateAddress(f"{host} resolves to {', '.join(private) or 'nothing'}, not public")
    address = addresses[0]
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return Target(
        url=urlunsplit(parts._replace(netloc=netloc)),
        host_header=parts.netloc.rsplit("@", 1)[-1],
        sni_hostname=host if parts.scheme == "https" else None,
    )
