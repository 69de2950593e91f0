"""When to try again: a pure function of the attempt count, the outcome and the stored schedule."""

from __future__ import annotations

from collections.abc import Sequence

JITTER = 0.2
SLOW_DOWN_FLOOR_S = 60.0


def next_attempt_at(
    attempts: int,
    now_ms: int,
    schedule: Sequence[float],
    *,
    jitter: float = 0.0,
    retry_after_s: float | None = None,
    slow_down: bool = False,
) -> int | None:
    """The time of the next attempt after `attempts` failed ones, or None when exhausted.

    `jitter` is a draw from [-1, 1] (the caller's random source) scaled to ±20 %.
    `retry_after_s` (429/503) is honoured but clamped to [delay, 2 × delay] so a receiver can
    neither hammer us into a tight loop nor park a delivery for days. `slow_down` (a timeout or a
    429) waits at least a minute: the receiver is overloaded, not merely unlucky.
    """
    if attempts < 1:
        raise ValueError("attempts counts the failed attempts so far, starting at 1")
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1] * (1.0 + JITTER * max(-1.0, min(1.0, jitter)))
    if retry_after_s is not None:
        delay = min(max(retry_after_s, delay), 2 * delay)
    if slow_down:
        delay = max(delay, SLOW_DOWN_FLOOR_S)
    return now_ms + round(delay * 1000)
