"""Ids sort in minting order, which listings and cursors rely on."""

from __future__ import annotations

from app.ids import id_floor, id_time_ms, new_id


def test_ids_of_one_millisecond_sort_in_minting_order():
    """Without the monotonic step, ids of one millisecond sort by their random bits."""
    minted = [new_id("evt", 1_700_000_000_000) for _ in range(2000)]
    assert minted == sorted(minted)
    assert len(set(minted)) == len(minted)


def test_interleaved_milliseconds_each_stay_ordered():
    """A stored moment minted between two ids of now does not reset now's sequence."""
    for n in range(200):
        now, stored = 1_700_000_001_000 + n, 1_700_000_000_100 + n
        first, _, second = new_id("evt", now), new_id("dlv", stored), new_id("evt", now)
        assert first < second


def test_id_carries_its_millisecond_and_floor_bounds_it():
    value = new_id("evt", 1_700_000_000_123)
    assert id_time_ms(value) == 1_700_000_000_123
    assert id_floor("evt", 1_700_000_000_123) <= value < id_floor("evt", 1_700_000_000_124)
