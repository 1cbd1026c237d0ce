"""Fixtures of the operations tests: real nodes, certificates, and helpers to render the
repository's deployment files (nginx, Prometheus, Apache) onto free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import PROMETHEUS_PATH_SPELLINGS, Node, NodeGroup, raw_get, start_node

#: Node settings of the test nodes: quick heartbeats, quick to stop, quiet logs.
NODE_SETTINGS = {"HEARTBEAT_INTERVAL": "0.5", "HEARTBEAT_TTL": "3", "LOG_LEVEL": "warning",
                 "COALESCE_AGENT_UPDATES": "false", "GRACEFUL_TIMEOUT": "2"}


def need(binary: str, package: str) -> str:
    """The path of ``binary``, or skip: the Debian package ``package`` provides it."""
    path = shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/usr/bin") / binary)
         if p.exists()), None)
    if path is None:
        pytest.skip(f"{binary} is not installed (apt-get install {package})")
    return path


def replace_exactly(text: str, old: str, new: str, count: int = 1) -> str:
    """``text.replace(old, new)``, failing when ``old`` does not occur ``count`` times (a
    rendered copy must not silently drift from the file it renders)."""
    found = text.count(old)
    assert found == count, f"expected {count} x {old!r} in the file, found {found}"
    return text.replace(old, new)


class OpsCluster(NodeGroup):
    """A private redis-server and three nodes under gunicorn, as in production."""

    def start_node(self, name: str) -> Node:
        """One more gunicorn node on the same Redis, waited until /health answers 200; not
        one of :attr:`nodes` (the test stops it)."""
        return start_node(name, "gunicorn", self.env(name, **NODE_SETTINGS), self.log_dir)


@pytest.fixture(scope="session")
def ops_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsCluster]:
    need("redis-server", "redis-server")
    group = OpsCluster(tmp_path_factory.mktemp("ops-cluster"))
    try:
        for i in range(1, 4):  # started together, then waited for: quicker than one by one
            group.start(f"ops-node{i}", wait=False, **NODE_SETTINGS)
        for node in group.nodes:
            node.wait_ready()
        yield group
    finally:
        group.stop()


@dataclass
class Certificate:
    cert: Path  # the certificate, also the CA a client trusts (self-signed)
    key: Path
    pem: Path  # key + certificate in one file

    @property
    def dir(self) -> Path:
        return self.cert.parent


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, made with openssl."""
    openssl = need("openssl", "openssl")
    out = tmp_path_factory.mktemp("tls")
    cert, key = out / "cert.pem", out / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-sha256", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    pem = out / "combined.pem"
    pem.write_text(cert.read_text() + key.read_text())
    return Certificate(cert, key, pem)



def prometheus_paths_served(port: int, cert: Certificate) -> dict[str, tuple[int, bytes]]:
    """The spellings of the Prometheus-only paths the proxy on ``port`` serves (none may be)."""
    served = {}
    for path in PROMETHEUS_PATH_SPELLINGS:
        status, body = raw_get(port, path, ca=cert.cert)
        if status not in (400, 404) or b"swarmdash_" in body or b"targets" in body:
            served[path] = (status, body[:80])
    return served
