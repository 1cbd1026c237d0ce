"""docker-compose.yml and the Dockerfile: valid for the compose tool, pinned images, one
published entrypoint, ordered start-up on health, secrets from .env."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT, free_port

from .conftest import OpsCluster, need

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SECRETS = {"SECRET_KEY": "test-secret-not-the-default", "GRAFANA_ADMIN_PASSWORD": "test"}
#: The services of the `sentinel` profile: Redis without a single point of failure.
SENTINEL_PROFILE = {"redis-primary", "redis-replica-1", "redis-replica-2", "sentinel-1",
                    "sentinel-2", "sentinel-3"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=30).returncode == 0:
        return [docker, "compose"]
    return [need("docker-compose", "docker-compose")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The repository as compose sees it, with a .env of test secrets (never committed)."""
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore", "pyproject.toml",
                 "README.md", "services", "infra", "haproxy"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    return tmp_path


def run_compose(project: Path, *args: str, env: dict[str, str] | None = None,
                profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SWARMDASH_", "COMPOSE_")) and k not in SECRETS}
    argv = [*compose_command(), "-f", str(project / "docker-compose.yml")]
    for profile in profiles:
        argv += ["--profile", profile]
    return subprocess.run([*argv, *args], cwd=project, capture_output=True, text=True,
                          timeout=60, env={**clean, **(env or {})})


def test_compose_config_is_valid(project: Path) -> None:
    result = run_compose(project, "config", "-q", profiles=("simulator",))
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_secrets_in_env(project: Path) -> None:
    (project / ".env").write_text("GRAFANA_ADMIN_PASSWORD=x\n")
    result = run_compose(project, "config", "-q")
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_resolved_config_settings_and_replicas(project: Path) -> None:
    result = run_compose(project, "config", env={"SWARMDASH_NODES": "5"},
                         profiles=("simulator",))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) - SENTINEL_PROFILE == {"redis", "node", "haproxy", "prometheus",
                                                "grafana", "simulator"}
    node = services["node"]
    assert int(node["deploy"]["replicas"]) == 5
    env = node["environment"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert (env["HOST"], str(env["PORT"])) == ("0.0.0.0", "8050")
    assert env["SECRET_KEY"] == SECRETS["SECRET_KEY"], "the secret comes from .env"
    assert env.get("NODE_ID", "") == "", "replicas must not share one NODE_ID"
    haproxy = services["haproxy"]["environment"]
    assert {k: str(v) for k, v in haproxy.items() if k in {
        "SWARMDASH_NODES_FQDN", "SWARMDASH_NODE_PORT", "SWARMDASH_DNS", "SWARMDASH_HTTP_BIND",
        "SWARMDASH_HTTPS_BIND", "SWARMDASH_PLAIN_BIND", "SWARMDASH_STATS_BIND",
        "SWARMDASH_TLS_CERT"}} == {
        "SWARMDASH_NODES_FQDN": "node", "SWARMDASH_NODE_PORT": "8050",
        "SWARMDASH_DNS": "127.0.0.11:53", "SWARMDASH_HTTP_BIND": ":80",
        "SWARMDASH_HTTPS_BIND": ":443", "SWARMDASH_PLAIN_BIND": ":8050",
        "SWARMDASH_STATS_BIND": ":8404",
        "SWARMDASH_TLS_CERT": "/usr/local/etc/haproxy/certs/swarmdash.pem"}
    assert "simulate" in services["simulator"]["entrypoint"]
    assert "http://haproxy:8050" in services["simulator"]["entrypoint"]


def test_the_sentinel_profile_is_a_primary_two_replicas_and_three_sentinels(
        project: Path) -> None:
    from swarmdash.settings import parse_sentinel_url

    url = ("redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/0/swarmdash")
    result = run_compose(project, "config", env={"SWARMDASH_REDIS_URL": url},
                         profiles=("sentinel",))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) >= SENTINEL_PROFILE
    assert services["node"]["environment"]["REDIS_URL"] == url
    parsed = parse_sentinel_url(url)
    assert {host for host, _ in parsed.sentinels} == {"sentinel-1", "sentinel-2", "sentinel-3"}
    for name in SENTINEL_PROFILE:
        svc = services[name]
        kind = "sentinel" if name.startswith("sentinel") else "redis"
        assert svc["entrypoint"] == ["/usr/local/etc/redis/start.sh", kind], name
        assert svc["environment"]["REDIS_ANNOUNCE"] == name  # Sentinel hands out this name
        assert svc["environment"].get("REDIS_REPLICA_OF") == (
            "redis-primary" if "replica" in name else None), name
        assert len({v.get("target") if isinstance(v, dict) else v.split(":")[1]
                    for v in svc["volumes"]} & {"/data"}) == 1, f"{name} keeps its state"
    conf = (ROOT / "infra" / "redis" / "sentinel.conf").read_text()
    assert f"sentinel monitor {parsed.service} redis-primary 6379 2" in conf
    server = (ROOT / "infra" / "redis" / "redis.conf").read_text()
    assert "appendonly yes" in server and "port 6379" in server


def test_haproxy_gets_every_variable_its_config_reads() -> None:
    cfg = (ROOT / "haproxy" / "haproxy.cfg").read_text()
    wanted = set(re.findall(r"\$\{(\w+)\}", cfg))
    given = set(compose()["services"]["haproxy"]["environment"])
    assert wanted <= given, f"haproxy.cfg reads variables compose does not set: {wanted - given}"


def test_every_image_is_pinned() -> None:
    images = {name: svc["image"] for name, svc in compose()["services"].items() if "image" in svc
              and "build" not in svc}
    assert set(images) == {"redis", "haproxy", "prometheus", "grafana", *SENTINEL_PROFILE}
    for name, image in images.items():
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image} has no exact version"
    assert images["haproxy"].startswith("haproxy:2.6.")
    [base] = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base


def test_only_haproxy_publishes_ports() -> None:
    services = compose()["services"]
    publishing = {name for name, svc in services.items() if svc.get("ports")}
    assert publishing == {"haproxy"}
    targets = {str(p).rsplit(":", 1)[-1] for p in services["haproxy"]["ports"]}
    assert targets == {"80", "443", "8050"}


def test_start_order_waits_on_health_and_every_dependency_has_a_healthcheck() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition"
        for dep, cond in depends.items():
            assert cond == {"condition": "service_healthy"}, f"{name} -> {dep}: {cond}"
            test = services[dep].get("healthcheck", {}).get("test")
            assert test and test[0] in ("CMD", "CMD-SHELL"), f"{dep} has no healthcheck"
    assert services["haproxy"]["depends_on"].keys() == {"node"}
    assert services["node"]["depends_on"].keys() == {"redis"}
    assert "--appendonly" in services["redis"]["command"]


def test_node_healthcheck_is_the_images_own() -> None:
    [image_check] = re.findall(r'^\s*CMD (\[.*\])\s*$', DOCKERFILE.read_text(), re.M)
    assert compose()["services"]["node"]["healthcheck"]["test"] == ["CMD",
                                                                   *json.loads(image_check)]


def test_dockerfile_runs_gunicorn_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the node must not run as root"
    [entry] = re.findall(r"^ENTRYPOINT\s+(\[.*\])", text, re.M)
    assert json.loads(entry) == ["gunicorn", "-c", "infra/gunicorn.conf.py",
                                 "swarmdash.wsgi:app"]
    assert re.search(r"^RUN pip install -c constraints\.txt \.", text, re.M)
    assert "HEALTHCHECK" in text


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", "*.pem", ".venv", ".git"):
        assert entry in ignored, entry
    gitignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in gitignored and "*.pem" in gitignored


@pytest.mark.integration
def test_image_healthcheck_command_passes_on_a_healthy_node_and_fails_without_one(
        ops_cluster: OpsCluster) -> None:
    """The HEALTHCHECK one-liner itself (python, no curl), run against real nodes."""
    [image_check] = re.findall(r'^\s*CMD (\[.*\])\s*$', DOCKERFILE.read_text(), re.M)
    argv = json.loads(image_check)
    assert argv[0] == "python"
    argv[0] = sys.executable

    def check(port: int) -> int:
        return subprocess.run(argv, env={**os.environ, "PORT": str(port)},
                              capture_output=True, timeout=10).returncode

    assert check(ops_cluster.nodes[0].port) == 0
    assert check(free_port()) != 0
