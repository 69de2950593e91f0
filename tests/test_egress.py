"""The SSRF guard: only public unicast addresses, unless an operator allows a network."""

from __future__ import annotations

import ipaddress

import pytest

from app.egress import EgressBlocked, EgressPolicy


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # CGNAT
        ("224.0.0.1", False),  # multicast
        ("0.0.0.0", False),
        ("::1", False),
        ("fd00:ec2::254", False),  # AWS metadata over IPv6 (unique local)
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        # What `is_global` let through on this Python (the outside test's findings):
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254, the metadata service
        ("64:ff9b::7f00:1", False),  # NAT64 of loopback
        ("64:ff9b::5db8:d822", True),  # NAT64 of a public address is fine
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 prefix
        ("2002:7f00:1::1", False),  # 6to4 embedding 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 embedding 10.0.0.1
        ("2002:5db8:d822::1", True),  # 6to4 of a public address
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::a9fe:a9fe", False),
        ("::ffff:0:7f00:1", False),  # SIIT (IPv4-translated) loopback
        ("::ffff:0:a9fe:a9fe", False),
        ("fec0::1", False),  # site-local
        ("192.0.0.8", False),  # IETF protocol assignments (192.0.0.0/24)
        ("192.0.0.170", False),  # NAT64 discovery
        # More of the IANA registries:
        ("2001::1", False),  # Teredo
        ("2001:db8::1", False),  # documentation
        ("3fff::1", False),  # documentation (2024)
        ("100::1", False),  # discard-only
        ("5f00::1", False),  # segment routing
        ("ff02::1", False),  # multicast
        ("fc00::1", False),  # unique local
        ("198.18.0.1", False),  # benchmarking
        ("192.0.2.1", False),  # documentation
        ("203.0.113.9", False),
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("192.88.99.1", False),  # 6to4 relay anycast
        ("8.8.8.8", True),
        ("2a00:1450:4001::1", True),
    ],
)
def test_default_policy(address: str, allowed: bool):
    assert EgressPolicy().allows(address) is allowed


def test_the_verdict_does_not_depend_on_is_global(monkeypatch: pytest.MonkeyPatch):
    """The tables decide, so a Python whose is_global says otherwise changes nothing."""
    monkeypatch.setattr(ipaddress.IPv4Address, "is_global", property(lambda self: True))
    monkeypatch.setattr(ipaddress.IPv6Address, "is_global", property(lambda self: True))
    assert not EgressPolicy().allows("10.0.0.1")
    assert not EgressPolicy().allows("64:ff9b::a9fe:a9fe")


def test_an_allowed_network_covers_the_ipv4_an_address_embeds():
    policy = EgressPolicy([ipaddress.ip_network("127.0.0.0/8")])
    assert policy.allows("::ffff:127.0.0.1")
    assert policy.allows("64:ff9b::7f00:1")
    assert not policy.allows("64:ff9b::a00:1")


def test_allow_list_opens_exceptions():
    policy = EgressPolicy([ipaddress.ip_network("127.0.0.0/8")])
    assert policy.allows("127.0.0.1")
    assert not policy.allows("10.0.0.1")


async def test_registration_check_resolves_names():
    """'localhost' is refused because of what it resolves to, not because of its name."""
    with pytest.raises(EgressBlocked, match="non-public"):
        await EgressPolicy().check_url("http://localhost:8000/hook")
    with pytest.raises(EgressBlocked):
        await EgressPolicy().check_url("http://127.0.0.1/hook")
    await EgressPolicy(
        [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    ).check_url("http://localhost:8000/hook")
