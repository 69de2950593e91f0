"""The one place JSON is read and written: exact Decimals, plain numbers, and bounds on nesting,
number size and Unicode, so that whatever is accepted can be stored, hashed and sent back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import jsoncodec
from app.jsoncodec import MAX_DEPTH, JsonError, JsonLimit


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_nesting_up_to_the_limit_is_read():
    assert jsoncodec.loads(nested(MAX_DEPTH)) is not None
    assert jsoncodec.loads('{"a":' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1)) is not None


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 253, 10_000, 100_000])
def test_deeper_nesting_is_refused_not_a_recursion_error(levels: int):
    with pytest.raises(JsonLimit, match="nested deeper"):
        jsoncodec.loads(nested(levels))


def test_one_item_too_deep_among_many_shallow_ones_is_found():
    """The walk looks into every object and array, not only the first or last (a bulk body)."""
    shallow = '{"a": [1, {"b": "c"}]}'
    deep_value = '{"k": ' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1)
    items = [shallow] * 500 + [deep_value] + [shallow] * 500
    assert jsoncodec.loads('{"items": [' + ",".join([shallow] * 1001) + "]}") is not None
    with pytest.raises(JsonLimit, match="nested deeper"):
        jsoncodec.loads('{"items": [' + ",".join(items) + "]}")


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert jsoncodec.loads('{"text": "' + "[{" * 500 + '"}') == {"text": "[{" * 500}


def test_a_lone_surrogate_is_refused_and_a_pair_is_a_character():
    with pytest.raises(JsonLimit, match="surrogate"):
        jsoncodec.loads(b'{"name": "\\ud800"}')
    with pytest.raises(JsonLimit, match="surrogate"):
        jsoncodec.loads(b'{"\\udfff": 1}')
    assert jsoncodec.loads(b'"\\ud83d\\ude00"') == "\U0001f600"


@pytest.mark.parametrize(
    "text",
    ["1E+1000000", "1e41", "1.5E41", "1E+40", "1E-41", "0E-1000000", "1" * 41, "1." + "1" * 40],
)
def test_numbers_beyond_the_bounds_are_refused(text: str):
    with pytest.raises(JsonLimit, match="out of range"):
        jsoncodec.loads(f'{{"n": {text}}}')


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",  # 2**64: beyond what orjson writes as an integer
        "-9223372036854775809",
        "123456789012345678901234567890",
        "9223372036854775807",
        "1E+39",
        "1.5E38",
        "0.000001",
    ],
)
def test_numbers_within_the_bounds_are_written_back_as_sent(text: str):
    """Integers beyond 64 bits are kept exactly (a Decimal), not a 500 when written."""
    value = jsoncodec.loads(text)
    assert Decimal(jsoncodec.dumps(value).decode()) == Decimal(text)
    if "E" not in text:
        assert jsoncodec.dumps(value).decode() == text


@settings(max_examples=500)
@given(
    digits=st.integers(min_value=0, max_value=10**45),
    exponent=st.integers(min_value=-60, max_value=60),
    sign=st.sampled_from(["", "-"]),
    style=st.sampled_from(["{d}E{e}", "{d}e{e:+d}", "plain"]),
)
def test_whatever_is_read_is_written_back_and_read_again_as_the_same_number(
    digits: int, exponent: int, sign: str, style: str
):
    """{"n": 1.5E41} was accepted, then written as 42 digits that the read refused: every read
    route of the event answered 500. A number is now judged as it will be written."""
    value = Decimal(f"{sign}{digits}E{exponent}")
    text = format(value, "f") if style == "plain" else style.format(d=f"{sign}{digits}", e=exponent)
    try:
        first = jsoncodec.loads(f'{{"n": {text}}}')
    except JsonLimit:
        return
    written = jsoncodec.dumps(first)
    assert jsoncodec.loads(written) == first
    assert jsoncodec.dumps(jsoncodec.loads(written)) == written


def test_decimals_are_written_in_plain_notation_with_their_digits():
    assert (
        jsoncodec.dumps([Decimal("2E+1"), Decimal("1.50"), Decimal("-0.00")]) == b"[20,1.50,0.00]"
    )


def test_invalid_json_is_an_error_and_not_a_limit():
    for text in (b'{"a": ', b"NaN", b"\xff"):
        with pytest.raises(JsonError) as raised:
            jsoncodec.loads(text)
        assert not isinstance(raised.value, JsonLimit)
