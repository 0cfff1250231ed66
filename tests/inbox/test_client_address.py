"""The one client-address rule (inbox.web.client_address): X-Forwarded-For is read only
behind a trusted proxy, from the right, up to the first hop that is not a trusted proxy."""

from __future__ import annotations

import ipaddress

import pytest

from inbox.web.client_address import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        # an untrusted peer's header is its own writing: ignored
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # behind a trusted proxy: the hop it saw
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("::1", "198.51.100.1", "198.51.100.1"),
        # what the client wrote on the left is never read past an untrusted hop
        ("10.0.0.2", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
        # two trusted proxies in a row
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.9.9.9", "198.51.100.1"),
        # only proxies: the leftmost one
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),
        # an empty or garbled hop as the proxy wrote it
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "1.2.3.4, ", "10.0.0.2"),
        ("10.0.0.2", "unknown", "unknown"),
        (None, None, "unknown"),
    ],
)
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, PROXIES) == expected


def test_without_proxies_the_header_is_ignored():
    assert client_address("10.0.0.2", "198.51.100.1", ()) == "10.0.0.2"
