"""``swarmdash watch`` and ``serve`` against a real node, as an operator runs them.

The node is started by ``swarmdash serve`` (gunicorn's gevent worker), with auth on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import requests

from tests.helpers import AGENT_HEADERS, Node, NodeGroup, metric_value, viewer_token, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(node_factory: NodeGroup) -> Node:
    return node_factory.start("node1", "gevent", auth=True)


def watch(node: Node, *args: str, token: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SWARMDASH_ENV_FILE": "/nonexistent", "VIEWER_TOKEN": token}
    return subprocess.Popen([sys.executable, "-m", "swarmdash.cli", "watch", "--url", node.url,
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def subscribes(node: Node, outcome: str) -> float:
    return metric_value(node.url, f'swarmdash_subscribe_total{{outcome="{outcome}"}}')


def log_event(n: int) -> dict[str, Any]:
    return {"type": "log", "swarm": "alpha", "agent_id": "agent-1",
            "data": {"level": "info", "message": f"line {n}"}}


def test_serve_starts_without_a_monkey_patch_warning(node: Node) -> None:
    log = node.process.log_path.read_text()
    assert "swarmdash node node1 (gevent)" in log and "MonkeyPatchWarning" not in log, log


def test_watch_stops_quietly_after_count(node: Node) -> None:
    before = subscribes(node, "ok")
    proc = watch(node, "--swarm", "alpha", "--channels", "log", "--count", "2",
                 token=viewer_token(["alpha"]))
    try:
        wait_for(lambda: subscribes(node, "ok") > before, 15, message="the watcher subscribed")
        r = requests.post(f"{node.url}/api/v1/events", json=[log_event(1), log_event(2)],
                          headers=AGENT_HEADERS, timeout=5)
        assert r.status_code == 202, r.text
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "line 1" in out and "line 2" in out
    assert "reconnecting" not in out + err and "disconnected" not in out + err


def test_watch_exits_non_zero_when_the_subscribe_is_refused(node: Node) -> None:
    # No --duration: a refused subscribe must end the command, not leave it waiting.
    proc = watch(node, "--swarm", "beta", token=viewer_token(["alpha"]))
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "# subscribe refused: forbidden" in out
    assert err.strip().splitlines() == [err.strip()] and err.startswith(
        "watch: refused: forbidden"), err


def test_watch_without_a_token_says_why_in_one_line(node: Node) -> None:
    proc = watch(node, "--swarm", "alpha", token="")
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert err.strip().splitlines() == [err.strip()], err
    assert err.startswith(f"watch: cannot connect to {node.url}: unauthorized: "), err
