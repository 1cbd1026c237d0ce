"""rolling-restart.md, deploy.md, rotate-secret-key.md: a new SECRET_KEY in the nodes'
environment file, then `rolling-restart` while a numbered stream runs to clients spread
over the nodes; clients that lose their node resume through HAProxy with their cursor."""

from __future__ import annotations

import json
import re
import secrets
import statistics
from collections import Counter

import pytest

from tests.helpers import wait_for
from tests.integration.test_cluster import Feed, assert_exactly_once_in_order

from .conftest import Drill, Viewer, through, wait_healthy

pytestmark = pytest.mark.integration
SOURCES = [f"127.0.5.{i}" for i in range(1, 13)]
DEV_KEY_WARNING = "SECRET_KEY is the built-in development key"


def test_rotate_secret_key_with_rolling_restart_loses_nothing(
        drill: Drill, viewers: list[Viewer]) -> None:
    wait_healthy(drill)
    names = [n.name for n in drill.cluster().running_nodes()]
    # `cluster up` gave the nodes a key of their own: none runs on the built-in one.
    for n in names:
        assert DEV_KEY_WARNING not in (drill.dir / "logs" / f"{n}.log").read_text()
    # A viewer's token, signed with the current key, then the runbook's rotation.
    token = drill.sh("SWARMDASH_ENV_FILE=.swarmdash-cluster/node.env swarmdash token "
                     "--all-swarms --ttl 1h --name drill").stdout.strip()
    check = f"SWARMDASH_ENV_FILE=.swarmdash-cluster/node.env swarmdash token --check '{token}'"
    assert json.loads(drill.sh(check).stdout)["valid"] is True
    env_file = drill.dir / "node.env"
    before = env_file.read_text()
    drill.sh("old=$(grep '^SECRET_KEY=' .swarmdash-cluster/node.env | tail -1 | cut -d= -f2-) "
             "&& echo \"SECRET_KEY_PREVIOUS=$old\" >> .swarmdash-cluster/node.env")
    env_file.write_text(env_file.read_text() + f"SECRET_KEY={secrets.token_hex(32)}\n")
    assert env_file.read_text() != before
    assert json.loads(drill.sh(check).stdout)["valid"] is True, "old token, previous key"
    checked = drill.sh("SWARMDASH_ENV_FILE=.swarmdash-cluster/node.env swarmdash settings "
                       "| grep '^SECRET_KEY'")
    assert checked.stdout.split() == ["SECRET_KEY=****", "SECRET_KEY_PREVIOUS=****"]

    swarm = "rolling"
    for src in SOURCES:
        viewer = Viewer(drill.url, src, swarm)
        viewers.append(viewer)
        assert viewer.connect()
    spread = Counter(v.node for v in viewers)
    assert len(spread) >= 2, f"every address on one node: {spread}"
    feed = Feed([drill.url], swarm)
    feed.start()
    try:
        rolling = through(drill, viewers, lambda: len(feed.accepted), "the rolling restart",
                          "rolling-restart", timeout=120)
        took = rolling.took
    finally:
        feed.stop()
    steps = [(t, line) for t, line in rolling.lines if line.endswith(" restarted")]
    assert [line.split()[0] for _, line in steps] == names, rolling.lines
    for v in viewers:
        wait_for(v.has_all(feed.accepted), 20,
                 message=f"every accepted event on {v.source}")
        assert_exactly_once_in_order(v.merged(), feed.accepted, swarm)
        assert v.gaps == 0, "a resume needed a snapshot"
    wait_healthy(drill)
    # Every node came back, never on the built-in key; the old token is still valid.
    for n in names:
        log = (drill.dir / "logs" / f"{n}.log").read_text(errors="replace")
        assert DEV_KEY_WARNING not in log, f"{n} on the built-in key"
    env_file.write_text("".join(line + "\n" for line in env_file.read_text().splitlines()
                                if not line.startswith("SECRET_KEY_PREVIOUS=")))
    gone = json.loads(drill.sh(check, check=False).stdout)
    assert gone["valid"] is False and gone["reason"] == "invalid", "previous key removed"
    resumes = [t for v in viewers for t in v.resume_times]
    per_node = [f"{line.split()[0]} at {t:.1f} s" for t, line in steps]
    print(f"\nrolling-restart of {len(names)} nodes: {took:.2f} s ({', '.join(per_node)}); "
          f"{len(resumes)} reconnects by {sum(bool(v.resume_times) for v in viewers)}/"
          f"{len(viewers)} clients, resumed after median {statistics.median(resumes):.2f} s, "
          f"max {max(resumes):.2f} s; {len(feed.accepted)} events, refused "
          f"{dict(feed.refused)}, none lost or duplicated")
    assert re.search(r"node\d+ restarted", "\n".join(line for _, line in rolling.lines))
