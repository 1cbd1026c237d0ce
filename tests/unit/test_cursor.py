"""cursor.py: stream IDs and the per-channel resume cursor."""

from __future__ import annotations

import pytest

from swarmdash.cursor import KEYS, ZERO, Cursor, event_id, format_id, parse_id


def test_parse_and_format_ids() -> None:
    assert parse_id("1700000000000-3") == (1700000000000, 3)
    assert parse_id("42") == (42, 0)
    assert format_id((5, 0)) == "5-0"
    assert parse_id(format_id((2**64 - 1, 2**64 - 1))) == (2**64 - 1, 2**64 - 1)
    assert event_id({"type": "log", "id": "1700000000000-3"}) == (1700000000000, 3)


@pytest.mark.parametrize("text", ["", "abc", "1-", "-1", "1-2-3", " 1-0", "1-0 ", "1-0\n",
                                  "1.5-0", "+1-0", "٣-0", "1" * 21, "18446744073709551616-0",
                                  "1-18446744073709551616"])
def test_parse_id_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_id(text)


def test_plain_id_when_all_positions_are_equal() -> None:
    cursor = Cursor.from_positions((10, 2), {k: (10, 2) for k in KEYS})
    assert cursor.encode() == "10-2"
    assert Cursor.at((10, 2)).encode() == "10-2"
    assert Cursor.decode("10-2") == cursor


def test_composite_when_some_channel_is_behind() -> None:
    cursor = Cursor.from_positions((10, 0), {"log": (7, 1), "agent": (10, 0), "metric": (3, 0)})
    text = cursor.encode()
    assert text == "10-0;log=7-1;metric=3-0"  # sorted keys, only those behind
    decoded = Cursor.decode(text)
    assert decoded == cursor
    assert decoded.position("log") == (7, 1)
    assert decoded.position("metric") == (3, 0)
    assert decoded.position("agent") == (10, 0)
    assert decoded.position("alert") == (10, 0)
    assert decoded.lowest == (3, 0)


@pytest.mark.parametrize("positions", [
    {}, {"log": (1, 0)}, {"agent": (0, 0), "task": (4, 9), "alert": (5, 0)},
    {k: (i, i) for i, k in enumerate(KEYS)}])
def test_round_trip(positions: dict[str, tuple[int, int]]) -> None:
    cursor = Cursor.from_positions((9, 9), positions)
    again = Cursor.decode(cursor.encode())
    assert again == cursor
    for key in KEYS:
        assert again.position(key) == positions.get(key, (9, 9))


def test_a_position_equal_to_base_is_dropped() -> None:
    assert Cursor.decode("5-0;log=5-0").encode() == "5-0"


@pytest.mark.parametrize("text", [
    "", "garbage", "5-0;", "5-0;log", "5-0;log=", "5-0;log=x", "5-0;log=6-0",  # ahead of base
    "5-0;bogus=1-0", "5-0;log=1-0;log=2-0", "5-0;id=1-0", ";log=1-0", "x" * 600])
def test_invalid_cursors_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        Cursor.decode(text)


def test_decode_refuses_non_strings() -> None:
    for value in (None, 5, ["1-0"]):
        with pytest.raises(ValueError):
            Cursor.decode(value)  # type: ignore[arg-type]


def test_advanced_moves_every_key_up_to_at_least_the_given_id() -> None:
    cursor = Cursor.decode("10-0;log=4-0;metric=8-0")
    assert cursor.advanced((6, 0)).encode() == "10-0;log=6-0;metric=8-0"
    assert cursor.advanced((12, 0)).encode() == "12-0"
    assert cursor.advanced((2, 0)) == cursor  # never moves backwards
    assert Cursor.at(ZERO).advanced((3, 1)).encode() == "3-1"
