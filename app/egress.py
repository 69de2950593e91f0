"""The SSRF guard: which addresses the hub may connect to on a subscriber's behalf."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressBlocked(OSError):
    """Raised where a connection would go to a forbidden address (an OSError so that
    HTTP clients surface it as a connection failure we can recognise)."""


class EgressPolicy:
    """Public unicast addresses only, unless an operator allows a network explicitly.

    `is_global` already excludes loopback, RFC 1918, link-local (and so 169.254.169.254, the
    cloud metadata address), CGNAT (100.64/10), unique-local IPv6 and reserved ranges.
    """

    def __init__(self, allow: Iterable[IPNetwork] = ()) -> None:
        self.allow = tuple(allow)

    def allows(self, address: str | IPAddress) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allow):
            return True
        return ip.is_global and not ip.is_multicast

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
        self.check_ip_literal(host)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise EgressBlocked(f"{host} does not resolve: {exc.strerror or exc}") from exc
        blocked = sorted({str(i[4][0]) for i in infos if not self.allows(str(i[4][0]))})
        if blocked:
            raise EgressBlocked(f"{host} resolves to non-public {', '.join(blocked)}")
