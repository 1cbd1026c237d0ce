"""Hypothesis strategies for bad (and good) input, each with what the node must answer.

The rules are restated here from docs/protocol.md rather than imported from the product,
so a test compares the node with the published contract, not with itself.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

EVENT_TYPES = ("agent", "task", "metric", "log", "alert")
CHANNELS = ("agent", "task", "metric", "log")
TOP_LEVEL = ("type", "swarm", "agent_id", "ts", "data")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
AGENT_ID = re.compile(r"[A-Za-z0-9_.:@/-]{1,128}")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: data fields each type requires: (name, valid values, or None for free text of <= limit)
REQUIRED: dict[str, dict[str, tuple[str, ...] | int]] = {
    "agent": {"status": ("idle", "busy", "processing", "waiting", "error", "offline")},
    "task": {"task_id": 128, "status": ("queued", "running", "completed", "failed")},
    "metric": {"name": 128, "value": 0},  # 0: a finite number
    "log": {"level": ("debug", "info", "warning", "error", "critical"), "message": 8192},
    "alert": {"severity": ("info", "warning", "error", "critical"), "message": 8192},
}
MAX_DOUBLE = 1.7976931348623157e308

# --- JSON values -------------------------------------------------------------------------

#: Integers an event may carry: signed 64-bit (ingest refuses others, see "big_int").
INT64 = st.integers(-(2**63), 2**63 - 1)
scalars = (st.none() | st.booleans() | INT64
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
#: Small JSON values, two levels deep: generation time, not size, bounds how many inputs a
#: run can try (st.recursive costs several times more per value).
_flat = (st.lists(scalars, max_size=3)
         | st.dictionaries(st.text(max_size=6), scalars, max_size=3))
json_values: st.SearchStrategy[Any] = (
    scalars | _flat | st.lists(_flat, max_size=2)
    | st.dictionaries(st.text(max_size=6), _flat, max_size=2))


def not_in(choices: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Any JSON value except the given ones (booleans are not numbers, 1 is not "1")."""
    return json_values.filter(lambda v: not any(v == c and type(v) is type(c) for c in choices))


#: The swarm a scoped API key of the fuzzed nodes may publish to (see conftest.Credentials).
SCOPED_SWARM = "alpha"
_ALNUM = string.ascii_letters + string.digits
# (st.text over an alphabet is several times cheaper to draw than st.from_regex)
names = st.sampled_from([SCOPED_SWARM, "beta"]) | st.builds(
    str.__add__, st.sampled_from(_ALNUM), st.text(_ALNUM + "_.:-", max_size=63))
agent_ids = st.text(_ALNUM + "_.:@/-", min_size=1, max_size=128)
bad_names = st.one_of(
    st.text(max_size=70).filter(lambda s: not NAME.fullmatch(s)),
    st.from_regex(r"[_.:-][A-Za-z0-9]{0,5}", fullmatch=True),
    st.integers(65, 200).map(lambda n: "s" * n),
    st.sampled_from(["alpha\n", " alpha", "al pha", "*", "", "a/b"]),
    json_values.filter(lambda v: not isinstance(v, str)))
bad_agent_ids = st.one_of(
    st.text(max_size=140).filter(lambda s: not AGENT_ID.fullmatch(s)),
    st.integers(129, 300).map(lambda n: "a" * n),
    st.sampled_from(["a1\n", "", "a b", "a#1", "ü"]),
    json_values.filter(lambda v: not isinstance(v, str)))


@dataclass
class Item:
    """One element of an ingest request and the verdict the contract gives it."""

    raw: Any
    field: str | None = None  # the field an error must name; None: the event is valid
    check_field: bool = True  # False: invalid, but more than one field may be at fault

    @property
    def valid(self) -> bool:
        return self.field is None


# Every strategy is built once, here: a strategy made inside a draw is validated again on
# each use, which costs more than the draw itself.
finite_numbers = INT64 | st.floats(allow_nan=False, allow_infinity=False)
positive_ts = st.floats(min_value=1e-6, max_value=1e12) | st.integers(1, 2**53)
not_numbers = json_values.filter(lambda v: not isinstance(v, int | float) or isinstance(v, bool))
not_strings = json_values.filter(lambda v: not isinstance(v, str))
not_objects = json_values.filter(lambda v: not isinstance(v, dict))
booleans = st.booleans()


def texts(limit: int) -> st.SearchStrategy[str]:
    """Non-empty text within ``limit``; now and then exactly at the limit."""
    return st.text(min_size=1, max_size=30) | st.sampled_from(["x" * limit, "\u00e9" * limit])


def _valid_value(rule: tuple[str, ...] | int) -> st.SearchStrategy[Any]:
    if isinstance(rule, tuple):
        return st.sampled_from(rule)
    return finite_numbers if rule == 0 else texts(rule)


def _invalid_value(rule: tuple[str, ...] | int) -> st.SearchStrategy[Any]:
    if isinstance(rule, tuple):
        return not_in(rule) | st.sampled_from([r.upper() for r in rule])
    if rule == 0:  # a finite number: not a number, a bool, NaN, infinite, beyond a double
        return not_numbers | st.sampled_from(
            [float("nan"), float("inf"), -float("inf"), 10**400, -(10**309)])
    return st.sampled_from(["", "x" * (rule + 1)]) | not_strings


#: data fields an event may carry besides the checked ones (never one of those)
_EXTRAS = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in {"unit", "padding", "note", "extra_nan",
                                                   "extra_big"}
                               and all(k not in rules for rules in REQUIRED.values())),
    json_values, max_size=2)
_DATA = {kind: st.tuples(st.fixed_dictionaries({n: _valid_value(r) for n, r in rules.items()},
                                               optional={"unit": st.text(max_size=32)}
                                               if kind == "metric" else None), _EXTRAS)
         .map(lambda pair: {**pair[1], **pair[0]})
         for kind, rules in REQUIRED.items()}
_CHECKED = {kind: [*rules, *(["unit"] if kind == "metric" else [])]
            for kind, rules in REQUIRED.items()}
_BAD_VALUE = {(kind, name): (st.integers(33, 80).map("u".__mul__) | not_strings
                             if name == "unit" else _invalid_value(rules[name]))
              for kind, rules in REQUIRED.items() for name in _CHECKED[kind]}
_TS = st.none() | st.just("absent") | positive_ts
_KINDS = st.sampled_from(EVENT_TYPES)
_FAULTS = st.sampled_from(["unknown", "type", "swarm", "agent_id", "ts", "data", "data_field",
                           "nan_in_data", "big_int", "surrogate", "too_big",
                           "too_many_bytes"])
_UNKNOWN_KEYS = st.text(min_size=1, max_size=80).filter(lambda k: k not in TOP_LEVEL)
_BAD_TYPES = not_in(EVENT_TYPES) | st.sampled_from(["Agent", "alerts"])
_BAD_TS = st.sampled_from([0, -1, -0.5, 0.0, float("nan"), float("inf"), 10**400]) | \
    json_values.filter(lambda v: v is not None and (
        not isinstance(v, int | float) or isinstance(v, bool) or v <= 0))
_SURROGATES = st.sampled_from(["\ud800", "a\udfff", "\udc00z"])
_NAN = st.sampled_from([float("nan"), float("inf")])
_BIG_INTS = st.integers(2**63, 2**70) | st.integers(-(2**70), -(2**63) - 1)
_BIG = st.integers(66_000, 70_000)
_WIDE = st.integers(22_000, 30_000)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(_KINDS)
    event: dict[str, Any] = {"type": kind, "swarm": draw(names), "agent_id": draw(agent_ids),
                             "data": draw(_DATA[kind])}
    ts = draw(_TS)
    if ts != "absent":
        event["ts"] = ts
    return event


def _bad_data_field(draw: st.DrawFn, kind: str, data: dict[str, Any]) -> str:
    """Break one required (or optional but checked) ``data`` field; return its name."""
    name = draw(st.sampled_from(_CHECKED[kind]))
    if name != "unit" and draw(booleans):
        del data[name]
    else:
        data[name] = draw(_BAD_VALUE[kind, name])
    return f"data.{name}"


@st.composite
def invalid_events(draw: st.DrawFn) -> Item:
    """A valid event with exactly one fault, and the field the error must name."""
    event = draw(valid_events())
    kind = event["type"]
    fault = draw(_FAULTS)
    if fault == "unknown":
        key = draw(_UNKNOWN_KEYS)
        event[key] = draw(json_values)
        return Item(event, key[:64])
    if fault in ("type", "swarm", "agent_id", "data"):
        if draw(booleans):
            del event[fault]
        else:
            event[fault] = draw({"type": _BAD_TYPES, "swarm": bad_names,
                                 "agent_id": bad_agent_ids, "data": not_objects}[fault])
        return Item(event, fault)
    if fault == "ts":
        event["ts"] = draw(_BAD_TS)
        return Item(event, "ts")
    if fault == "data_field":
        return Item(event, _bad_data_field(draw, kind, event["data"]))
    if fault == "nan_in_data":
        event["data"]["extra_nan"] = draw(_NAN)
        return Item(event, "data")
    if fault == "big_int":  # beyond 64 bits: not every JSON reader keeps it exact
        event["data"]["extra_big"] = draw(_BIG_INTS)
        return Item(event, "data.extra_big")
    if fault == "surrogate":  # valid JSON ("\\ud800"), but no Unicode text: cannot be stored
        event["data"]["note"] = draw(_SURROGATES)
        return Item(event, "data")
    if fault == "too_big":  # over MAX_EVENT_BYTES (64 KiB by default)
        event["data"]["padding"] = "p" * draw(_BIG)
    else:  # fewer characters than MAX_EVENT_BYTES, but more bytes
        event["data"]["padding"] = "\u20ac" * draw(_WIDE)
    return Item(event, "")


items = st.one_of(
    valid_events().map(Item),
    invalid_events(),
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: Item(v, "")),
    st.dictionaries(st.text(max_size=8), json_values, max_size=5).map(
        lambda d: Item(d, "?", check_field=False)),  # {} and friends: never a valid event
)


def dumps(value: Any) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity literals included."""
    return json.dumps(value, allow_nan=True).encode()


#: Who sends a request: an all-swarms API key, a key for SCOPED_SWARM only, or a bad one.
CREDENTIALS_OK = ("all", "all", "all", "all", "scoped")
CREDENTIALS_BAD = ("missing", "unknown", "basic", "empty_bearer", "viewer_token")


@dataclass
class IngestRequest:
    body: bytes
    content_type: str | None
    idempotency_key: str | None
    credential: str
    items: list[Item] | None = None  # None: the body is not a list or object of events
    single: bool = False  # the body is one object, not an array
    expect: int = 202
    why: str = ""
    problems: list[Item] = field(default_factory=list)


CONTENT_TYPES_OK = ("application/json", "application/json; charset=utf-8",
                    "application/vnd.swarm+json")
CONTENT_TYPES_BAD = (None, "text/plain", "application/x-www-form-urlencoded",
                     "multipart/form-data; boundary=x", "application/jsonx", "json")


def ingest_requests(max_events: int, max_payload: int) -> st.SearchStrategy[IngestRequest]:
    """POST /api/v1/events requests, each with the status the contract gives it."""
    shapes = st.sampled_from(["valid", "valid", "valid", "batch", "batch", "single", "garbage",
                              "huge", "too_many", "empty"])
    batches = {"valid": st.lists(valid_events().map(Item), min_size=1, max_size=max_events),
               "batch": st.lists(items, min_size=1, max_size=max_events)}
    singles = items.filter(lambda i: not isinstance(i.raw, list))
    garbage = st.one_of(  # not JSON at all, truncated, or nested past any parser
        st.binary(max_size=64).filter(lambda b: not _is_json(b)),
        valid_events().map(lambda e: dumps([e])[:-1]),
        st.integers(1_000, 200_000).map(lambda n: b"[" * n),
        st.integers(1_000, 200_000).map(lambda n: b"[" * n + b"]" * n),
        st.sampled_from([b"", b"\xff\xfe{}", b'"\\ud800', b"[1,]", b"{'a': 1}", b"NaN]"]))
    too_many = st.integers(max_events + 1, max_events * 3)
    content_types = st.sampled_from(CONTENT_TYPES_OK * 3 + CONTENT_TYPES_BAD)
    keys = (st.none() | st.sampled_from(["k1", "k2", "k3"])
            | st.text(_ALNUM + "_.:-", min_size=1, max_size=128)
            | st.text(st.characters(codec="latin-1", exclude_categories=("Cc",)),
                      max_size=140).filter(lambda k: not IDEMPOTENCY_KEY.fullmatch(k)))
    credentials = st.sampled_from(CREDENTIALS_OK * 3 + CREDENTIALS_BAD)

    @st.composite
    def build(draw: st.DrawFn) -> IngestRequest:
        shape = draw(shapes)
        parsed: list[Item] | None = None
        single = False
        if shape in batches:
            parsed = draw(batches[shape])
            body = dumps([i.raw for i in parsed])
        elif shape == "single":
            parsed, single = [draw(singles)], True
            body = dumps(parsed[0].raw)
        elif shape == "garbage":
            body = draw(garbage)
        elif shape == "huge":
            body = b"[" + b" " * max_payload + b"]"
        elif shape == "too_many":
            body = dumps([{"type": "log"}] * draw(too_many))
        else:
            body = b"[]"
        req = IngestRequest(body, draw(content_types), draw(keys), draw(credentials), parsed,
                            single)
        _judge(req, shape, max_events, max_payload)
        return req

    return build()


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def _judge(req: IngestRequest, shape: str, max_events: int, max_payload: int) -> None:
    """Fill in the status the contract gives ``req``, checking in the documented order."""
    if req.credential in CREDENTIALS_BAD:
        req.expect, req.why = 401, "API key"
    elif req.content_type not in CONTENT_TYPES_OK:
        req.expect, req.why = 415, "content type"
    elif req.idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(req.idempotency_key):
        req.expect, req.why = 400, "Idempotency-Key"
    elif len(req.body) > max_payload:
        req.expect, req.why = 413, "MAX_PAYLOAD_BYTES"
    elif shape == "garbage":
        req.expect, req.why = 400, "invalid JSON"
    elif shape == "too_many":
        req.expect, req.why = 413, "limit"
    elif shape == "empty":
        req.expect, req.why = 400, "no events"
    else:
        assert req.items is not None
        req.problems = [i for i in req.items if not i.valid]
        if req.problems:
            req.expect, req.why = 400, "invalid event"
        elif req.credential == "scoped" and any(i.raw["swarm"] != SCOPED_SWARM
                                                for i in req.items):
            req.expect, req.why = 403, "swarm"
        else:
            req.expect, req.why = 202, ""


# --- query parameters --------------------------------------------------------------------------

#: Strings that look like cursors (valid, ahead, malformed) and that do not.
cursor_like = st.one_of(
    st.builds("{}-{}".format, st.integers(0, 2**64 + 5), st.integers(0, 2**64 + 5)),
    st.integers(0, 10**21).map(str),
    st.builds(lambda base, parts: ";".join([base, *parts]),
              st.builds("{}-{}".format, st.integers(0, 2**45), st.integers(0, 9)),
              st.lists(st.builds("{}={}-{}".format, st.sampled_from([*CHANNELS, "alert"]),
                                 st.integers(0, 2**45), st.integers(0, 9)), max_size=3)),
    st.sampled_from(["0", "0-0", "1-0;log=0-0", "1-0;log=2-0", "1-0;log=0-0;log=0-0",
                     "1-0;bogus=0-0", "18446744073709551615-18446744073709551615",
                     "18446744073709551616-0", "99999999999999999999999", "-1", "1--1",
                     "1-0;", ";", "٣-0", "0" * 513]),
    st.text(max_size=40))


_QUERY_VALUES = {
    "swarm": names | st.just("*") | st.just("") | bad_names.filter(lambda v: isinstance(v, str)),
    "agent_id": agent_ids | st.just("") | bad_agent_ids.filter(lambda v: isinstance(v, str)),
    "channels": st.lists(st.sampled_from([*CHANNELS, "alert", "", "LOG", "x"]),
                         max_size=5).map(",".join) | st.text(max_size=20),
    "since": cursor_like,
    "limit": st.integers(-5, 5000).map(str) | st.sampled_from(
        ["", "abc", "1.5", "1e3", " 7", "0x10", "1_0", "\u0663", "007", "9" * 5000]),
}
_QUERY_PRESENT = st.fixed_dictionaries({name: booleans for name in _QUERY_VALUES})
_STRAY = st.tuples(st.integers(0, 9), st.text(min_size=1, max_size=10), st.text(max_size=10))


@st.composite
def query_strings(draw: st.DrawFn) -> dict[str, str]:
    """Query parameters for GET /api/v1/events and /api/v1/snapshot, mostly plausible."""
    present = draw(_QUERY_PRESENT)
    params = {name: draw(_QUERY_VALUES[name]) for name, on in present.items() if on}
    dice, name, value = draw(_STRAY)
    if dice == 0:
        params[name] = value
    return params


# --- Socket.IO ---------------------------------------------------------------------------------

_good_subscriptions = st.fixed_dictionaries(
    {"swarm": names | st.just("*")},
    optional={"channels": st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4),
              "agent_id": agent_ids | st.none(), "since": st.sampled_from(["0-0", "1-0"])})


_SUB_CHANNELS = (st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4)
                 | st.lists(st.sampled_from([*CHANNELS, "alert", "", 1, None]), max_size=4)
                 | json_values)
_SUB_FIELDS = st.fixed_dictionaries({}, optional={
    "swarm": names | st.just("*") | bad_names, "channels": _SUB_CHANNELS,
    "agent_id": agent_ids | st.none() | bad_agent_ids, "since": cursor_like | json_values})
_STRAY_FIELD = st.tuples(st.integers(0, 6), st.text(max_size=8), json_values)


@st.composite
def subscribe_payloads(draw: st.DrawFn) -> Any:
    """subscribe/unsubscribe payloads: good ones, and objects with wrong fields, and junk."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(json_values)
    if choice < 3:
        return draw(_good_subscriptions)
    payload: dict[str, Any] = draw(_SUB_FIELDS)
    dice, name, value = draw(_STRAY_FIELD)
    if dice == 0:
        payload[name] = value
    return payload


def valid_subscription(payload: Any) -> bool:
    """Does the contract (docs/protocol.md, subscribe) accept this payload's shape?"""
    if not isinstance(payload, dict) or set(payload) - {"swarm", "channels", "agent_id", "since"}:
        return False
    swarm = payload.get("swarm")
    if swarm != "*" and not (isinstance(swarm, str) and NAME.fullmatch(swarm)):
        return False
    channels = payload.get("channels", list(CHANNELS))
    if not (isinstance(channels, list) and channels
            and all(isinstance(c, str) and c in CHANNELS for c in channels)):
        return False
    agent = payload.get("agent_id")
    return agent is None or (isinstance(agent, str) and bool(AGENT_ID.fullmatch(agent)))


socket_event_names = st.one_of(
    st.sampled_from(["subscribe", "unsubscribe"]),
    st.sampled_from(["subscribe", "unsubscribe"]),
    st.sampled_from(["connect", "disconnect", "message", "json", "*", "", "subscribe ",
                     "SUBSCRIBE", "connection_established", "agent_update_batch"]),
    st.sampled_from(["ping", "join_room", "leave_room"]),  # the original dashboard's
    st.text(max_size=30))
