"""A worker's per-endpoint state: depth from observed latency, rate-limit tokens, and lanes
forgotten once idle, so memory follows the endpoints being served."""

from __future__ import annotations

from app.lanes import FORGET_AFTER_S, Lane, Lanes


def test_idle_lanes_are_forgotten_and_busy_ones_kept():
    now = [0.0]
    lanes = Lanes(lambda: now[0])
    for n in range(1000):
        lanes[f"ep_{n}"].observe(0.05)
    lanes["ep_busy"].busy = 1
    now[0] += FORGET_AFTER_S + 61
    lanes.forget_idle()
    assert [endpoint for endpoint, _ in lanes.items()] == ["ep_busy"]


def test_depth_follows_latency_within_bounds():
    lane = Lane()
    assert lane.depth(8) == 16  # not measured yet: 2× concurrency
    lane.observe(0.5)
    assert lane.depth(8) == 8 * 4  # ~2 s of work at 0.5 s each
    lane.observe(10.0)
    assert lane.depth(8) == 8  # at least one round of slots


def test_a_rate_limit_bounds_the_depth_to_two_seconds_of_its_rate():
    """More would wait in the queue past their leases (the stall of a rate-limited backlog)."""
    lane = Lane()
    lane.observe(0.001)
    assert lane.depth(8) == 8 * 64
    assert lane.token(5, lambda: 0.0)
    assert lane.depth(8) == 10


def test_tokens_refill_at_the_rate():
    now = [0.0]
    lane = Lane()
    assert sum(lane.token(5, lambda: now[0]) for _ in range(10)) == 5
    now[0] += 0.4
    assert sum(lane.token(5, lambda: now[0]) for _ in range(10)) == 2
