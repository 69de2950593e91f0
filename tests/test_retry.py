"""The retry schedule as a pure function: table tests, no clock, no sleeping."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.retry import next_attempt_at

DEFAULT = Settings().retry_schedule
NOW = 1_000_000


@pytest.mark.parametrize(
    ("attempts", "delay_s"),
    [(1, 5), (2, 300), (3, 1800), (4, 7200), (5, 18000), (6, 36000), (7, 36000)],
)
def test_default_schedule_without_jitter(attempts: int, delay_s: int):
    """5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the 1st … 7th failure."""
    assert next_attempt_at(attempts, NOW, DEFAULT) == NOW + delay_s * 1000


def test_exhausted_after_the_eighth_attempt():
    """Eight attempts in all: after the 8th failure there is no next time."""
    assert next_attempt_at(8, NOW, DEFAULT) is None
    assert Settings().max_attempts == 8


@pytest.mark.parametrize(("jitter", "expected_s"), [(-1.0, 4.0), (1.0, 6.0), (0.5, 5.5), (7, 6.0)])
def test_jitter_is_bounded_to_twenty_percent(jitter: float, expected_s: float):
    """The jitter draw scales the delay by at most ±20 %, even if the draw is out of range."""
    assert next_attempt_at(1, NOW, DEFAULT, jitter=jitter) == NOW + round(expected_s * 1000)


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected_s"),
    [
        (2, 400, 400),  # within [300, 600]: honoured
        (2, 10, 300),  # shorter than the schedule: the schedule wins
        (2, 86400, 600),  # a day: clamped to twice the scheduled delay
    ],
)
def test_retry_after_is_clamped(attempts: int, retry_after: float, expected_s: float):
    """Retry-After is honoured within [scheduled delay, 2 × scheduled delay]."""
    due = next_attempt_at(attempts, NOW, DEFAULT, retry_after_s=retry_after)
    assert due == NOW + expected_s * 1000


def test_timeouts_and_429_wait_at_least_a_minute():
    """An overloaded receiver gets a minute even where the schedule says 5 s."""
    assert next_attempt_at(1, NOW, DEFAULT, slow_down=True) == NOW + 60_000
    assert next_attempt_at(3, NOW, DEFAULT, slow_down=True) == NOW + 1_800_000


def test_zero_delays_are_allowed():
    """BILLHOOK_RETRY_SCHEDULE=0s,0s retries at once (tests and impatient operators)."""
    assert next_attempt_at(1, NOW, (0.0, 0.0)) == NOW
    assert next_attempt_at(3, NOW, (0.0, 0.0)) is None


def test_attempt_numbers_start_at_one():
    with pytest.raises(ValueError, match="starting at 1"):
        next_attempt_at(0, NOW, DEFAULT)
