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
        self.done = threading.Event()
        self.sio = socketio.Client(reconnection=True, reconnection_delay_max=5)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("session_expired", self._on_expired)
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
            self._print(f"# subscribe refused: {ack.get('error')}: {ack.get('detail')}")
            return
        snapshot = ack.get("snapshot")
        extra = f", snapshot of {len(snapshot['agents'])} agents" if snapshot else ""
        self._print(f"# subscribed on {self.url}: replayed {ack['replayed']}"
                    f"{', gap' if ack['gap'] else ''}{extra}")
        if not self.cursor:
            self.cursor = ack["cursor"]

    def _on_disconnect(self, reason: Any = None) -> None:
        self._print(f"# disconnected ({reason}); reconnecting from {self.cursor}")

    def _on_expired(self, notice: Any = None) -> None:
        """The node ends the connection at the token's expiry: stop, saying what to do."""
        detail = notice.get("detail") if isinstance(notice, dict) else None
        self._print(f"# {detail or 'the viewer token has expired'} "
                    "(a new token: swarmdash token)")
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
        self.sio.connect(self.url, transports=self.transports, wait_timeout=15,
                         auth={"token": self.token} if self.token else None)
        try:
            self.done.wait(duration)
        finally:
            self.sio.disconnect()
        return self.seen
