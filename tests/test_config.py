"""Settings are read once from BILLHOOK_* variables, with clear errors for bad values."""

from __future__ import annotations

import ipaddress

import pytest

from app.config import ConfigError, Settings, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("15s", 15),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("0s", 0),
        ("1.5s", 1.5),
    ],
)
def test_durations(text: str, seconds: float):
    assert parse_duration(text) == seconds


def test_defaults_match_the_spec():
    """The documented defaults (api.md's configuration table)."""
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///./data/billhook.db"
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert s.request_timeout == 15 and s.connect_timeout == 5
    assert s.finalize_after == 86400 and s.retention_days == 30
    assert s.timezone == "Europe/Berlin" and s.egress_allow == ()
    assert s.run_api and s.run_worker


def test_environment_is_parsed():
    s = Settings.from_env(
        {
            "BILLHOOK_PORT": "9999",
            "BILLHOOK_WORKER": "off",
            "BILLHOOK_RETRY_SCHEDULE": "1s,2m",
            "BILLHOOK_EGRESS_ALLOW": "127.0.0.0/8, ::1/128",
            "BILLHOOK_FINALIZE_AFTER": "off",
            "BILLHOOK_REQUEST_TIMEOUT": "3s",
        }
    )
    assert s.port == 9999 and not s.run_worker
    assert s.retry_schedule == (1, 120)
    assert s.egress_allow == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert s.finalize_after is None
    assert s.lease_seconds > s.request_timeout


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("BILLHOOK_PORT", "eighty"),
        ("BILLHOOK_RETRY_SCHEDULE", "5 parsecs"),
        ("BILLHOOK_WORKER", "maybe"),
        ("BILLHOOK_EGRESS_ALLOW", "not-a-cidr"),
        ("BILLHOOK_PORT", "70000"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str):
    with pytest.raises(ConfigError, match=var.removeprefix("BILLHOOK_").lower() + "|" + var):
        Settings.from_env({var: value})
