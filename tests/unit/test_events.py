"""events.py: the one validation every ingest path uses."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from swarmdash.events import (
    AGENT_STATUSES,
    ALERT,
    EVENT_TYPES,
    LOG_LEVELS,
    SEVERITIES,
    TASK_STATUSES,
    ValidationError,
    encode,
    is_critical,
    position_of,
    valid_agent_id,
    valid_swarm_name,
    validate_batch,
    wanted,
)

LIMITS = {"max_events": 100, "max_event_bytes": 4096}

VALID: dict[str, dict[str, Any]] = {
    "agent": {"status": "busy"},
    "task": {"task_id": "t-1", "status": "running"},
    "metric": {"name": "cpu", "value": 0.25},
    "log": {"level": "info", "message": "started"},
    "alert": {"severity": "warning", "message": "battery low"},
}


def raw(kind: str = "agent", **over: Any) -> dict[str, Any]:
    event = {"type": kind, "swarm": "alpha", "agent_id": "agent-7", "ts": 1700000000.5,
             "data": copy.deepcopy(VALID[kind])}
    event.update(over)
    return event


def errors_of(value: Any, **limits: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        validate_batch(value, **{**LIMITS, **limits})
    assert info.value.errors, "a ValidationError must list its errors"
    return info.value.errors


def fields_of(value: Any) -> set[str]:
    return {e["field"] for e in errors_of(value)}


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_every_type_accepts_its_minimal_event(kind: str) -> None:
    [event] = validate_batch(raw(kind), **LIMITS)
    assert event == raw(kind)


@pytest.mark.parametrize(("kind", "field"), [
    (kind, name) for kind, data in VALID.items() for name in data])
def test_every_required_data_field_is_required(kind: str, field: str) -> None:
    event = raw(kind)
    del event["data"][field]
    errors = errors_of(event)
    assert [(e["index"], e["field"]) for e in errors] == [(0, f"data.{field}")]


@pytest.mark.parametrize(("kind", "field", "choices"), [
    ("agent", "status", AGENT_STATUSES), ("task", "status", TASK_STATUSES),
    ("log", "level", LOG_LEVELS), ("alert", "severity", SEVERITIES)])
def test_enumerated_fields_accept_their_choices_only(kind: str, field: str,
                                                     choices: tuple[str, ...]) -> None:
    for choice in choices:
        validate_batch(raw(kind, data={**VALID[kind], field: choice}), **LIMITS)
    for bad in ("BUSY", "", None, 1, "unknown"):
        assert fields_of(raw(kind, data={**VALID[kind], field: bad})) == {f"data.{field}"}


@pytest.mark.parametrize(("kind", "field"), [
    ("task", "task_id"), ("metric", "name"), ("log", "message"), ("alert", "message")])
def test_text_fields_must_be_non_empty_strings(kind: str, field: str) -> None:
    for bad in ("", 7, None, ["x"]):
        assert fields_of(raw(kind, data={**VALID[kind], field: bad})) == {f"data.{field}"}


def test_text_length_limits() -> None:
    assert fields_of(raw("task", data={"task_id": "t" * 129, "status": "queued"})) == {
        "data.task_id"}
    validate_batch(raw("task", data={"task_id": "t" * 128, "status": "queued"}), **LIMITS)
    long_message = raw("log", data={"level": "info", "message": "m" * 8193})
    assert fields_of(long_message) == {"data.message"}


def test_metric_unit_is_optional_but_checked() -> None:
    validate_batch(raw("metric", data={"name": "cpu", "value": 1, "unit": "%"}), **LIMITS)
    validate_batch(raw("metric", data={"name": "cpu", "value": 1, "unit": ""}), **LIMITS)
    assert fields_of(raw("metric", data={"name": "cpu", "value": 1, "unit": 5})) == {"data.unit"}
    assert fields_of(raw("metric", data={"name": "cpu", "value": 1, "unit": "u" * 33})) == {
        "data.unit"}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), True, False,
                                   "1.5", None, [1]])
def test_metric_value_must_be_a_finite_number_not_a_bool(value: Any) -> None:
    assert fields_of(raw("metric", data={"name": "cpu", "value": value})) == {"data.value"}


@pytest.mark.parametrize("value", [0, -3, 2.5, 10**12])
def test_metric_value_accepts_finite_numbers(value: float) -> None:
    [event] = validate_batch(raw("metric", data={"name": "cpu", "value": value}), **LIMITS)
    assert event["data"]["value"] == value


@pytest.mark.parametrize("ts", [float("nan"), float("inf"), True, 0, -1, "1700000000"])
def test_bad_ts_is_refused(ts: Any) -> None:
    assert fields_of(raw(ts=ts)) == {"ts"}


def test_server_fills_ts_when_absent_or_null() -> None:
    no_ts = raw()
    del no_ts["ts"]
    [filled] = validate_batch(no_ts, now=1234.5, **LIMITS)
    assert filled["ts"] == 1234.5
    [nulled] = validate_batch(raw(ts=None), now=99.0, **LIMITS)
    assert nulled["ts"] == 99.0
    [kept] = validate_batch(raw(ts=42), now=99.0, **LIMITS)
    assert kept["ts"] == 42


def test_ts_defaults_to_the_wall_clock() -> None:
    no_ts = raw()
    del no_ts["ts"]
    before = time.time()
    [event] = validate_batch(no_ts, **LIMITS)
    assert before <= event["ts"] <= time.time()


def test_unknown_top_level_fields_are_refused() -> None:
    errors = errors_of(raw(id="1-0", extra=1))
    assert {e["field"] for e in errors} == {"id", "extra"}
    assert all("unknown field" in e["error"] for e in errors)


def test_data_may_carry_free_form_fields() -> None:
    [event] = validate_batch(raw("agent", data={"status": "idle", "battery": 0.8,
                                                "pos": [1, 2]}), **LIMITS)
    assert event["data"]["battery"] == 0.8


@pytest.mark.parametrize("data", [None, [], "x", 3])
def test_data_must_be_an_object(data: Any) -> None:
    assert fields_of(raw(data=data)) == {"data"}


@pytest.mark.parametrize("kind", ["telemetry", "", None, 1, ["agent"], {"agent": 1}])
def test_unknown_type_is_refused(kind: Any) -> None:
    assert fields_of(raw(type=kind)) == {"type"}


@pytest.mark.parametrize("swarm", ["", "-lead", "a b", "x" * 65, None, 5, "alpha\n", "é"])
def test_bad_swarm_names(swarm: Any) -> None:
    assert not valid_swarm_name(swarm)
    assert fields_of(raw(swarm=swarm)) == {"swarm"}


@pytest.mark.parametrize("agent_id", ["", "a b", "x" * 129, None, 7, "bot\n", "a#b"])
def test_bad_agent_ids(agent_id: Any) -> None:
    assert not valid_agent_id(agent_id)
    assert fields_of(raw(agent_id=agent_id)) == {"agent_id"}


def test_good_names() -> None:
    assert valid_swarm_name("Alpha_1.eu:west-2")
    assert valid_swarm_name("x" * 64)
    assert valid_agent_id("robot@site/arm:3")
    assert valid_agent_id("x" * 128)


def test_a_non_object_event_is_refused() -> None:
    errors = errors_of(["not an event"])
    assert errors == [{"index": 0, "field": "", "error": "an event must be a JSON object"}]


def test_all_problems_of_one_event_are_listed() -> None:
    errors = errors_of({"type": "agent", "swarm": "", "agent_id": "", "data": {}})
    assert {e["field"] for e in errors} == {"swarm", "agent_id", "data.status"}
    assert {e["index"] for e in errors} == {0}


def test_one_bad_event_rejects_the_whole_batch_with_per_item_errors() -> None:
    batch = [raw("agent"), raw("log"), raw("metric", data={"name": "cpu", "value": "high"}),
             raw("task"), raw("alert", data={"severity": "meh", "message": "x"}, extra=1)]
    errors = errors_of(batch)
    assert sorted((e["index"], e["field"]) for e in errors) == [
        (2, "data.value"), (4, "data.severity"), (4, "extra")]
    assert all(e["error"] for e in errors)


def test_a_valid_batch_keeps_order_and_returns_normalised_copies() -> None:
    batch = [raw("agent"), raw("log"), raw("task")]
    events = validate_batch(batch, **LIMITS)
    assert [e["type"] for e in events] == ["agent", "log", "task"]
    assert list(events[0]) == ["type", "swarm", "agent_id", "ts", "data"]


def test_a_single_event_may_be_given_without_a_list() -> None:
    assert len(validate_batch(raw(), **LIMITS)) == 1


def test_empty_batch_is_refused() -> None:
    errors = errors_of([])
    assert errors[0]["index"] is None and "no events" in errors[0]["error"]


def test_count_limit() -> None:
    assert len(validate_batch([raw()] * 3, max_events=3, max_event_bytes=4096)) == 3
    errors = errors_of([raw()] * 4, max_events=3)
    assert errors[0]["index"] is None and "limit 3" in errors[0]["error"]


def test_size_limit_counts_the_encoded_event() -> None:
    event = raw("log", data={"level": "info", "message": "m" * 300})
    size = len(encode(validate_batch(event, **LIMITS)[0]))
    validate_batch(event, max_events=10, max_event_bytes=size)
    errors = errors_of([raw(), event], max_event_bytes=size - 1)
    assert len(errors) == 1 and errors[0]["index"] == 1
    assert f"limit {size - 1}" in errors[0]["error"]


def test_nan_hidden_in_data_is_refused() -> None:
    errors = errors_of(raw("agent", data={"status": "idle", "temp": float("nan")}))
    assert errors[0]["field"] == "data"
    assert "not encodable" in errors[0]["error"]


def test_validation_error_message_names_the_first_field() -> None:
    with pytest.raises(ValidationError, match=r"data\.status"):
        validate_batch(raw(data={}), **LIMITS)


def test_encode_is_compact_and_refuses_nan() -> None:
    assert encode({"a": [1, 2], "é": "ü"}) == '{"a":[1,2],"é":"ü"}'
    with pytest.raises(ValueError):
        encode({"v": float("inf")})
    assert json.loads(encode(raw())) == raw()


def _ev(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "swarm": "s", "agent_id": "a", "ts": 1.0, "data": data}


@pytest.mark.parametrize(("status", "critical"), [
    ("error", True), ("offline", True), ("busy", False), ("idle", False)])
def test_is_critical(status: str, critical: bool) -> None:
    assert is_critical(_ev("agent", status=status)) is critical
    assert not is_critical(_ev("task", status=status))


def test_wanted_and_channel_key() -> None:
    logs_only = frozenset({"log"})
    with_agents = frozenset({"agent", "log"})
    assert wanted(_ev("log"), logs_only)
    assert not wanted(_ev("metric"), logs_only)
    assert not wanted(_ev("agent", status="busy"), logs_only)
    # alerts and critical agent updates reach every subscriber of the swarm
    assert wanted(_ev("alert"), logs_only)
    assert wanted(_ev("agent", status="offline"), logs_only)
    assert position_of(_ev("alert"), with_agents) == ALERT
    assert position_of(_ev("agent", status="offline"), logs_only) == ALERT
    assert position_of(_ev("agent", status="offline"), with_agents) == "agent"
    assert position_of(_ev("log"), with_agents) == "log"
