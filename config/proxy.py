"""The client's address, for every HTTP request and websocket: `ClientAddressMiddleware`.

Every per-address throttle (logins, registrations) reads the address Django and Channels see,
`scope["client"]`. Daphne's `--proxy-headers` fills it from the *left-most* `X-Forwarded-For`
entry, which any client writes itself; with it, each forged header was a fresh address. So
Daphne runs without it, and this middleware takes the address from the header only when the
peer is one of `TRUSTED_PROXIES`: then it walks the hops from the right, past every trusted
proxy, and takes the first one that is not (the left ones are whatever the client claimed).
From any other peer the forwarding headers are removed, so nothing downstream (Django's
`SECURE_PROXY_SSL_HEADER` included) can be fooled by them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# What a proxy tells the app about the client; worthless from anyone else.
FORWARDING = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-real-ip",
        b"forwarded",
    }
)


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`TRUSTED_PROXIES` entries (addresses or CIDR ranges) as networks; ValueError names a bad
    one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR range: {entry!r}") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(entries)


def _address(text: str) -> Address | None:
    """An address from one hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:80`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address, given the TCP peer and the X-Forwarded-For headers it sent.

    Only a trusted peer's header is read: from its right-most hop leftwards, the first address
    that is not a trusted proxy. A hop that is not an address stops the walk at the last good
    one (a trusted proxy wrote it, so that proxy is misconfigured; the client is not rewarded).
    """
    peer_address = _address(peer)
    if peer_address is None or not _is_trusted(peer_address, trusted):
        return peer
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    found = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        found = address
        if not _is_trusted(address, trusted):
            break
    return str(found)


class ClientAddressMiddleware:
    """ASGI middleware around the whole application (config/asgi.py): rewrites
    `scope["client"]` per the module docstring, for HTTP and websockets alike."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket"):
            scope = self.rewrite(scope)
        return await self.app(scope, receive, send)

    @staticmethod
    def rewrite(scope: dict[str, Any]) -> dict[str, Any]:
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        trusted = _trusted(tuple(settings.TRUSTED_PROXIES))
        headers = scope.get("headers", [])
        peer_address = _address(peer)
        if peer_address is None or not _is_trusted(peer_address, trusted):
            kept = [(name, value) for name, value in headers if name.lower() not in FORWARDING]
            return {**scope, "headers": kept}
        forwarded_for = [
            value.decode("latin-1") for name, value in headers if name.lower() == b"x-forwarded-for"
        ]
        address = client_address(peer, forwarded_for, trusted)
        if address == peer:
            return scope
        return {**scope, "client": [address, 0]}
