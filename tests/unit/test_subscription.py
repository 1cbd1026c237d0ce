"""subscription.py: parsing a subscription, checking a ``since`` cursor, finding what a
client missed.  The Socket.IO ``subscribe`` and ``GET /api/v1/events`` both rest on these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from swarmdash.cursor import Cursor, StreamId, format_id, parse_id
from swarmdash.eventlog import EventLog, MemoryEventLog
from swarmdash.events import CHANNELS, Event
from swarmdash.subscription import (
    AHEAD,
    BadRequest,
    SubscribeError,
    Subscription,
    check_since,
    from_payload,
    from_query,
    scan_since,
)

ALL = frozenset(CHANNELS)
EVERY = "agent, task, metric, log"


# --- the subscription ----------------------------------------------------------------------

def test_subscription_room_names_and_identity() -> None:
    a = Subscription("alpha", frozenset({"log", "agent"}))
    b = Subscription("alpha", frozenset({"agent", "log"}))
    assert a.room == b.room == "sub|alpha||agent,log"
    assert Subscription("alpha", ALL, "x").identity == ("alpha", "x")
    assert Subscription("alpha", ALL).scope == "alpha" and Subscription("*", ALL).scope is None


def test_a_subscription_matches_its_swarm_agent_and_channels_plus_alerts_and_critical(
        ev: Any) -> None:
    logs = Subscription("alpha", frozenset({"log"}), "a1")
    assert logs.matches(ev.log())
    assert not logs.matches(ev.log(swarm="beta")) and not logs.matches(ev.log(agent_id="a2"))
    assert not logs.matches(ev.agent("a1", "busy"))
    assert logs.matches(ev.agent("a1", "offline")) and logs.matches(ev.alert())
    assert Subscription("*", ALL).matches(ev.log(swarm="zeta"))


# --- parsing -------------------------------------------------------------------------------

def test_a_payload_gives_the_subscription_and_its_cursor() -> None:
    sub, since = from_payload({"swarm": "alpha", "channels": ["log", "agent"],
                               "agent_id": "a1", "since": "5-0;log=3-0"})
    assert sub == Subscription("alpha", frozenset({"log", "agent"}), "a1")
    assert since == Cursor.decode("5-0;log=3-0")
    assert from_payload({"swarm": "*"}) == (Subscription("*", ALL), None)


def test_unsubscribe_ignores_since() -> None:
    assert from_payload({"swarm": "alpha", "since": "garbage"}, unsubscribe=True)[1] is None


@pytest.mark.parametrize(("payload", "message"), [
    (None, "payload must be an object like {swarm, channels, agent_id?, since?}"),
    ("alpha", "payload must be an object like {swarm, channels, agent_id?, since?}"),
    ({"swarm": "alpha", "room": "x", "b": 1}, "unknown field(s): b, room"),
    ({"channels": ["log"]}, "swarm must be a swarm name or '*'"),
    ({"swarm": "bad name"}, "swarm must be a swarm name or '*'"),
    ({"swarm": "alpha", "channels": []}, f"channels must be a non-empty list of {EVERY}"),
    ({"swarm": "alpha", "channels": "log"}, f"channels must be a non-empty list of {EVERY}"),
    ({"swarm": "alpha", "channels": ["log", 5]},
     f"channels must be a non-empty list of {EVERY}"),
    ({"swarm": "alpha", "channels": ["logs"]}, f"unknown channel(s) logs; use {EVERY}"),
    ({"swarm": "alpha", "agent_id": "a b"}, "agent_id must match [A-Za-z0-9_.:@/-]{1,128}"),
    ({"swarm": "alpha", "since": "garbage"}, "since: invalid stream id 'garbage'"),
    ({"swarm": "alpha", "since": 5}, "since: cursor must be a non-empty string"),
])
def test_a_bad_payload_is_refused_saying_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        from_payload(payload)
    assert str(refused.value) == message


def test_a_query_defaults_to_every_swarm_and_channel() -> None:
    assert from_query({}) == Subscription("*", ALL)
    assert from_query({"swarm": "", "channels": "", "agent_id": ""}) == Subscription("*", ALL)
    assert from_query({"swarm": "alpha", "channels": "log,,metric", "agent_id": "a1"}) == \
        Subscription("alpha", frozenset({"log", "metric"}), "a1")


@pytest.mark.parametrize(("query", "payload"), [
    ({"swarm": "bad name"}, {"swarm": "bad name"}),
    ({"channels": "log,bogus"}, {"swarm": "*", "channels": ["log", "bogus"]}),
    ({"channels": "alert"}, {"swarm": "*", "channels": ["alert"]}),
    ({"agent_id": "a b"}, {"swarm": "*", "agent_id": "a b"}),
])
def test_a_query_and_a_payload_are_refused_in_the_same_words(
        query: dict[str, str], payload: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as by_query:
        from_query(query)
    with pytest.raises(BadRequest) as by_payload:
        from_payload(payload)
    assert str(by_query.value) == str(by_payload.value)


# --- since: bounds and gap -----------------------------------------------------------------

def logs(log: EventLog, count: int, ev: Any, **kw: Any) -> list[str]:
    return log.append([ev.log(f"m{i}", **kw) for i in range(count)])


def ids_of(events: list[Event]) -> list[str]:
    return [e["id"] for e in events]


def test_a_cursor_within_the_log_has_no_gap(log_factory: Callable[..., EventLog],
                                            ev: Any) -> None:
    log = log_factory()
    ids = logs(log, 5, ev)
    assert check_since(log, Cursor.decode(ids[0])) is False
    assert check_since(log, Cursor.decode(ids[-1])) is False


def test_a_cursor_before_what_was_trimmed_has_a_gap(log_factory: Callable[..., EventLog],
                                                    ev: Any) -> None:
    log = log_factory(maxlen=10)
    ids = [i for _ in range(30) for i in logs(log, 10, ev)]  # Redis trims by whole nodes
    kept = ids_of(log.read(parse_id(ids[0]), 1000))
    assert len(kept) < len(ids) - 1
    assert check_since(log, Cursor.decode(ids[0])) is True
    # a composite cursor has a gap when any of its channels is behind what was trimmed
    behind = Cursor.from_positions(parse_id(ids[-1]), {"metric": parse_id(ids[0])})
    assert check_since(log, behind) is True
    assert check_since(log, Cursor.decode(kept[0])) is False


def test_a_cursor_ahead_of_the_log_is_an_invalid_cursor(log_factory: Callable[..., EventLog],
                                                        ev: Any) -> None:
    log = log_factory()
    last = parse_id(logs(log, 3, ev)[-1])
    with pytest.raises(SubscribeError) as refused:
        check_since(log, Cursor.at((last[0] + 1, 0)))
    assert (refused.value.code, refused.value.detail) == ("invalid_cursor", AHEAD)


# --- scan_since ----------------------------------------------------------------------------

class ReadCounting(MemoryEventLog):
    """The in-memory log, counting its reads and what they asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    def read(self, after: StreamId, count: int, block_ms: int | None = None) -> list[Event]:
        self.reads.append(count)
        return super().read(after, count, block_ms)


def test_scan_returns_the_matching_events_after_each_channels_position(ev: Any) -> None:
    log = ReadCounting()
    ids = log.append([ev.log("1"), ev.agent("a1"), ev.log("2", agent_id="a2"), ev.log("3"),
                      ev.agent("a2", "offline"), ev.metric(), ev.log("4", swarm="beta")])
    sub = Subscription("alpha", frozenset({"log", "agent"}))
    since = Cursor.from_positions(parse_id(ids[1]), {"log": parse_id(ids[0])})
    found = scan_since(log, sub, since, 100, scan_limit=100)
    assert ids_of(found.events) == [ids[2], ids[3], ids[4]]  # not the agent update at ids[1]
    assert found.position == parse_id(ids[-1]) and found.scanned == 6 and found.end
    assert log.reads == [100], "a short read is the end of the log: no second read"


def test_scan_stops_at_the_limit_on_the_last_event_it_returns(ev: Any) -> None:
    log = MemoryEventLog()
    start, *ids = log.append([ev.log("start"), *(ev.log(str(i)) for i in range(10))])
    found = scan_since(log, Subscription("alpha", ALL), Cursor.decode(start), 3,
                       scan_limit=100)
    assert ids_of(found.events) == ids[:3]
    assert found.position == parse_id(ids[2]) and not found.end


def test_scan_looks_at_no_more_than_scan_limit_entries_however_few_match(ev: Any) -> None:
    log = ReadCounting()
    start = log.append([ev.log("start")])[0]
    ids = logs(log, 50, ev)
    found = scan_since(log, Subscription("alpha", ALL, "nobody"), Cursor.decode(start), 10,
                       scan_limit=25, page=10)
    assert found.events == [] and found.scanned == 25 and not found.end
    assert found.position == parse_id(ids[24])
    assert log.reads == [10, 10, 5]


def test_pages_of_a_scan_continue_without_repeats_or_holes(ev: Any) -> None:
    log = MemoryEventLog()
    start = log.append([ev.log("start")])[0]
    ids = log.append([ev.log(str(i)) if i % 3 else ev.metric(value=i) for i in range(40)])
    sub = Subscription("alpha", frozenset({"log"}))
    since, seen = Cursor.decode(start), []
    while True:
        found = scan_since(log, sub, since, 4, scan_limit=7, page=3)
        seen += ids_of(found.events)
        since = since.advanced(found.position)
        if found.end:
            break
    assert seen == [i for n, i in enumerate(ids) if n % 3]
    assert format_id(since.base) == ids[-1]


def test_scan_from_a_trimmed_cursor_starts_at_what_the_log_still_holds(ev: Any) -> None:
    log = MemoryEventLog(maxlen=10)
    ids = logs(log, 30, ev)
    found = scan_since(log, Subscription("alpha", ALL), Cursor.decode(ids[0]), 100,
                       scan_limit=100)
    assert ids_of(found.events) == ids[20:] and found.end
