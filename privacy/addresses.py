"""Where a delivery may go: the public-address rules every outgoing request of the service
(OpenDSR callbacks, sub-processor webhooks) is held to in production, checked on the URL when
it is configured and on every resolved address when it is used (privacy.http_client)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from flask import current_app

# IPv6 addresses that carry an IPv4 address in their last 32 bits (besides IPv4-mapped
# ::ffff:0:0/96): IPv4-translated (SIIT, RFC 2765) and NAT64's well-known prefix (RFC 6052).
# The carried address must be public too.
LAST_32_BITS_IPV4 = (
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("64:ff9b::/96"),
)
# Never public, whatever they carry: IPv4-compatible addresses (::/96, deprecated by RFC
# 4291, ::1 and :: included) and local-use NAT64 (64:ff9b:1::/48, RFC 8215), where the IPv4
# address sits wherever the operator's prefix length puts it.
NEVER_PUBLIC = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)
# ISATAP interface identifiers (RFC 5214): 00-00-5E-FE or 02-00-5E-FE (the u/g bits aside),
# then the IPv4 address.
_ISATAP_MASK, _ISATAP_ID = 0xFCFFFFFF, 0x00005EFE


class RefusedDestination(Exception):
    """Production refuses the URL: not https, or its host is not a public address. Final:
    retrying would not change the answer."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped and -translated, NAT64,
    6to4 (2002::/16), Teredo (server and client) and ISATAP."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    last_32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in network for network in LAST_32_BITS_IPV4):
        found.append(last_32)
    elif (int(ip) >> 32) & _ISATAP_MASK == _ISATAP_ID:
        found.append(last_32)
    return found


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for private, loopback,
    link-local, shared, reserved, multicast and unspecified ones.

    An IPv6 address is public only if every IPv4 address it carries is (embedded_ipv4), and
    an IPv4-mapped one is judged as the IPv4 address it is on the wire. IPv4-compatible
    addresses (::a.b.c.d) and local-use NAT64 (64:ff9b:1::/48) are never public.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in NEVER_PUBLIC):
            return False
        if not all(is_public_address(str(v4)) for v4 in embedded_ipv4(ip)):
            return False
        if ip.ipv4_mapped is not None:
            return True  # its IPv4 address was just found public
    return ip.is_global and not ip.is_multicast


def refused_url(url: str) -> bool:
    """In production, True for a URL that can be refused without resolving its host: not
    https, or its host is localhost or an IP literal that is not public. Checked when a
    request arrives; delivery checks the resolved addresses again."""
    if not current_app.config.get("PRODUCTION"):
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name: resolved and checked at delivery
    return not is_public_address(host)
