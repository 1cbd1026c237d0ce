"""The ``swarmdash`` command line: settings, and clear errors before anything starts."""

from __future__ import annotations

import pytest

from swarmdash.cli import main
from swarmdash.settings import describe


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
    monkeypatch.setenv("SECRET_KEY", "hunter2")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0?password=hunter3")
    main(["settings"])
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


def test_notify_without_a_queue_says_what_is_missing() -> None:
    with pytest.raises(SystemExit, match="MESSAGE_QUEUE_URL or REDIS_URL"):
        main(["notify", "hello"])
    with pytest.raises(SystemExit, match="not a redis:// or amqp:// URL"):
        main(["notify", "hello", "--queue-url", "http://example.invalid"])


def test_publish_needs_an_event_and_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="give --file"):
        main(["publish", "--type", "log"])
    with pytest.raises(SystemExit, match="needs a Redis URL"):
        main(["publish", "--type", "log", "--swarm", "s", "--agent", "a",
              "--data", '{"level": "info", "message": "m"}'])
