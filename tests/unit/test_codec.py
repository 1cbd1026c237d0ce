"""The hot-path JSON codec: the standard library's compact output, faster, with the
standard library's behaviour where orjson refuses."""

from __future__ import annotations

import json

import pytest

from swarmdash import codec

BATCH = ["agent_update_batch", {"type": "agent", "swarm": "s1", "count": 2, "batch": [
    {"id": "1795-0", "agent_id": "a-1", "ts": 1795755090.39,
     "data": {"status": "busy", "note": "naïve ✓ \"quoted\" \\ </script>"}},
    {"id": "1795-1", "agent_id": "a-2", "ts": 0.1, "data": {"value": -1.5e-7, "n": None}}]}]


def test_compact_json_that_reads_back_the_same() -> None:
    text = codec.dumps(BATCH, separators=(",", ":"))
    assert ", " not in text and ": " not in text and "✓" in text  # compact, UTF-8
    assert json.loads(text) == BATCH
    stdlib = json.dumps(BATCH, separators=(",", ":"), ensure_ascii=False)
    assert codec.loads(stdlib) == BATCH
    assert codec.loads(stdlib.encode()) == BATCH


@pytest.mark.parametrize("value", [10 ** 30, {1: "int key"}])
def test_what_orjson_refuses_to_encode_goes_to_the_standard_library(value: object) -> None:
    assert codec.dumps(value) == json.dumps(value, separators=(",", ":"))


def test_what_orjson_refuses_to_decode_goes_to_the_standard_library() -> None:
    assert codec.loads(str(2 ** 63 - 1)) == 2 ** 63 - 1  # exact up to 64 bits (ingest's range)
    value = codec.loads("[NaN]")[0]
    assert value != value  # NaN, as the standard library reads it
    with pytest.raises(ValueError):
        codec.loads("{not json")


def test_ingest_refuses_integers_beyond_64_bits_and_names_the_field() -> None:
    from swarmdash.events import ValidationError, validate_batch

    ok = {"type": "log", "swarm": "s", "agent_id": "a",
          "data": {"level": "info", "message": "m", "seq": 2 ** 63 - 1, "big": 1.5e300}}
    assert validate_batch(ok, max_events=10, max_event_bytes=65536)
    bad = {**ok, "data": {**ok["data"], "items": [1, {"n": -(2 ** 63) - 1}]}}
    with pytest.raises(ValidationError) as refused:
        validate_batch([ok, bad], max_events=10, max_event_bytes=65536)
    [error] = refused.value.errors
    assert error["index"] == 1 and error["field"] == "data.items[1].n"
    assert "64 bits" in error["error"]
