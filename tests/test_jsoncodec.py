"""The one place JSON is read and written: exact Decimals, plain numbers, and bounds on nesting,
number size and Unicode, so that whatever is accepted can be stored, hashed and sent back."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import jsoncodec
from app.jsoncodec import MAX_DEPTH, JsonError, JsonLimit

Loads = Callable[[str | bytes], Any]


@pytest.fixture(params=["bytes", "text"])
def loads(request: pytest.FixtureRequest) -> Loads:
    """Each bound holds for bytes (a request body: msgspec decodes) and for text alike."""
    if request.param == "bytes":
        return lambda data: jsoncodec.loads(data.encode() if isinstance(data, str) else data)
    return lambda data: jsoncodec.loads(_text(data))


def _text(data: str | bytes) -> str | bytes:
    """Bytes as text when they are UTF-8 (invalid UTF-8 has no text form: kept as bytes)."""
    if isinstance(data, str):
        return data
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_nesting_up_to_the_limit_is_read(loads: Loads):
    assert loads(nested(MAX_DEPTH)) is not None
    assert loads('{"a":' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1)) is not None


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 253, 10_000, 100_000])
def test_deeper_nesting_is_refused_not_a_recursion_error(levels: int, loads: Loads):
    with pytest.raises(JsonLimit, match="nested deeper"):
        loads(nested(levels))


def test_one_item_too_deep_among_many_shallow_ones_is_found(loads: Loads):
    """The walk looks into every object and array, not only the first or last (a bulk body)."""
    shallow = '{"a": [1, {"b": "c"}]}'
    deep_value = '{"k": ' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1)
    items = [shallow] * 500 + [deep_value] + [shallow] * 500
    assert loads('{"items": [' + ",".join([shallow] * 1001) + "]}") is not None
    with pytest.raises(JsonLimit, match="nested deeper"):
        loads('{"items": [' + ",".join(items) + "]}")


def test_brackets_inside_strings_do_not_count_as_nesting(loads: Loads):
    assert loads('{"text": "' + "[{" * 500 + '"}') == {"text": "[{" * 500}


def test_a_lone_surrogate_is_refused_and_a_pair_is_a_character(loads: Loads):
    with pytest.raises(JsonLimit, match="surrogate"):
        loads(b'{"name": "\\ud800"}')
    with pytest.raises(JsonLimit, match="surrogate"):
        loads(b'{"\\udfff": 1}')
    assert loads(b'"\\ud83d\\ude00"') == "\U0001f600"


@pytest.mark.parametrize(
    "text",
    [
        "1E+1000000",
        "1e41",
        "1.5E41",
        "1E+40",
        "1E-41",
        "0E-1000000",
        "1" * 41,
        "1." + "1" * 40,
        "1e-99999999999999999999",  # past the decimal module's own exponent: once a 500
        "0.5e99999999999999999999",
    ],
)
def test_numbers_beyond_the_bounds_are_refused(text: str, loads: Loads):
    with pytest.raises(JsonLimit, match="out of range"):
        loads(f'{{"n": {text}}}')


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
def test_numbers_within_the_bounds_are_written_back_as_sent(text: str, loads: Loads):
    """Integers beyond 64 bits are kept exactly (a Decimal), not a 500 when written."""
    value = loads(text)
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


def test_invalid_json_is_an_error_and_not_a_limit(loads: Loads):
    for text in (b'{"a": ', b"NaN", b"\xff"):
        with pytest.raises(JsonError) as raised:
            loads(text)
        assert not isinstance(raised.value, JsonLimit)


def _written_as_json(n: int) -> int | Decimal:
    """An integer past 64 bits as the Decimal that dumps can write (as loads keeps it)."""
    return n if -(2**63) <= n < 2**64 else Decimal(n)


_json = st.recursive(
    st.none() | st.booleans() | st.text(max_size=8)
    | st.integers(min_value=-(10**30), max_value=10**30).map(_written_as_json)
    | st.decimals(min_value=-(10**30), max_value=10**30, allow_nan=False),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=500)
@given(value=_json, exponent=st.booleans())
def test_the_fast_decoder_reads_every_document_as_the_exact_one_does(value: Any, exponent: bool):
    """msgspec decodes request bodies; it must give the very values (Decimal digits, ints past
    64 bits, strings) the standard library's decoder gives, or refuse with the same error."""
    text = jsoncodec.dumps(value).decode()
    if exponent:  # numbers as a client may write them: 1.5E+3 rather than 1500
        text = text.replace("0,", "0E+2,").replace(".5", ".5e-3")
    data = text.encode()
    try:
        expected = jsoncodec._exact(data)
    except JsonError as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            jsoncodec.loads(data)
        return
    got = jsoncodec.loads(data)
    assert got == expected
    assert jsoncodec.dumps(got) == jsoncodec.dumps(expected)  # the same digits, not only equal
