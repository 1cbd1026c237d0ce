"""Render infra/apache/swarmdash.conf onto loopback ports with a minimal server root."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from tests.helpers import ROOT

from .conftest import Certificate, replace_exactly
from .nginx import render_nodes

SITE = ROOT / "infra" / "apache" / "swarmdash.conf"
MODULES_DIR = Path("/usr/lib/apache2/modules")
MODULES = ("mpm_event", "authz_core", "alias", "ssl", "socache_shmcb", "headers", "proxy",
           "proxy_http", "proxy_balancer", "lbmethod_byrequests", "slotmem_shm")
#: Built into Debian's apache2; loaded when a build has it as a module.
OPTIONAL = ("log_config",)


def render(out: Path, cert: Certificate, http: int, https: int, nodes: list[str]) -> Path:
    """A server root in ``out`` running the site on 127.0.0.1 ports, balancing ``nodes``."""
    text = SITE.read_text()
    text = replace_exactly(text, "<VirtualHost *:80>", f"<VirtualHost 127.0.0.1:{http}>")
    text = replace_exactly(text, "<VirtualHost *:443>", f"<VirtualHost 127.0.0.1:{https}>")
    text = replace_exactly(text, "/etc/letsencrypt/live/dash.example.com/fullchain.pem",
                           str(cert.cert))
    text = replace_exactly(text, "/etc/letsencrypt/live/dash.example.com/privkey.pem",
                           str(cert.key))
    members = out / "swarmdash-nodes.conf"
    members.write_text(render_nodes(nodes, "apache"))
    text = replace_exactly(text, "Include /etc/apache2/swarmdash-nodes.conf",
                           f'Include "{members}"')
    site = out / "site.conf"
    site.write_text(text)
    conf = out / "httpd.conf"
    user = ""
    if os.geteuid() == 0:  # Apache refuses to serve as root: its children switch to nobody
        nobody = pwd.getpwnam("nobody")
        user = f"User nobody\nGroup #{nobody.pw_gid}\n"
    conf.write_text(
        f'ServerRoot "{out}"\nServerName localhost\nPidFile "{out}/httpd.pid"\n'
        f'DefaultRuntimeDir "{out}"\nErrorLog "{out}/error.log"\nLogLevel warn\n'
        f"Mutex file:{out} default\nListen 127.0.0.1:{http}\nListen 127.0.0.1:{https}\n"
        f'DocumentRoot "{out}"\n{user}'
        + "".join(f"LoadModule {m}_module {MODULES_DIR}/mod_{m}.so\n" for m in MODULES
                  + tuple(m for m in OPTIONAL if (MODULES_DIR / f"mod_{m}.so").exists()))
        + f'LogFormat "%h %r %>s %{{BALANCER_WORKER_ROUTE}}e" route\n'
        f'CustomLog "{out}/access.log" route\nInclude "{site}"\n')
    return conf


def configtest(apache: str, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([apache, "-t", "-d", str(conf.parent), "-f", str(conf)],
                          capture_output=True, text=True, timeout=30)
