"""infra/systemd: the node units pass `systemd-analyze verify` and keep their promises
(restart, environment file, unprivileged user, hardening, a stop timeout longer than
gunicorn's graceful timeout)."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from swarmdash.settings import Settings
from tests.helpers import BIN, ROOT

from .conftest import replace_exactly

UNITS = ROOT / "infra" / "systemd"
NAMES = ("swarmdash-node.service", "swarmdash-node@.service")
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
             "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes",
             "CapabilityBoundingSet": ""}


def service(name: str) -> dict[str, list[str]]:
    """[Service] of a unit: every key with all its values, in order."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("name", NAMES)
def test_unit_restarts_reads_its_environment_file_and_stops_after_the_graceful_timeout(
        name: str) -> None:
    svc = service(name)
    assert svc["Restart"] == ["always"]
    assert any(f.lstrip("-") == "/etc/swarmdash/swarmdash.env" for f in svc["EnvironmentFile"])
    assert svc["User"][0] not in ("root", "0") and svc["Group"][0] not in ("root", "0")
    [exec_start] = svc["ExecStart"]
    assert exec_start.endswith(
        "/.venv/bin/gunicorn -c python:swarmdash.gunicorn_conf swarmdash.wsgi:app")
    stop = int(re.fullmatch(r"(\d+)s?", svc["TimeoutStopSec"][0]).group(1))  # type: ignore[union-attr]
    assert stop > Settings().graceful_timeout + 5, "systemd would kill a node still draining"
    for key, value in HARDENING.items():
        assert svc.get(key) == [value], f"{name}: {key}={value} missing"


def test_template_takes_port_and_node_name_from_the_instance() -> None:
    [exec_start] = service("swarmdash-node@.service")["ExecStart"]
    assert exec_start.startswith("/usr/bin/env PORT=%i NODE_ID=%H-%i "), \
        "set on the command line: EnvironmentFile= would override Environment="


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("name", NAMES)
def test_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    """On a copy pointed at this checkout, its virtualenv and the current user (verify
    checks that the command exists and warns about unknown keys)."""
    user = pwd.getpwuid(os.getuid())
    text = (UNITS / name).read_text()
    text = replace_exactly(text, "/opt/swarmdash/.venv/bin/gunicorn",
                           str(BIN / "gunicorn"))
    text = replace_exactly(text, "WorkingDirectory=/opt/swarmdash",
                           f"WorkingDirectory={ROOT}")
    env_file = tmp_path / "swarmdash.env"
    env_file.write_text("REDIS_URL=redis://127.0.0.1:6379/0\n")
    text = text.replace("/etc/swarmdash/swarmdash.env", str(env_file))
    text = replace_exactly(text, "User=swarmdash", f"User={user.pw_name}")
    text = replace_exactly(text, "Group=swarmdash", f"Group={grp.getgrgid(user.pw_gid).gr_name}")
    unit = tmp_path / name.replace("@.", "@8051.")
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if str(tmp_path) in line and "Special user" not in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr
