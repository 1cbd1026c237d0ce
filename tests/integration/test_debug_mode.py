"""The original guide's debug switches on real nodes: SOCKETIO_DEBUG logs every packet but
never a viewer token; FLASK_DEBUG never starts Werkzeug's interactive debugger, and only
runs on a loopback HOST."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import DashClient, NodeGroup, free_port, node_env, viewer_token, wait_for

pytestmark = pytest.mark.integration


def test_socketio_debug_logs_packets_but_no_token(node_factory: NodeGroup,
                                                  tmp_path: Path) -> None:
    node = node_factory.start("debug1", auth=True, SOCKETIO_DEBUG="true", log_dir=tmp_path)
    token = viewer_token(["alpha"], name="carol")
    try:
        for transports in (["websocket"], ["polling"]):
            client = DashClient(node.url, token=token)
            client.sio.connect(node.url, auth={"token": token}, transports=transports,
                               wait_timeout=10)
            try:
                assert client.subscribe(swarm="alpha", channels=["log"])["ok"]
            finally:
                client.close()
        log = node.process.log_path
        wait_for(lambda: "Received packet" in log.read_text(errors="replace"), 10,
                 message="SOCKETIO_DEBUG's packet log")
        text = log.read_text(errors="replace")
        assert '"token":"****"' in text.replace(" ", ""), "the CONNECT packet is logged"
        assert token not in text and token.split(".")[-1] not in text, "a token was logged"
    finally:
        node.process.stop()


@pytest.mark.parametrize("engine", ["threading", "eventlet"])
def test_flask_debug_never_starts_werkzeugs_debugger(node_factory: NodeGroup,
                                                     tmp_path: Path, engine: str) -> None:
    node = node_factory.start("debug2", engine, FLASK_DEBUG="true", log_dir=tmp_path)
    try:
        # the debugger's own files and its console answer when it runs
        for query in ("__debugger__=yes&cmd=resource&f=debugger.js",
                      "__debugger__=yes&cmd=printpin&s=x"):
            r = requests.get(f"{node.url}/nowhere?{query}", timeout=5)
            assert "werkzeug" not in r.text.lower() and "debugger" not in r.text.lower(), (
                query, r.status_code, r.text[:200])
    finally:
        node.process.stop()


def test_flask_debug_refuses_a_host_others_reach(tmp_path: Path) -> None:
    env = node_env("redis://127.0.0.1:1/0", "debug3", free_port(), FLASK_DEBUG="true",
                   HOST="0.0.0.0")
    serve = subprocess.run([sys.executable, "-m", "swarmdash.cli", "serve"],
                           env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True,
                           text=True, timeout=60)
    assert serve.returncode == 2, serve.stderr
    assert "FLASK_DEBUG=true skips the production checks" in serve.stderr
