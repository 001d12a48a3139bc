"""Where an outgoing webhook may go: public internet addresses only, unless the instance allows non-public ones
(``PORTAL_WEBHOOK_PRIVATE_ADDRESSES``).

Otherwise any organization's token could point an endpoint at a service only the server reaches (a cloud metadata
address, a database's HTTP port, an admin page on loopback), have Portal POST to it, and read the start of its
answer in the delivery log. Two checks:

* When an endpoint is saved, a host that is an IP literal or a ``localhost`` name is refused at once.
* At each delivery the host name is resolved, every address it resolves to must be public, and the connection
  goes to the address that was checked. A name that resolves to a private address, or re-binds to one between
  the check and the connection, is never reached.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

REFUSED_HOST = "points to a loopback, private or other non-public address"


class NonPublicDestination(Exception):
    """The host resolves to a non-public address (or to none)."""


def is_public(address: Address) -> bool:
    """True for a globally routable unicast address; an IPv4 address mapped into IPv6 is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def host_problem(host: str) -> str | None:
    """Why ``host`` (a URL's host name, without brackets) is refused before any lookup, or None."""
    name = host.strip().rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return REFUSED_HOST
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])  # an IPv6 zone index names a local interface
    except ValueError:
        return None  # a name: judged by what it resolves to, at delivery
    return None if is_public(address) else REFUSED_HOST


async def public_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: the first it resolves to, once every one of them is public;
    ``NonPublicDestination`` otherwise."""
    if host_problem(host) is not None:
        raise NonPublicDestination(host)
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise NonPublicDestination(host) from None
    addresses = [ipaddress.ip_address(str(entry[4][0]).split("%", 1)[0]) for entry in found]
    if not addresses or not all(is_public(address) for address in addresses):
        raise NonPublicDestination(host)
    return str(addresses[0])


async def pinned(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``url`` with its host replaced by the checked public address it resolves to, plus the ``Host`` header and
    the TLS server name (httpx's ``sni_hostname`` extension) that keep the request and the certificate check
    about the original name. ``NonPublicDestination`` when the host is not public."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = await public_address(host, port)
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"host": parts.netloc}, extensions
