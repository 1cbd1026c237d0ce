"""The same properties against a real node: gunicorn (gevent worker) on a real redis-server.

Smaller than the in-process runs (SWARMDASH_FUZZ_LIVE_EXAMPLES), so the real server stack
(HTTP parsing, gevent, the Socket.IO transports) sees every kind of input too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
import socketio
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.keys import Keys
from swarmdash.redisconn import connect
from tests.fuzz.checks import check_error_body, check_ingest
from tests.fuzz.conftest import LIMITS, LIVE_EXAMPLES, Credentials, fuzz
from tests.fuzz.strategies import (
    IngestRequest,
    ingest_requests,
    json_values,
    query_strings,
    socket_event_names,
    subscribe_payloads,
    valid_subscription,
)
from tests.helpers import Node

pytestmark = pytest.mark.integration
MAX_EVENTS = int(LIMITS["MAX_EVENTS_PER_REQUEST"])


def event_log_of(node: Node) -> RedisEventLog:
    env = node.process.env or {}
    return RedisEventLog(connect(env["REDIS_URL"], 5.0), keys=Keys(env["REDIS_KEY_PREFIX"]))


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # 300 kB bodies
def test_live_ingest(live_node: Node, no_new_tracebacks: Callable[[], int]) -> None:
    log = event_log_of(live_node)
    session = requests.Session()

    @fuzz(LIVE_EXAMPLES)
    @given(req=ingest_requests(MAX_EVENTS, int(LIMITS["MAX_PAYLOAD_BYTES"])))
    def run(req: IngestRequest) -> None:
        before = log.last_id()
        headers = Credentials.ingest_headers(req.credential)
        if req.content_type is not None:
            headers["Content-Type"] = req.content_type
        if req.idempotency_key is not None:
            # requests refuses to send a header value with outer whitespace
            assume(req.idempotency_key == req.idempotency_key.strip())
            headers["Idempotency-Key"] = req.idempotency_key
        try:
            res = session.post(f"{live_node.url}/api/v1/events", data=req.body,
                               headers=headers, timeout=30)
        except requests.ConnectionError:
            # a node may close the connection on a body over MAX_PAYLOAD_BYTES before reading
            # it all; that is a refusal too, and nothing may be stored
            assert req.expect == 413, req.why
            assert log.read(before, 1) == []
            session.close()
            return
        try:
            body = res.json()
        except ValueError:
            body = None
        check_ingest(req, (res.status_code, body, res.headers.get("Content-Type", "")),
                     lambda: log.read(before, MAX_EVENTS + 1))

    run()
    log.close()


def test_live_queries(live_node: Node, no_new_tracebacks: Callable[[], int]) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {Credentials.viewer_token()}"

    @fuzz(LIVE_EXAMPLES)
    @given(path=st.sampled_from(["/api/v1/events", "/api/v1/snapshot"]),
           params=query_strings())
    def run(path: str, params: dict[str, str]) -> None:
        res = session.get(f"{live_node.url}{path}", params=params, timeout=30)
        if res.status_code == 414:  # gunicorn refuses a request line over 4094 bytes
            assert len(res.request.url or "") > 4000
            return
        assert res.status_code in (200, 400), (res.status_code, res.text[:300])
        body = res.json()
        if res.status_code == 400:
            check_error_body((400, body, res.headers["Content-Type"]))

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_live_openapi_operations(live_node: Node, mode: GenerationMode,
                                 no_new_tracebacks: Callable[[], int]) -> None:
    """schemathesis over the document the node serves: every operation, valid and invalid
    input; never a 5xx (the node has Redis), every error is JSON {"error"}, and valid input
    gets answers that match the document."""
    schema = schemathesis.openapi.from_url(f"{live_node.url}/api/v1/openapi.json")
    operations = [op.ok() for op in schema.get_all_operations()]
    auth = {"Authorization": f"Bearer {Credentials.viewer_token()}"}
    ingest = Credentials.ingest_headers("all")
    session = requests.Session()
    per_operation = max(20, LIVE_EXAMPLES // len(operations))
    unsatisfiable: list[str] = []

    for operation in operations:
        inputs = [*operation.query, *operation.headers, *operation.path_parameters,
                  *operation.body]
        if mode is GenerationMode.NEGATIVE and not inputs:
            continue  # nothing to get wrong

        @fuzz(per_operation)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            headers = ingest if case.method.upper() == "POST" else auth
            res = case.call(base_url=live_node.url, session=session, headers=headers,
                            timeout=30, allow_redirects=False)
            assert res.status_code < 500, (case.as_curl_command(), res.status_code, res.text)
            content_type = _content_type(res.headers)
            if res.status_code == 414:  # gunicorn: request line over limit_request_line
                assert len(case.as_curl_command()) > 4000
            elif res.status_code == 400 and _sets_framing(case.headers):
                # a bad Content-Length or Transfer-Encoding: gunicorn's parser refuses the
                # message's framing itself, with its own page, before any app sees it
                assert "Invalid HTTP Header" in res.text, res.text
            elif res.status_code >= 400:
                check_error_body((res.status_code, res.json(), content_type))
            if mode is GenerationMode.POSITIVE and res.status_code < 400:
                case.validate_response(res, checks=[response_schema_conformance])

        try:
            run()
        except Unsatisfiable:
            unsatisfiable.append(operation.label)
    # a path parameter of type string has no invalid value that fits in a URL
    assert set(unsatisfiable) <= {"GET /static/{filename}"}, unsatisfiable


#: Headers that frame an HTTP/1.1 message: a bad value is the HTTP server's to refuse.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


def _sets_framing(headers: dict[str, Any] | None) -> bool:
    return any(name.lower() in FRAMING_HEADERS for name in headers or {})


def _content_type(headers: Any) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return str(value[0] if isinstance(value, list) else value)


def test_live_socket_handlers(live_node: Node, no_new_tracebacks: Callable[[], int]) -> None:
    client = socketio.Client(reconnection=False)
    client.connect(live_node.url, auth={"token": Credentials.viewer_token()},
                   transports=["websocket"], wait_timeout=15)

    @fuzz(LIVE_EXAMPLES)
    @given(name=socket_event_names, payload=subscribe_payloads(),
           more=st.just([]) | st.lists(json_values, max_size=2))
    def run(name: str, payload: Any, more: list[Any]) -> None:
        if name in ("connect", "disconnect", "connect_error", "message", "*"):
            name = f"{name}_"  # reserved by the client library
        ack = client.call(name, (payload, *more) if more else payload, timeout=15)
        assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
        if name in ("ping", "join_room", "leave_room"):  # the original dashboard's events
            assert ack["ok"] or (ack["error"] and ack["detail"]), ack
            return
        if name not in ("subscribe", "unsubscribe") or more or not valid_subscription(payload):
            assert ack["ok"] is False and ack["error"] and ack["detail"], ack
        elif ack["ok"] and name == "subscribe":
            left = client.call("unsubscribe", payload, timeout=15)
            assert left["ok"] is True

    run()
    assert client.connected
    client.disconnect()
