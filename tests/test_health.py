"""Endpoint health rules as a pure function of outcomes: table tests on a frozen timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from app.health import DISABLE_AFTER_MS, FAILING_AFTER, Health, Result, Verdict
from app.health import judge as judge_with

DAY = 24 * 3600 * 1000
BACKOFF = (5_000, 300_000, 1_800_000)
HEALTHY = Health("ep_1", "tn_1", "https://example.com/hook", "active", "active")


def judge(health: Health, results: Sequence[Result]) -> Verdict:
    return judge_with(health, results, BACKOFF)


def fail(n: int, at: int, code: int | None = 500, **kw) -> Result:
    return Result(f"dlv_{n}", at, False, code, "http_5xx" if code else "timeout", **kw)


def ok(n: int, at: int) -> Result:
    return Result(f"dlv_{n}", at, True, 200, None)


def failing() -> Health:
    return judge(HEALTHY, [fail(n, n) for n in range(FAILING_AFTER)]).health


def test_four_failures_keep_an_endpoint_active():
    verdict = judge(HEALTHY, [fail(n, n) for n in range(FAILING_AFTER - 1)])
    assert verdict.health.health == "active" and verdict.notices == ()
    assert not verdict.holding
    assert verdict.health.consecutive_failures == 4 and verdict.health.failing_since == 0


def test_five_in_a_row_make_it_failing_once_and_open_the_circuit():
    """The fifth failure notices endpoint.failing, holds the queue, and schedules a probe."""
    verdict = judge(HEALTHY, [fail(n, n) for n in range(FAILING_AFTER)])
    assert verdict.health.health == "failing" and verdict.hold_all and verdict.holding
    assert [n.type for n in verdict.notices] == ["endpoint.failing"]
    assert verdict.health.probe_at == 4 + BACKOFF[0]
    again = judge(verdict.health, [fail(9, 100)])
    assert again.notices == () and again.holding  # no second notice; still held


def test_failed_probes_back_off_along_the_schedule():
    """One request per step (5 s, then 5 min, 30 min, then the last step), not one per event."""
    h = failing()
    assert h.probe_at == 4 + 5_000
    steps = []
    for n, at in enumerate((10_000, 20_000, 30_000)):
        h = judge(h, [fail(100 + n, at)]).health
        steps.append(h.probe_at - at)
    assert steps == [300_000, 1_800_000, 1_800_000]


def test_a_success_recovers_and_releases_the_queue():
    verdict = judge(failing(), [ok(4, 60_000)])
    assert verdict.health.health == "active" and verdict.release_all and not verdict.holding
    assert verdict.health.consecutive_failures == 0 and verdict.health.probe_at is None
    [notice] = verdict.notices
    assert (notice.type, notice.parameters["failingSince"]) == ("endpoint.recovered", 0)


def test_a_success_between_failures_resets_the_streak():
    verdict = judge(HEALTHY, [fail(1, 1), fail(2, 2), ok(3, 3), fail(4, 4), fail(5, 5)])
    assert verdict.health.consecutive_failures == 2 and verdict.health.failing_since == 4


def test_five_days_of_nothing_but_failures_disable_it():
    almost = judge(failing(), [fail(4, DISABLE_AFTER_MS - 1)])
    assert almost.health.status == "active"
    verdict = judge(almost.health, [fail(4, 5 * DAY)])
    assert (verdict.health.status, verdict.health.disabled_reason) == ("disabled", "failing")
    assert [n.type for n in verdict.notices] == ["endpoint.disabled"]
    assert verdict.hold_all and verdict.health.probe_at is None


def test_410_gone_disables_at_once():
    verdict = judge(HEALTHY, [fail(1, 1, code=410)])
    assert (verdict.health.status, verdict.health.disabled_reason) == ("disabled", "gone")
    assert [n.parameters["reason"] for n in verdict.notices] == ["gone"]


def test_outcomes_for_a_disabled_endpoint_change_nothing():
    disabled = replace(HEALTHY, status="disabled", disabled_reason="manual")
    assert judge(disabled, [fail(1, 1), ok(2, 2)]).health == disabled


def test_exhausted_delivery_notices_message_attempt_exhausted():
    verdict = judge(HEALTHY, [fail(1, 1, exhausted=True, event_id="evt_1", event_type="t")])
    [notice] = verdict.notices
    assert notice.type == "message.attempt.exhausted"
    assert notice.parameters["eventId"] == "evt_1" and notice.parameters["deliveryId"] == "dlv_1"


def test_no_notice_about_an_operational_event_running_out():
    """An endpoint.failing event that cannot be delivered must not beget more notices."""
    verdict = judge(HEALTHY, [fail(1, 1, exhausted=True, event_type="endpoint.failing")])
    assert verdict.notices == ()


def test_outcomes_are_applied_in_time_order():
    verdict = judge(HEALTHY, [ok(2, 20), fail(1, 10)])
    assert verdict.health.consecutive_failures == 0 and verdict.health.last_success_at == 20
