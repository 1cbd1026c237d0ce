"""The Kubernetes manifests (infra/k8s), checked offline: every overlay builds with
kubectl's kustomize and passes the schema check of a pinned Kubernetes version in strict
mode, and the wiring holds: probes ask paths the node serves with the meaning they need,
ports are the settings', every variable is a setting, every Secret key used exists, the
node count is set once, HAProxy runs the repository's config and accepts it."""

from __future__ import annotations

import base64
import copy
import re
import secrets
import shutil
import socket
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from flask import Flask

from swarmdash.app import create_app
from swarmdash.eventlog import EventLog
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.hosts import HostPolicy
from swarmdash.node import node_of
from swarmdash.redisconn import connect
from swarmdash.serving import gunicorn_config
from swarmdash.settings import Settings, check_serving, describe, load_settings, parse_sentinel_url
from tests.helpers import ROOT, Process, free_port, wait_for

from .conftest import Certificate, need, replace_exactly
from .k8s import (
    COMPONENTS,
    K8S,
    OVERLAYS,
    build,
    containers,
    copy_tree,
    find,
    schema_errors,
    workloads,
)

Objects = list[dict[str, Any]]
SETTINGS = {row[0] for row in describe()}
DEFAULTS = Settings()
#: A Secret created outside kustomize (docs/deployment.md: `kubectl create secret tls`).
EXTERNAL_SECRETS = {"swarmdash-tls": {"tls.crt", "tls.key"}}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, Objects]:
    return {overlay: build(tree / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def production(rendered: dict[str, Objects]) -> Objects:
    return rendered["production"]


def node_container(objects: Objects) -> dict[str, Any]:
    return next(containers(find(objects, "Deployment", "swarmdash-node")))


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def secret_data(objects: Objects, name: str) -> dict[str, str]:
    data = find(objects, "Secret", name)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


# --- building and the schema check ----------------------------------------------------------

def test_there_is_a_production_overlay_and_an_external_redis_one() -> None:
    assert {"production", "external-redis"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_builds_and_passes_the_strict_schema_check(
        rendered: dict[str, Objects], overlay: str) -> None:
    objects = rendered[overlay]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
            "ConfigMap", "Secret"} <= kinds
    assert schema_errors(objects) == []


def with_component(tree: Path, component: str) -> Objects:
    """The production overlay with ``component`` added, as docs/deployment.md says."""
    overlay = tree / "overlays" / f"with-{component}"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../production"], "components": [f"../../components/{component}"]}))
    return build(overlay)


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_component_builds_onto_the_production_overlay(tree: Path, component: str) -> None:
    objects = with_component(tree, component)
    assert schema_errors(objects) == []
    services = [o for o in objects if o["kind"] == "Service"]
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"]
        ports = {p.get("name") for s in services
                 if wanted.items() <= s["metadata"].get("labels", {}).items()
                 for p in s["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports, monitor


def test_the_base_builds_from_a_plain_checkout() -> None:
    """No secrets needed for the base: they are the overlays' (./secrets, not committed)."""
    assert schema_errors(build(K8S / "base")) == []


def test_the_schema_check_refuses_an_unknown_field_and_a_wrong_type(production: Objects) -> None:
    bad = copy.deepcopy(find(production, "Deployment", "swarmdash-node"))
    probe = bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["paht"] = probe["httpGet"].pop("path")
    wrong = copy.deepcopy(find(production, "HorizontalPodAutoscaler", "swarmdash-node"))
    wrong["spec"]["maxReplicas"] = "10"
    errors = schema_errors([bad, wrong])
    assert len(errors) == 2 and "paht" in errors[0] and "maxReplicas" in errors[1], errors


# --- the nodes ------------------------------------------------------------------------------

@pytest.fixture
def make_app() -> Iterator[Any]:
    apps: list[Flask] = []

    def build_app(event_log: EventLog | None = None, **env: str) -> Flask:
        settings = load_settings(environ={"LOG_LEVEL": "warning",
                                          "SECRET_KEY": secrets.token_hex(32), **env},
                                 env_file=None)
        app = create_app(settings, async_mode="threading", event_log=event_log)
        apps.append(app)
        return app

    yield build_app
    for app in apps:
        node = node_of(app)
        node.stopping = True
        node.relay.stop()
        node.event_log.close()


def probe_get(app: Flask, probe: dict[str, Any]) -> int:
    get = probe["httpGet"]
    headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
    return app.test_client().get(get["path"], headers=headers).status_code


def test_the_probes_ask_what_the_node_serves_with_the_health_semantics(
        production: Objects, make_app: Any) -> None:
    """Ready is /health (503 when this node cannot reach Redis); alive is answered without
    Redis, so no Redis outage ever restarts a node."""
    node = node_container(production)
    ready, alive = node["readinessProbe"], node["livenessProbe"]
    assert ready["httpGet"]["path"] == "/health"
    up = make_app()
    assert probe_get(up, ready) == 200 and probe_get(up, alive) == 200
    cut_off = make_app(event_log=RedisEventLog(connect("redis://127.0.0.1:1/0", 0.2)))
    assert probe_get(cut_off, ready) == 503
    assert probe_get(cut_off, alive) == 200
    # a hung worker is restarted no sooner than gunicorn's own worker timeout
    assert alive["periodSeconds"] * alive["failureThreshold"] >= gunicorn_config()["timeout"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_probes_host_is_one_the_node_answers(rendered: dict[str, Objects],
                                                 overlay: str) -> None:
    objects = rendered[overlay]
    node = node_container(objects)
    env = {**find(objects, "ConfigMap", "swarmdash-settings")["data"], **env_of(node)}
    policy = HostPolicy.from_settings(load_settings(
        environ={k: v for k, v in env.items() if k == "ALLOWED_HOSTS"}, env_file=None))
    for probe in (node["readinessProbe"], node["livenessProbe"]):
        for header in probe["httpGet"].get("httpHeaders", []):
            if header["name"].lower() == "host":
                assert policy.allows(header["value"])


def test_the_ports_are_the_settings_and_gunicorn_binds_them(
        production: Objects, monkeypatch: pytest.MonkeyPatch) -> None:
    node = node_container(production)
    env = env_of(node)
    ports = {p["name"]: p["containerPort"] for p in node["ports"]}
    assert ports == {"http": int(env["PORT"])} == {"http": DEFAULTS.port}
    for name, value in env.items():  # gunicorn's config reads the node's settings
        if not name.endswith("_FILE") and "$(" not in value:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("SWARMDASH_ENV_FILE", "/nonexistent")
    conf = gunicorn_config()
    monkeypatch.undo()
    assert conf["bind"] == f"0.0.0.0:{DEFAULTS.port}"
    assert conf["workers"] == 1 and conf["worker_class"] == "gevent"
    service = find(production, "Service", "swarmdash-nodes")
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS record per pod
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    haproxy = env_of(next(containers(find(production, "Deployment", "swarmdash-haproxy"))))
    assert int(haproxy["SWARMDASH_NODE_PORT"]) == service["spec"]["ports"][0]["port"] == 8050
    pod = find(production, "Deployment", "swarmdash-node")["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == env["PORT"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_is_a_setting_and_the_node_starts_with_them(
        rendered: dict[str, Objects], overlay: str, tmp_path: Path) -> None:
    """The nodes' variables (the container's and settings.env's) are settings.py's, and a
    node accepts them, production checks included, with the overlay's secrets as files."""
    objects = rendered[overlay]
    node = node_container(objects)
    env = {**find(objects, "ConfigMap", "swarmdash-settings")["data"], **env_of(node)}
    expanded = {m for v in env.values() for m in re.findall(r"\$\((\w+)\)", v)}
    unknown = set(env) - SETTINGS - {f"{s}_FILE" for s in SETTINGS}
    assert unknown == set(), f"not settings: {sorted(unknown)}"
    assert expanded <= {e["name"] for e in node["env"] if "valueFrom" in e}
    mount = next(m["mountPath"] for m in node["volumeMounts"] if m["name"] == "secrets")
    for key, value in secret_data(objects, "swarmdash-node").items():
        (tmp_path / key).write_text(value)
    real = {k: v.replace(mount, str(tmp_path)) for k, v in env.items() if "$(" not in v}
    settings = load_settings(environ=real, env_file=None)
    check_serving(settings)
    assert settings.redis_url and not settings.embedded


def test_every_secret_and_config_map_used_exists_with_its_keys(
        rendered: dict[str, Objects]) -> None:
    for objects in rendered.values():
        data = {(o["kind"], o["metadata"]["name"]): set(o.get("data", {}))
                for o in objects if o["kind"] in ("Secret", "ConfigMap")}
        data |= {("Secret", name): keys for name, keys in EXTERNAL_SECRETS.items()}
        for workload in workloads(objects):
            spec = workload["spec"]["template"]["spec"]
            files: dict[str, set[str]] = {}
            for volume in spec["volumes"]:
                source = volume.get("secret") or volume.get("configMap")
                if source is None:
                    continue
                kind = "Secret" if "secret" in volume else "ConfigMap"
                name = source.get("secretName") or source.get("name")
                keys = data.get((kind, name))
                assert keys is not None, f"{workload['metadata']['name']}: no {kind} {name}"
                items = {i["key"]: i["path"] for i in source.get("items", [])}
                assert set(items) <= keys, (name, set(items) - keys)
                files[volume["name"]] = set(items.values()) if items else keys
            for container in spec["containers"]:
                for ref in container.get("envFrom", []):
                    assert ("ConfigMap", ref["configMapRef"]["name"]) in data
                mounted = {f"{m['mountPath']}/{f}" for m in container.get("volumeMounts", [])
                           for f in files.get(m["name"], ())}
                for name, value in env_of(container).items():
                    if name.endswith("_FILE"):
                        assert value in mounted, f"{name}={value}: no such file mounted"


def test_redis_and_the_sentinels_get_the_secrets_compose_gives_them(production: Objects) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in (("swarmdash-redis", "redis-primary"),
                          ("swarmdash-sentinel", "sentinel-1")):
        spec = find(production, "StatefulSet", name)["spec"]["template"]["spec"]
        secret = next(v["secret"] for v in spec["volumes"] if "secret" in v)
        assert {i["path"] for i in secret["items"]} == set(compose[service]["secrets"])


def test_the_nodes_reach_redis_through_the_sentinel_pods(production: Objects) -> None:
    url = parse_sentinel_url(secret_data(production, "swarmdash-node")["node_redis_url"])
    sentinels = find(production, "StatefulSet", "swarmdash-sentinel")
    service = sentinels["spec"]["serviceName"]
    pods = {f"swarmdash-sentinel-{i}.{service}" for i in range(sentinels["spec"]["replicas"])}
    assert {host for host, _ in url.sentinels} == pods
    port = next(containers(sentinels))["ports"][0]["containerPort"]
    assert {p for _, p in url.sentinels} == {port}
    monitor = re.search(r"^sentinel monitor (\S+) (\S+) ",
                        (ROOT / "infra/redis/sentinel.conf").read_text(), re.M)
    assert monitor and url.service == monitor.group(1)
    primary = find(production, "Service", monitor.group(2))  # the name sentinel.conf watches
    assert primary["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == "swarmdash-redis-0"


# --- draining, disruptions, scaling ---------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_stopping_node_drains_before_it_is_killed(rendered: dict[str, Objects],
                                                    overlay: str) -> None:
    objects = rendered[overlay]
    deployment = find(objects, "Deployment", "swarmdash-node")
    pod = deployment["spec"]["template"]["spec"]
    node = pod["containers"][0]
    env = {**find(objects, "ConfigMap", "swarmdash-settings")["data"], **env_of(node)}
    drain = int(env.get("GRACEFUL_TIMEOUT", DEFAULTS.graceful_timeout))
    sleep = node["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + drain
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = pod and deployment["spec"]["template"]["metadata"]["labels"]
    budget = find(objects, "PodDisruptionBudget", "swarmdash-node")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["maxUnavailable"] == 1
    hpa = find(objects, "HorizontalPodAutoscaler", "swarmdash-node")["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu" and node["resources"]["requests"]["cpu"]


def set_count(tree: Path, overlay: str, nodes: int, most: int) -> Objects:
    path = tree / "overlays" / overlay / "kustomization.yaml"
    text = path.read_text()
    text = re.sub(r"(name: swarmdash-node\n\s+count: )\d+", rf"\g<1>{nodes}", text)
    text = re.sub(r"(path: /spec/maxReplicas, value: )\d+", rf"\g<1>{most}", text)
    path.write_text(text)
    return build(path.parent)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_node_count_is_set_once_and_the_rest_follows(
        rendered: dict[str, Objects], tree: Path, overlay: str) -> None:
    kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml")
                                   .read_text())
    [count] = [r["count"] for r in kustomization["replicas"] if r["name"] == "swarmdash-node"]
    for objects, nodes, most in ((rendered[overlay], count, None),
                                 (set_count(tree, overlay, 7, 15), 7, 15)):
        hpa = find(objects, "HorizontalPodAutoscaler", "swarmdash-node")["spec"]
        slots = env_of(next(containers(find(objects, "Deployment", "swarmdash-haproxy"))))
        assert find(objects, "Deployment", "swarmdash-node")["spec"]["replicas"] == nodes
        assert hpa["minReplicas"] == nodes
        assert int(slots["SWARMDASH_MAX_NODES"]) == hpa["maxReplicas"] >= nodes
        if most is not None:
            assert hpa["maxReplicas"] == most


# --- HAProxy --------------------------------------------------------------------------------

def test_haproxy_runs_the_repository_config_with_balance_source(production: Objects) -> None:
    config = find(production, "ConfigMap", "swarmdash-haproxy")["data"]["haproxy.cfg"]
    assert config == (ROOT / "haproxy" / "haproxy.cfg").read_text()
    deployment = find(production, "Deployment", "swarmdash-haproxy")
    env = env_of(next(containers(deployment)))
    assert env["SWARMDASH_STICKINESS"] == "source"
    branch = config.split('.elif streq("${SWARMDASH_STICKINESS}",none)')[1].split(".else")[1]
    assert "balance source" in branch.split(".endif")[0]
    # source hashing maps slots in one HAProxy's resolution order: one HAProxy only
    assert deployment["spec"]["replicas"] == 1


def test_haproxy_gets_every_variable_its_config_reads(production: Objects) -> None:
    """Set in the manifest, or by the container's start script from the pod's DNS."""
    config = (ROOT / "haproxy" / "haproxy.cfg").read_text()
    wanted = set(re.findall(r"\$\{(SWARMDASH_\w+)\}", config))
    container = next(containers(find(production, "Deployment", "swarmdash-haproxy")))
    given = set(env_of(container)) | set(re.findall(r"export (SWARMDASH_\w+)=",
                                                     container["args"][0]))
    assert wanted <= given, f"haproxy.cfg reads variables the pod does not set: {wanted - given}"
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), names


def test_the_load_balancer_keeps_the_client_address_and_reaches_the_binds(
        production: Objects) -> None:
    service = find(production, "Service", "swarmdash")["spec"]
    assert service["type"] == "LoadBalancer" and service["externalTrafficPolicy"] == "Local"
    haproxy = next(containers(find(production, "Deployment", "swarmdash-haproxy")))
    ports = {p["name"]: p["containerPort"] for p in haproxy["ports"]}
    env = env_of(haproxy)
    assert {p["port"]: ports[p["targetPort"]] for p in service["ports"]} == {
        80: int(env["SWARMDASH_HTTP_BIND"].rsplit(":", 1)[1]),
        443: int(env["SWARMDASH_HTTPS_BIND"].rsplit(":", 1)[1])}
    internal = find(production, "Service", "swarmdash-haproxy")["spec"]["ports"]
    assert {ports[p["targetPort"]] for p in internal} == {
        int(env["SWARMDASH_PLAIN_BIND"].rsplit(":", 1)[1]),
        int(env["SWARMDASH_STATS_BIND"].rsplit(":", 1)[1])}


EXEC = "exec haproxy -W -db -f /usr/local/etc/haproxy/haproxy.cfg"


def haproxy_pod(objects: Objects, certificate: Certificate, tmp_path: Path,
                **binds: str) -> tuple[list[str], dict[str, str]]:
    """The HAProxy container's start command and variables, on local files: the ConfigMap's
    haproxy.cfg, the TLS Secret's items and a resolv.conf as the kubelet writes it; its
    last line still runs ``haproxy ...`` (EXEC). ``binds`` override variables (ports)."""
    deployment = find(objects, "Deployment", "swarmdash-haproxy")
    container = next(containers(deployment))
    (tmp_path / "haproxy.cfg").write_text(
        find(objects, "ConfigMap", "swarmdash-haproxy")["data"]["haproxy.cfg"])
    (tmp_path / "resolv.conf").write_text(
        "search team-a.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")
    tls = next(v["secret"] for v in deployment["spec"]["template"]["spec"]["volumes"]
               if v["name"] == "tls")
    source = {"tls.crt": certificate.cert, "tls.key": certificate.key}
    for item in tls["items"]:
        (tmp_path / item["path"]).write_text(source[item["key"]].read_text())
    env = env_of(container)
    tls_dir = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "tls")
    env["SWARMDASH_TLS_CERT"] = env["SWARMDASH_TLS_CERT"].replace(tls_dir, str(tmp_path))
    env["SWARMDASH_HAPROXY_SOCKET"] = str(tmp_path / "admin.sock")
    env.update(binds)
    script = container["args"][0].replace("/etc/resolv.conf", str(tmp_path / "resolv.conf"))
    return [*container["command"], script], env


def test_haproxy_accepts_the_config_as_the_pod_starts_it(
        production: Objects, certificate: Certificate, tmp_path: Path) -> None:
    """The container's own start script: the nodes' name in the pod's namespace, kube-dns
    as the resolver, the TLS Secret's key beside its certificate; `haproxy -c` accepts it."""
    haproxy = need("haproxy", "haproxy")
    command, env = haproxy_pod(production, certificate, tmp_path)
    command[-1] = replace_exactly(
        command[-1], EXEC, 'echo "$SWARMDASH_DNS $SWARMDASH_NODES_FQDN"; '
        f'exec {haproxy} -c -f {tmp_path / "haproxy.cfg"}')
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == (
        "10.96.0.10:53 swarmdash-nodes.team-a.svc.cluster.local")


def first_line(port: int, data: bytes) -> bytes:
    """HAProxy's status line in answer to ``data`` on ``port``; b"" if it closes or resets."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        answer = b""
        while b"\r\n" not in answer:
            try:
                chunk = conn.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n")[0]


def test_with_the_proxy_protocol_haproxy_reads_the_client_address_from_the_header(
        tree: Path, certificate: Certificate, tmp_path: Path) -> None:
    """The proxy-protocol component: the public binds take the PROXY header (a load
    balancer's) and refuse a connection without one; the internal plain bind does not."""
    haproxy = need("haproxy", "haproxy")
    objects = with_component(tree, "proxy-protocol")
    public, plain = free_port(), free_port()
    command, env = haproxy_pod(
        objects, certificate, tmp_path, SWARMDASH_HTTP_BIND=f"127.0.0.1:{public}",
        SWARMDASH_HTTPS_BIND=f"127.0.0.1:{free_port()}",
        SWARMDASH_PLAIN_BIND=f"127.0.0.1:{plain}",
        SWARMDASH_STATS_BIND=f"127.0.0.1:{free_port()}")
    assert env["SWARMDASH_ACCEPT_PROXY"] == "true"
    names = [e["name"] for e in next(containers(find(
        objects, "Deployment", "swarmdash-haproxy")))["env"]]
    assert names.count("SWARMDASH_ACCEPT_PROXY") == 1
    command[-1] = replace_exactly(command[-1], EXEC,
                                  f'exec {haproxy} -db -f {tmp_path / "haproxy.cfg"}')
    process = Process("haproxy-proxy-protocol", command, tmp_path, env).start()
    try:
        wait_for(lambda: port_open(plain), 10, message="HAProxy listens")
        request = b"GET / HTTP/1.1\r\nHost: dash.example.com\r\n\r\n"
        header = b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 80\r\n"
        assert first_line(public, header + request) == b"HTTP/1.1 301 Moved Permanently"
        assert first_line(public, request) == b""
        assert first_line(plain, request).startswith(b"HTTP/1.1 503")  # no node: no PROXY
    finally:
        process.stop()
    lb = find(objects, "Service", "swarmdash")["metadata"]["annotations"]
    assert lb["service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"] == "*"


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# --- images ---------------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_images_are_compose_s(rendered: dict[str, Objects], overlay: str) -> None:
    """The node image is this version's; Redis and HAProxy are the versions compose runs
    (and the tests run against)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    images = {c["name"]: c["image"] for w in workloads(rendered[overlay]) for c in containers(w)}
    assert images.pop("node") == f"swarmdash:{version}"
    assert images.pop("haproxy") == compose["haproxy"]["image"]
    assert set(images.values()) <= {compose["redis-primary"]["image"]}


# --- Redis with Sentinel --------------------------------------------------------------------

def first_config(objects: Objects, statefulset: str, ordinal: int, tmp_path: Path) -> str:
    """The config a pod's start script writes to its empty volume (infra/redis/start.sh
    from the ConfigMap, the Secret's files), on local paths instead of the pod's."""
    workload = find(objects, "StatefulSet", statefulset)
    container = next(containers(workload))
    spec = workload["spec"]["template"]["spec"]
    templates = find(objects, "ConfigMap", "swarmdash-redis")["data"]
    secret_name = next(v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v)
    pod = tmp_path / f"{statefulset}-{ordinal}"
    paths = {"/data": pod / "data", "/usr/local/etc/redis": pod / "templates",
             "/run/secrets": pod / "secrets"}
    for path in paths.values():
        path.mkdir(parents=True)
    for name, text in templates.items():
        (paths["/usr/local/etc/redis"] / name).write_text(text)
    for name, text in secret_data(objects, secret_name).items():
        (paths["/run/secrets"] / name).write_text(text)
    start = templates["start.sh"]
    start = re.sub("|".join(f"(?<![\\w/]){re.escape(p)}/" for p in paths),
                   lambda m: f"{paths[m.group(0)[:-1]]}/", start)
    assert not any(f" {p}" in start or f'"{p}' in start for p in paths), start
    start = replace_exactly(start, "exec redis-server", "exit 0 #", count=2)
    (pod / "start.sh").write_text(start)
    script = replace_exactly(container["args"][0], "/usr/local/etc/redis/start.sh",
                             f"sh {pod / 'start.sh'}")
    env = {"POD_NAME": f"{statefulset}-{ordinal}", "PATH": "/usr/bin:/bin"}
    subprocess.run([*container["command"], script], env=env, check=True, timeout=30)
    kind = "sentinel" if "sentinel" in statefulset else "redis"
    return (paths["/data"] / f"{kind}.conf").read_text()


def test_the_first_redis_pod_is_the_primary_and_the_others_its_replicas(
        production: Objects, tmp_path: Path) -> None:
    primary = first_config(production, "swarmdash-redis", 0, tmp_path)
    assert "replica-announce-ip redis-primary" in primary and "replicaof" not in primary
    replica = first_config(production, "swarmdash-redis", 2, tmp_path)
    assert "replica-announce-ip swarmdash-redis-2.swarmdash-redis" in replica
    assert "replicaof redis-primary 6379" in replica
    sentinel = first_config(production, "swarmdash-sentinel", 1, tmp_path)
    assert "sentinel announce-ip swarmdash-sentinel-1.swarmdash-sentinel" in sentinel
    password = secret_data(production, "swarmdash-redis")["redis_sentinel_password"]
    assert f"sentinel auth-pass swarmdash {password}" in sentinel


def test_the_primary_s_config_lets_the_nodes_in_and_no_one_else(
        production: Objects, tmp_path: Path) -> None:
    """The first pod's config, on a real redis-server: the nodes' user logs in with the
    password of their REDIS_URL; the default user does not exist."""
    need("redis-server", "redis-server")
    config = tmp_path / "primary.conf"
    config.write_text(replace_exactly(first_config(production, "swarmdash-redis", 0, tmp_path),
                                      "\ndir /data\n", f"\ndir {tmp_path}\n"))
    port = free_port()
    server = Process("k8s-redis-primary", [
        shutil.which("redis-server") or "/usr/bin/redis-server", str(config),
        "--port", str(port), "--bind", "127.0.0.1"], tmp_path).start()
    try:
        url = parse_sentinel_url(secret_data(production, "swarmdash-node")["node_redis_url"])
        node = redis.Redis(port=port, username=url.username, password=url.password)
        wait_for(lambda: port_open(port), 10, message="redis-server listens")
        assert node.ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
    finally:
        server.stop()
