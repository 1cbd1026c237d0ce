"""gunicorn config of a SwarmDash node, installed with the package:
``gunicorn -c python:swarmdash.gunicorn_conf swarmdash.wsgi:app``.

``swarmdash serve`` and ``swarmdash demo`` run this module too (``swarmdash/serving.py``), so
every way of running a node runs the same server. Values come from the node's settings
(environment / .env): a node is configured in one place.
"""

from typing import Any

from swarmdash.settings import load_settings

_settings = load_settings()

bind = f"{_settings.host}:{_settings.port}"
# One worker per node, always: a Socket.IO session lives in one process's memory, and
# gunicorn does not route a client's next long-polling request back to the same worker.
# Scale out with more nodes behind the sticky proxy instead.
workers = 1
worker_class = "gevent"
# The default of 1000 makes client 1001 hang silently; websockets hold a connection each.
worker_connections = _settings.worker_connections
timeout = 60
graceful_timeout = _settings.graceful_timeout
keepalive = 5
loglevel = _settings.log_level
# Each master would otherwise share ~/.gunicorn/gunicorn.ctl with every other node on the host.
control_socket_disable = True
proc_name = f"swarmdash-{_settings.node_name}"


def post_worker_init(worker: Any) -> None:
    """The app is loaded: what it built stays out of the garbage collector's full
    collections (:mod:`swarmdash.gcfreeze`)."""
    from swarmdash.gcfreeze import freeze_start_up

    freeze_start_up()


def worker_exit(server: Any, worker: Any) -> None:
    """Leave the cluster registry at once on a clean stop (a crash relies on the TTL)."""
    node = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("swarmdash")
    if node is not None:
        node.leave()
