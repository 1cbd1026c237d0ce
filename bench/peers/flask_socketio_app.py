"""The stock Flask-SocketIO peer: what most users write.

Clients join the room of the swarm they subscribe to; the publisher emits every event on
its own through the Redis message queue (``socketio.RedisManager``), and each node
forwards it to its own members. No batching, no cursor, no replay. Run under
``gunicorn -k gevent -w 1 bench.peers.flask_socketio_app:app`` with ``REDIS_URL`` set.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify
from flask_socketio import SocketIO, join_room

app = Flask(__name__)
socketio = SocketIO(app, message_queue=os.environ["REDIS_URL"], async_mode="gevent",
                    cors_allowed_origins="*")


@app.get("/health")
def health() -> Any:
    return jsonify(status="ok", node=os.environ.get("NODE_ID", ""))


@socketio.on("subscribe")
def subscribe(data: Any) -> dict[str, Any]:
    swarm = data.get("swarm") if isinstance(data, dict) else None
    if not isinstance(swarm, str) or not swarm:
        return {"ok": False, "error": "bad_request"}
    join_room(f"swarm:{swarm}")
    return {"ok": True, "rooms": [f"swarm:{swarm}"]}
