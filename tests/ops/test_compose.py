"""docker-compose.yml and the Dockerfile: valid for the compose tool, pinned images, one
published entrypoint, ordered start-up on health, each service only the secrets it needs
(files from infra/secrets/generate.sh, never variables), Redis behind users, rotated logs."""

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
import redis
import requests
import yaml

from tests.helpers import (
    AGENT_HEADERS,
    ROOT,
    DashClient,
    Process,
    free_port,
    node_env,
    start_node,
    wait_for,
)

from .conftest import OpsCluster, need

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
GENERATE_SECRETS = ROOT / "infra" / "secrets" / "generate.sh"
SETTINGS = {"API_KEYS": "fleet:" + "0" * 64 + ":*", "LOG_LEVEL": "warning"}
#: The secrets (files under /run/secrets) each service gets: no more.
NEEDS = {"redis": {"redis_users.acl"},
         "node": {"node_redis_url", "secret_key", "secret_key_previous"},
         "haproxy": set(), "prometheus": set(), "grafana": {"grafana_admin_password"},
         "simulator": {"simulator_api_key"}}
#: The services of the `sentinel` profile, and the secrets each one gets.
SENTINEL_PROFILE = {"redis-primary": {"redis_users.acl", "redis_replica_password"},
                    "redis-replica-1": {"redis_users.acl", "redis_replica_password"},
                    "redis-replica-2": {"redis_users.acl", "redis_replica_password"},
                    "sentinel-1": {"redis_sentinel_password"},
                    "sentinel-2": {"redis_sentinel_password"},
                    "sentinel-3": {"redis_sentinel_password"}}


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
    """The repository as compose sees it, with its secrets made by infra/secrets/generate.sh
    and a .env of settings (neither is committed)."""
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore", "pyproject.toml",
                 "README.md", "services", "infra", "haproxy"):
        (tmp_path / name).symlink_to(ROOT / name)
    subprocess.run(["sh", str(GENERATE_SECRETS), str(tmp_path / "secrets")],
                   check=True, capture_output=True, timeout=30)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in SETTINGS.items()))
    return tmp_path


def run_compose(project: Path, *args: str, env: dict[str, str] | None = None,
                profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SWARMDASH_", "COMPOSE_")) and k not in SETTINGS}
    argv = [*compose_command(), "-f", str(project / "docker-compose.yml")]
    for profile in profiles:
        argv += ["--profile", profile]
    return subprocess.run([*argv, *args], cwd=project, capture_output=True, text=True,
                          timeout=60, env={**clean, **(env or {})})


def test_compose_config_is_valid(project: Path) -> None:
    result = run_compose(project, "config", "-q", profiles=("simulator",))
    assert result.returncode == 0, result.stderr


def test_each_service_gets_only_the_secrets_it_needs_and_none_in_variables(
        project: Path) -> None:
    result = run_compose(project, "config", profiles=("simulator",))
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    # the sentinel profile's services (listed by some compose versions whatever the profile)
    needs = NEEDS | SENTINEL_PROFILE
    assert set(services) - set(SENTINEL_PROFILE) == set(NEEDS)
    secret_values = {p.read_text().strip() for p in (project / "secrets").iterdir()} - {""}
    for name, svc in services.items():
        assert "env_file" not in compose()["services"][name], f"{name}: env_file gives all"
        given = {s["source"] if isinstance(s, dict) else s for s in svc.get("secrets", [])}
        assert given == needs[name], name
        env = " ".join(f"{k}={v}" for k, v in (svc.get("environment") or {}).items())
        assert not any(v in env for v in secret_values), f"{name}: a secret in a variable"
        assert not re.search(r"(?<!_)(SECRET_KEY|PASSWORD|API_KEY)=", env.replace(
            "API_KEYS=", "")), f"{name}: {env}"
    for source in resolved["secrets"].values():
        assert Path(source["file"]).is_file(), f"secrets/generate.sh does not make {source}"


def test_resolved_config_settings_and_replicas(project: Path) -> None:
    result = run_compose(project, "config", env={"SWARMDASH_NODES": "5"},
                         profiles=("simulator",))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) - set(SENTINEL_PROFILE) == {"redis", "node", "haproxy", "prometheus",
                                                "grafana", "simulator"}
    node = services["node"]
    assert int(node["deploy"]["replicas"]) == 5
    env = node["environment"]
    assert env["REDIS_URL_FILE"] == "/run/secrets/node_redis_url"
    assert env["SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    assert (env["HOST"], str(env["PORT"])) == ("0.0.0.0", "8050")
    assert env["API_KEYS"] == SETTINGS["API_KEYS"], "settings come from .env"
    assert env["MESSAGE_QUEUE_CHANNEL"].startswith("swarmdash"), "the node user's channels"
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

    result = run_compose(project, "config", profiles=("sentinel",), env={
        "SWARMDASH_NODE_REDIS_URL_FILE": "./secrets/node_redis_url_sentinel"})
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert set(services) >= set(SENTINEL_PROFILE)
    assert resolved["secrets"]["node_redis_url"]["file"].endswith("node_redis_url_sentinel")
    url = (project / "secrets" / "node_redis_url_sentinel").read_text().strip()
    parsed = parse_sentinel_url(url)  # what secrets/generate.sh writes is a valid URL
    assert {host for host, _ in parsed.sentinels} == {"sentinel-1", "sentinel-2", "sentinel-3"}
    for name, secrets in SENTINEL_PROFILE.items():
        svc = services[name]
        kind = "sentinel" if name.startswith("sentinel") else "redis"
        assert svc["entrypoint"] == ["/usr/local/etc/redis/start.sh", kind], name
        assert svc["environment"]["REDIS_ANNOUNCE"] == name  # Sentinel hands out this name
        assert svc["environment"].get("REDIS_REPLICA_OF") == (
            "redis-primary" if "replica" in name else None), name
        assert len({v.get("target") if isinstance(v, dict) else v.split(":")[1]
                    for v in svc["volumes"]} & {"/data"}) == 1, f"{name} keeps its state"
        given = {s["source"] if isinstance(s, dict) else s for s in svc.get("secrets", [])}
        assert given == secrets, name
        assert svc["logging"]["options"]["max-size"], f"{name}: no log rotation"
    conf = (ROOT / "infra" / "redis" / "sentinel.conf").read_text()
    assert f"sentinel monitor {parsed.service} redis-primary 6379 2" in conf
    server = (ROOT / "infra" / "redis" / "redis.conf").read_text()
    assert "appendonly yes" in server and "port 6379" in server
    users = (project / "secrets" / "redis_users.acl").read_text()
    assert "user replica on" in users and "user sentinel on" in users


def test_redis_requires_users_prometheus_takes_no_orders_logs_rotate() -> None:
    services = compose()["services"]
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--aclfile") + 1] == "/run/secrets/redis_users.acl"
    assert "--user health" in services["redis"]["healthcheck"]["test"][1]
    assert not any("lifecycle" in arg for arg in services["prometheus"]["command"])
    for name, svc in services.items():
        options = svc.get("logging", {}).get("options", {})
        assert options.get("max-size") and options.get("max-file"), f"{name}: no log rotation"
    # a refused API key must not restart the simulator forever
    assert services["simulator"]["restart"].startswith("on-failure:")


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
    assert json.loads(entry) == ["gunicorn", "-c", "python:swarmdash.gunicorn_conf",
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


@pytest.mark.integration
def test_compose_secrets_give_the_nodes_a_redis_user_of_their_own(tmp_path: Path) -> None:
    """The secrets compose mounts, made by infra/secrets/generate.sh, on a real redis-server
    and node: Redis refuses anyone without a password; the nodes' user stores and relays
    events (keys, scripts, the queue channel) and can do nothing else."""
    need("redis-server", "redis-server")
    secrets = tmp_path / "secrets"
    made = subprocess.run(["sh", str(GENERATE_SECRETS), str(secrets)],
                          capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    again = {p.name: p.read_text() for p in secrets.iterdir()}
    subprocess.run(["sh", str(GENERATE_SECRETS), str(secrets)],
                   check=True, capture_output=True, timeout=30)
    assert {p.name: p.read_text() for p in secrets.iterdir()} == again, "kept as they are"
    acl = (secrets / "redis_users.acl").read_text()
    node_url = (secrets / "node_redis_url").read_text().strip()
    assert node_url.split("@")[0].split(":")[-1] not in acl, "only the password's hash"
    port = free_port()
    redis_proc = Process(f"redis-acl-{port}", [
        shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
        "--bind", "127.0.0.1", "--save", "", "--aclfile", str(secrets / "redis_users.acl")],
        tmp_path).start()
    url = node_url.replace("@redis:6379", f"@127.0.0.1:{port}")
    anonymous = redis.Redis(port=port, socket_timeout=5)
    try:
        wait_for(lambda: _pong(redis.Redis(port=port, username="health", password="x")), 10,
                 message="redis-server with the ACL file")
        # a container without the nodes' password can neither write nor forge a Socket.IO
        # packet on the queue channel
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("swarmdash:x", "1")
        with pytest.raises(redis.AuthenticationError):
            anonymous.publish("swarmdash-queue", "forged")
        with pytest.raises(redis.exceptions.NoPermissionError):
            redis.Redis(port=port, username="health", password="x").publish(
                "swarmdash-queue", "forged")
        (tmp_path / "url").write_text(url + "\n")
        env = node_env("", "acl1", free_port(), REDIS_URL_FILE=str(tmp_path / "url"),
                       MESSAGE_QUEUE_CHANNEL="swarmdash-queue")
        del env["REDIS_URL"]
        node = start_node("acl1", "gunicorn", env, tmp_path)
        try:
            client = DashClient(node.url).connect()
            try:
                assert client.subscribe(swarm="acl", channels=["log"])["ok"]
                posted = requests.post(f"{node.url}/api/v1/events", json=[{
                    "type": "log", "swarm": "acl", "agent_id": "a1",
                    "data": {"level": "info", "message": "through the node user"}}],
                    headers={**AGENT_HEADERS, "Idempotency-Key": "acl-1"}, timeout=10)
                assert posted.status_code == 202, posted.text
                wait_for(lambda: client.delivered_ids() == posted.json()["ids"], 15,
                         message="the event relayed through the queue channel")
            finally:
                client.close()
        finally:
            node.process.stop()
        as_node = redis.Redis.from_url(url, socket_timeout=5)
        assert as_node.xlen("swarmdash:events") == 1
        for forbidden in (lambda: as_node.flushall(), lambda: as_node.config_get("*"),
                          lambda: as_node.get("other:key"), lambda: as_node.keys("*"),
                          lambda: as_node.publish("another-channel", "x")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                forbidden()
        with pytest.raises(redis.exceptions.NoPermissionError):
            redis.Redis(port=port, username="health", password="x").get("swarmdash:events")
    finally:
        redis_proc.stop()


def _pong(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
