"""The SSRF guard: which addresses the hub may connect to on a subscriber's behalf.

The verdict comes from explicit tables of the IANA special-purpose address registries (IPv4
and IPv6), not from `ipaddress.is_global`, whose answer differs between Python versions and
which lets through addresses that carry a private IPv4 address inside an IPv6 one (NAT64
`64:ff9b::a9fe:a9fe` is the metadata service). An IPv6 address that embeds an IPv4 address
(IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4) is judged by the IPv4 address it embeds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IANA IPv4 Special-Purpose Address Registry entries that are not globally reachable, plus
# multicast and the deprecated 6to4 relay anycast. Checked against the registry of 2024-05.
_V4_SPECIAL = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local: 169.254.169.254 is the cloud metadata service
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 (broadcast)
    )
)
# IPv6: only global unicast (2000::/3) may be dialled; inside it, these are not reachable.
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_SPECIAL = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments (Teredo 2001::/32, benchmarking, ORCHID, …)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix (RFC 6052)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # 6to4: the IPv4 address is bits 16-48
_EMBEDDING_96 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # SIIT, IPv4-translated
        "::/96",  # IPv4-compatible (deprecated); :: and ::1 embed 0.0.0.0 and 0.0.0.1
    )
)


class EgressBlocked(OSError):
    """Raised where a connection would go to a forbidden address (an OSError so that
    HTTP clients surface it as a connection failure we can recognise)."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it stands for one."""
    if ip in _NAT64 or any(ip in network for network in _EMBEDDING_96):
        return ipaddress.IPv4Address(ip.packed[12:])
    if ip in _SIX_TO_FOUR:
        return ipaddress.IPv4Address(ip.packed[2:6])
    return None


def is_public(ip: IPAddress) -> bool:
    """Globally reachable unicast, by the tables above (the same on every Python)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
        return ip in _V6_GLOBAL_UNICAST and not any(ip in n for n in _V6_SPECIAL)
    return not any(ip in network for network in _V4_SPECIAL)


class EgressPolicy:
    """Public unicast addresses only, unless an operator allows a network explicitly."""

    def __init__(self, allow: Iterable[IPNetwork] = ()) -> None:
        self.allow = tuple(allow)

    def allows(self, address: str | IPAddress) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        candidates = (ip,) if inner is None else (ip, inner)
        if any(c in network for c in candidates for network in self.allow):
            return True
        return is_public(ip)

    def check_ip_literal(self, host: str) -> bool:
        """True for an allowed IP literal, False for a name; raises for a forbidden address.

        Hosts written as IP addresses never reach a resolver, so they are checked up front.
        """
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        if not self.allows(ip):
            raise EgressBlocked(f"{ip} is not a public address")
        return True

    async def check_url(self, url: str) -> None:
        """At registration: every address the host resolves to must be allowed."""
        host = urlsplit(url).hostname or ""
        if self.check_ip_literal(host):
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise EgressBlocked(f"{host} does not resolve: {exc}") from exc
        blocked = sorted({str(i[4][0]) for i in infos if not self.allows(str(i[4][0]))})
        if blocked:
            raise EgressBlocked(f"{host} resolves to non-public {', '.join(blocked)}")
