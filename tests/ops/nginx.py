"""Render the repository's nginx sites onto free loopback ports and run a real nginx."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.helpers import ROOT, Process, free_port, wait_for

from .conftest import Certificate, replace_exactly

NGINX_DIR = ROOT / "nginx"
CERT = "/etc/letsencrypt/live/dash.example.com/fullchain.pem"
KEY = "/etc/letsencrypt/live/dash.example.com/privkey.pem"
NODES_FILE = "/etc/nginx/swarmdash-nodes.conf"


def render_nodes(nodes: list[str], fmt: str = "nginx") -> str:
    """The node list, rendered by nginx/render.sh from SWARMDASH_NODES (nginx or apache)."""
    result = subprocess.run(["sh", str(NGINX_DIR / "render.sh"), fmt], capture_output=True,
                            text=True, timeout=10,
                            env={**os.environ, "SWARMDASH_NODES": " ".join(nodes)})
    assert result.returncode == 0, result.stderr
    return result.stdout


def render_site(name: str, out: Path, cert: Certificate, http: int, https: int,
                nodes: list[str]) -> Path:
    """A copy of nginx/<name> listening on 127.0.0.1 ports, with the test certificate;
    the cluster site includes a node list rendered by render.sh, the single-node site's
    upstream points at the one node."""
    text = (NGINX_DIR / name).read_text()
    text = replace_exactly(text, "listen 80;", f"listen 127.0.0.1:{http};")
    text = replace_exactly(text, "    listen [::]:80;\n", "")
    text = replace_exactly(text, "listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
    text = replace_exactly(text, "    listen [::]:443 ssl;\n", "")
    text = replace_exactly(text, CERT, str(cert.cert))
    text = replace_exactly(text, KEY, str(cert.key))
    text = replace_exactly(text, "root /var/www/certbot;", f"root {out};")
    if name == "swarmdash-cluster.conf":
        nodes_file = out / "swarmdash-nodes.conf"
        nodes_file.write_text(render_nodes(nodes))
        text = replace_exactly(text, f"include {NODES_FILE};", f"include {nodes_file};",
                               count=2)
    else:
        [node] = nodes
        text = replace_exactly(text, "server 127.0.0.1:8050 ", f"server {node} ")
    site = out / "site.conf"
    site.write_text(text)
    conf = out / "nginx.conf"
    temp = "".join(f"    {kind}_temp_path {out / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {out / 'nginx.pid'};\nerror_log {out / 'error.log'} warn;\n"
        + "events { worker_connections 1024; }\n"
        + f"http {{\n    access_log {out / 'access.log'};\n{temp}    include {site};\n}}\n")
    return conf


def nginx_test(nginx: str, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([nginx, "-t", "-p", str(conf.parent), "-c", str(conf),
                           "-e", str(conf.parent / "error.log")],
                          capture_output=True, text=True, timeout=30)


@dataclass
class Nginx:
    process: Process
    http: int
    https: int
    dir: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https}"

    def stop(self) -> None:
        self.process.stop(10)


def start_nginx(nginx: str, name: str, out: Path, cert: Certificate,
                nodes: list[str]) -> Nginx:
    http, https = free_port(), free_port()
    conf = render_site(name, out, cert, http, https, nodes)
    checked = nginx_test(nginx, conf)
    assert checked.returncode == 0, checked.stderr
    process = Process(f"nginx-{https}", [nginx, "-p", str(out), "-c", str(conf),
                                         "-e", str(out / "error.log"), "-g", "daemon off;"],
                      out).start()
    server = Nginx(process, http, https, out)

    def ready() -> bool:  # or exited: wait_for would retry through an exception
        return not process.alive or requests.get(
            f"{server.url}/api/v1/config", verify=str(cert.cert), timeout=2).status_code == 200

    try:
        wait_for(ready, 15, message="nginx to proxy /api/v1/config")
        assert process.alive, (f"nginx exited:\n{process.tail()}\n"
                               f"{(out / 'error.log').read_text(errors='replace')}")
    except BaseException:
        server.stop()
        raise
    return server
