"""The ``swarmdash`` command line: settings, and clear errors before anything starts."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
from pathlib import Path

import pytest

from swarmdash import __version__
from swarmdash.cli import build_parser, main
from swarmdash.cluster.cli import duration, format_status
from swarmdash.settings import describe
from tests.helpers import BIN, ROOT
from tests.unit.conftest import CLOSED_URL


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, _, _ in describe():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWARMDASH_ENV_FILE", "/nonexistent")


def test_settings_defaults_lists_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--defaults"]) == 0
    out = capsys.readouterr().out
    for name, default, _ in describe():
        assert f"\n{name}={default}\n" in f"\n{out}"


def test_settings_shows_values_in_effect(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WEBSOCKET_PING_INTERVAL", "10")
    monkeypatch.setenv("SECRET_KEY", "hunter2-" * 5)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0?password=hunter3")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "WEBSOCKET_PING_INTERVAL=10\n" in out and "SECRET_KEY=****\n" in out
    assert "REDIS_URL=redis://127.0.0.1:6379/0?password=****\n" in out
    assert "hunter2" not in out and "hunter3" not in out


def test_a_bad_setting_stops_with_its_name(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WEBSOCKET_PING_TIMEOUT", "soon")
    assert main(["settings"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarmdash: configuration error: WEBSOCKET_PING_TIMEOUT='soon'")


def test_notify_without_a_queue_says_what_is_missing(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="MESSAGE_QUEUE_URL or REDIS_URL"):
        main(["notify", "hello"])
    assert main(["notify", "hello", "--queue-url", "http://example.invalid"]) == 2
    assert "--queue-url='http://example.invalid': expected a redis://" in capsys.readouterr().err


def test_publish_needs_an_event_and_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="give --file"):
        main(["publish", "--type", "log"])
    with pytest.raises(SystemExit, match="needs a Redis URL"):
        main(["publish", "--type", "log", "--swarm", "s", "--agent", "a",
              "--data", '{"level": "info", "message": "m"}'])


# --- commands that fail loudly: one line on stderr and a non-zero exit status ---------------

def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``swarmdash ARGS`` as an operator runs it, with no .env and no settings set."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    return subprocess.run([str(BIN / "swarmdash"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT,
                          env={**clean, "SWARMDASH_ENV_FILE": "/nonexistent", **(env or {})})


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


SETTING_NAMES = {name for name, _, _ in describe()}
EVENT = ["--type", "log", "--swarm", "s", "--agent", "a"]


def test_publish_bad_data_is_one_line() -> None:
    done = run_cli("publish", "--redis-url", CLOSED_URL, *EVENT, "--data", "{bad")
    assert done.returncode == 1
    assert one_line(done).startswith("publish: --data is not JSON: ")


def test_publish_missing_file_is_one_line(tmp_path: Path) -> None:
    done = run_cli("publish", "--redis-url", CLOSED_URL, "--file", str(tmp_path / "none.json"))
    assert done.returncode == 1
    assert one_line(done) == (f"publish: cannot read --file {tmp_path / 'none.json'}: "
                              "No such file or directory")


def test_publish_bad_setting_is_a_configuration_error() -> None:
    done = run_cli("publish", *EVENT, env={"REDIS_URL": "http://x"})
    assert done.returncode == 2
    assert one_line(done).startswith("swarmdash: configuration error: REDIS_URL='http://x'")


def test_a_redis_url_without_a_host_is_refused() -> None:
    done = run_cli("publish", "--redis-url", "redis://", *EVENT)
    assert done.returncode == 2
    assert one_line(done) == ("swarmdash: configuration error: REDIS_URL='redis://': names no "
                              "host (redis://HOST:PORT)")


def test_notify_with_unreachable_redis_fails() -> None:
    done = run_cli("notify", "hello", "--queue-url", CLOSED_URL)
    assert done.returncode == 3 and done.stdout == ""
    assert one_line(done).startswith("notify: not sent, cannot publish to "
                                     "redis://127.0.0.1:1/0: ")


def test_watch_against_an_unreachable_url_is_one_line() -> None:
    done = run_cli("watch", "--url", "http://127.0.0.1:1")
    assert done.returncode == 1
    assert one_line(done) == "watch: cannot connect to http://127.0.0.1:1: Connection refused"


def test_demo_on_a_port_in_use_says_so_before_anything_else() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("demo", "--port", str(port))
    assert done.returncode == 1
    assert one_line(done) == (f"demo: cannot listen on 127.0.0.1:{port}: Address already in "
                              "use (another node or demo? choose --port)")


def test_settings_fails_when_a_node_would_refuse_them() -> None:
    done = run_cli("settings")
    assert done.returncode == 2 and "PORT=8050" in done.stdout
    assert one_line(done).startswith("# a node would refuse to start with these settings: "
                                     "SECRET_KEY is missing")
    assert run_cli("settings", env={"SECRET_KEY": "k" * 40}).returncode == 2  # guessable
    assert run_cli("settings", env={"SECRET_KEY": "0123456789abcdef" * 3}).returncode == 0


def test_cluster_dir_goes_before_or_after_the_action(tmp_path: Path) -> None:
    parser = build_parser()
    for argv in (["cluster", "--dir", "d", "down"], ["cluster", "down", "--dir", "d"]):
        assert parser.parse_args(argv).dir == "d"
    assert parser.parse_args(["cluster", "down"]).dir == ".swarmdash-cluster"
    done = run_cli("cluster", "status", "--dir", str(tmp_path))
    assert done.returncode == 1 and str(tmp_path) in one_line(done)


# --- help ---------------------------------------------------------------------------------

def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"swarmdash {__version__}"


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += _subparsers(sub)
    return found


def test_every_flag_has_help_that_shows_its_default() -> None:
    missing = []
    for parser in _subparsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction
                          | argparse._VersionAction):
                continue
            text = (formatter._expand_help(action) if action.help else "")
            flag = f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
            if not text:
                missing.append(f"{flag}: no help")
            elif (action.option_strings and action.nargs != 0 and not action.required
                  and "default" not in text):
                missing.append(f"{flag}: no default in {text!r}")
    assert not missing, "\n".join(missing)


def test_top_level_help_is_written_for_people() -> None:
    text = build_parser().format_help()
    assert "``" not in text and "|" not in text.split("positional")[0]
    assert "swarmdash COMMAND --help" in text


def test_cluster_status_is_a_table_a_person_reads() -> None:
    status = {"entrypoint": {"http": "http://h", "https": "https://h", "stats": "http://s"},
              "services": {"redis": "running"},
              "nodes": [{"node": "node1", "address": "127.0.1.1:8050", "pid": 42,
                         "process": "running", "haproxy": "UP", "registry": "live",
                         "clients": 3, "uptime": 3725.4}],
              "totals": {"nodes": 1, "clients": 3, "clients_per_swarm": {"beta": 1, "alpha": 2}}}
    text = format_status(status)
    assert "1h 02m" in text and "3725" not in text and "{" not in text
    lines = text.splitlines()
    swarms = lines[lines.index(next(x for x in lines if x.startswith("swarm "))):]
    assert [line.split() for line in swarms] == [["swarm", "viewers"], ["alpha", "2"],
                                                 ["beta", "1"]]
    assert [duration(s) for s in (5, 432, 90061)] == ["5s", "7m 12s", "1d 1h"]
