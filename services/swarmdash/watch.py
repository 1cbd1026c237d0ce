"""``swarmdash watch``: a terminal tail of a live subscription, and a reference client.

It does what a dashboard must: subscribe, keep the cursor of the last message, and on
every reconnect subscribe again with ``since`` so nothing is missed or shown twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import socketio

from .events import AGENT_CRITICAL, BATCH_EVENTS, SYSTEM_ALERT, Event

#: Connect refusals that a retry with the same token cannot overcome.
FINAL_REFUSALS = ("unauthorized", "forbidden")


def describe(event: Event) -> str:
    """One line for a terminal: when, id, type, swarm/agent and the gist of ``data``."""
    data = event.get("data", {})
    gist = {
        "agent": lambda: data.get("status", ""),
        "task": lambda: f"{data.get('task_id')} {data.get('status')}",
        "metric": lambda: f"{data.get('name')}={data.get('value')}{data.get('unit', '')}",
        "log": lambda: f"[{data.get('level')}] {data.get('message')}",
        "alert": lambda: f"[{data.get('severity')}] {data.get('message')}",
    }.get(event.get("type", ""), lambda: "")()
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("ts", time.time())))
    return (f"{stamp} {event.get('id', '-'):>17} {event.get('type', '?'):6} "
            f"{event.get('swarm', '?')}/{event.get('agent_id', '?')} {gist}")


class Watcher:
    def __init__(self, url: str, subscription: dict[str, Any], out: TextIO,
                 transports: list[str] | None = None, count: int | None = None,
                 token: str | None = None):
        self.url = url
        self.token = token  # a viewer token (`swarmdash token`), sent in the connect's auth
        self.subscription = subscription
        self.out = out
        self.transports = transports
        self.count = count
        self.cursor: str | None = None
        self.seen = 0
        self.refused: str | None = None  # why the node refused the subscription
        self.done = threading.Event()
        self.stopping = False
        self.sio = socketio.Client(reconnection=True, reconnection_delay_max=5)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("session_expired", self._on_expired)
        self.sio.on("connect_error", self._on_connect_error)
        for name in (*BATCH_EVENTS.values(), SYSTEM_ALERT, AGENT_CRITICAL):
            self.sio.on(name, self._handler(name))

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _on_connect(self) -> None:
        request = dict(self.subscription)
        if self.cursor:
            request["since"] = self.cursor
        self.sio.start_background_task(self._subscribe, request)

    def _subscribe(self, request: dict[str, Any]) -> None:
        ack = self.sio.call("subscribe", request, timeout=15)
        if not ack.get("ok"):
            self.refused = f"{ack.get('error')}: {ack.get('detail')}"
            self._print(f"# subscribe refused: {self.refused}")
            self.done.set()  # nothing will arrive: stop rather than wait forever
            return
        snapshot = ack.get("snapshot")
        extra = f", snapshot of {len(snapshot['agents'])} agents" if snapshot else ""
        self._print(f"# subscribed on {self.url}: replayed {ack['replayed']}"
                    f"{', gap' if ack['gap'] else ''}{extra}")
        if not self.cursor:
            self.cursor = ack["cursor"]

    def _on_connect_error(self, data: Any = None) -> None:
        """A refused token ends the watch (retrying cannot help); a full node is retried."""
        # the node's refusal {"error", "detail"} arrives as the "data" of the error packet
        refusal = data.get("data", data) if isinstance(data, dict) else None
        if isinstance(refusal, dict) and refusal.get("error") in FINAL_REFUSALS:
            self.refused = f"{refusal['error']}: {refusal.get('detail')}"
            self.done.set()

    def _on_disconnect(self, reason: Any = None) -> None:
        if not self.stopping:  # our own disconnect at the end is no news
            self._print(f"# disconnected ({reason}); reconnecting from {self.cursor}")

    def _on_expired(self, notice: Any = None) -> None:
        """The node ends the connection at the token's expiry: stop, saying what to do."""
        detail = notice.get("detail") if isinstance(notice, dict) else None
        self._print(f"# {detail or 'the viewer token has expired'} "
                    "(a new token: swarmdash token)")
        self.refused = f"unauthorized: {detail or 'the viewer token has expired'}"
        self.done.set()

    def _handler(self, name: str) -> Callable[[dict[str, Any]], None]:
        def handle(message: dict[str, Any]) -> None:
            events = message["batch"] if name in BATCH_EVENTS.values() else [message]
            for event in events:
                self._print(describe(event))
                self.seen += 1
            if message.get("cursor"):
                self.cursor = message["cursor"]
            if self.count is not None and self.seen >= self.count:
                self.done.set()
        return handle

    def run(self, duration: float | None = None) -> int:
        """Print events until ``count``, ``duration`` or a refused subscribe; the number seen.

        Raises :class:`socketio.exceptions.ConnectionError` when the first connect fails.
        """
        self.sio.connect(self.url, transports=self.transports, wait_timeout=15,
                         auth={"token": self.token} if self.token else None)
        try:
            self.done.wait(duration)
        finally:
            self.stopping = True
            self.sio.disconnect()
        return self.seen
