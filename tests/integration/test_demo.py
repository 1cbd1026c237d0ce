"""The README's first command: ``swarmdash demo`` runs with nothing but Python installed."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.helpers import BIN, DashClient, Process, free_port, wait_for

pytestmark = pytest.mark.integration


def test_demo_serves_a_simulated_swarm_without_redis(tmp_path: Path) -> None:
    port = free_port()
    env = {"REDIS_URL": "", "SWARMDASH_ENV_FILE": "/nonexistent"}
    demo = Process("demo", [str(BIN / "swarmdash"), "demo", "--port", str(port), "--agents",
                            "40", "--swarms", "2", "--rate", "100"], tmp_path, env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/health", timeout=1).ok, 30,
                 message=f"demo on {port}:\n{demo.tail()}")
        health = requests.get(f"{url}/health", timeout=2).json()
        assert health["redis"] == "embedded" and health["status"] == "ok"
        snapshot = wait_for(lambda: (lambda s: s if len(s["agents"]) == 40 else None)(
            requests.get(f"{url}/api/v1/snapshot", timeout=2).json()), 10,
            message="40 simulated agents in the snapshot")
        assert {a["swarm"] for a in snapshot["agents"]} == {"swarm-1", "swarm-2"}
        assert "SwarmDash" in requests.get(url, timeout=2).text
        client = DashClient(url).connect()
        try:
            ack = client.subscribe(swarm="swarm-1", channels=["agent", "metric", "log", "task"])
            assert ack["ok"] and len(ack["snapshot"]["agents"]) == 20
            wait_for(lambda: client.events("metric_update_batch")
                     and client.events("agent_update_batch"), 10, message="live batches")
        finally:
            client.close()
    finally:
        demo.stop()
    assert demo.returncode is not None
    log = demo.log_path.read_text()
    assert "Traceback" not in log, demo.tail()
    assert "MonkeyPatchWarning" not in log, log  # gevent patched before ssl was imported
