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
    ],
)
def test_default_policy(address: str, allowed: bool):
    assert EgressPolicy().allows(address) is allowed


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
