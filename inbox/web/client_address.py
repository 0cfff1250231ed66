"""The client's address as every HTTP surface counts it (rate limits, sign-in throttling).

The rule: start from the TCP peer. While the hop in hand is one of the configured
`trusted_proxies`, step one hop left in `X-Forwarded-For` (each proxy appends the peer it
saw, so every hop read this way was written by a proxy we trust). The first hop that is
not a trusted proxy is the client. Without trusted proxies the header is ignored: anyone
can write it, so it must never move a client to another counter.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from inbox.config_section import ConfigSection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# a longer header is cut: its left end is what the client wrote, never read anyway
MAX_HOPS = 32


def read_trusted_proxies(
    section: ConfigSection, key: str = "trusted_proxies"
) -> tuple[Network, ...]:
    """A section's list of proxy addresses or networks, or a ConfigError naming the bad one."""
    networks = []
    for value in section.str_list(key, []):
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise section.error(
                key,
                f"not an address or network: {value!r}",
                fix='["127.0.0.1", "10.0.0.0/8"]',
            ) from None
    return tuple(networks)


def _trusted(hop: str, proxies: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(hop)
    except ValueError:
        return False
    return any(address in net for net in proxies)


def client_address(peer: str | None, forwarded: str | None, proxies: Sequence[Network]) -> str:
    """The client behind `peer` given its X-Forwarded-For header (see the module's rule)."""
    hop = peer or "unknown"
    if not forwarded or not proxies:
        return hop
    chain = [p.strip() for p in forwarded.split(",")[-MAX_HOPS:]]
    while _trusted(hop, proxies) and chain:
        previous = chain.pop()
        if not previous:
            break
        hop = previous
    return hop[:64]


def request_client_address(request: web.BaseRequest, proxies: Sequence[Network]) -> str:
    """`client_address` of an aiohttp request."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), proxies)
