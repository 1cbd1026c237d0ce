"""settings.py: defaults, validation naming the variable, .env files."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from swarmdash.settings import (
    DEFAULT_SECRET_KEY,
    Settings,
    SettingsError,
    describe,
    load_settings,
    read_env_file,
)


@pytest.fixture(autouse=True)
def _no_env_file_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWARMDASH_ENV_FILE", raising=False)


def load(**env: str) -> Settings:
    return load_settings(environ=env, env_file=None)


def test_defaults_of_the_guide() -> None:
    s = load()
    assert s.websocket_ping_interval == 25
    assert s.websocket_ping_timeout == 60
    assert s.websocket_fallback_threshold == 5
    assert s.websocket_max_reconnect_attempts == 10
    assert s.websocket_enabled is True
    assert s.max_queue_size == 1000
    assert s.flask_debug is False and s.socketio_debug is False
    assert s.secret_key == DEFAULT_SECRET_KEY
    assert s.cors_allowed_origins == ()
    assert s.embedded and s.queue_url == ""
    assert s.batch_windows == {"agent": 0.2, "task": 0.2, "metric": 0.5, "log": 1.0}
    assert s == Settings()


def test_values_are_converted() -> None:
    s = load(WEBSOCKET_PING_INTERVAL="10", WEBSOCKET_ENABLED="off", FLASK_DEBUG="Yes",
             REDIS_TIMEOUT="0.5", CORS_ALLOWED_ORIGINS="https://a.example, http://b:8080",
             REDIS_URL="redis://127.0.0.1:6379/0", ASYNC_MODE="eventlet", NODE_ID="n1",
             PORT="9000")
    assert s.websocket_ping_interval == 10
    assert s.websocket_enabled is False and s.flask_debug is True
    assert s.redis_timeout == 0.5
    assert s.cors_allowed_origins == ("https://a.example", "http://b:8080")
    assert not s.embedded and s.queue_url == "redis://127.0.0.1:6379/0"
    assert s.async_mode == "eventlet"
    assert s.node_name == "n1"


def test_node_name_defaults_to_host_and_port() -> None:
    assert load(PORT="8123").node_name.endswith(":8123")


@pytest.mark.parametrize(("name", "value"), [
    ("WEBSOCKET_PING_INTERVAL", "ten"),
    ("WEBSOCKET_PING_INTERVAL", "0"),
    ("WEBSOCKET_PING_TIMEOUT", "3601"),
    ("WEBSOCKET_FALLBACK_THRESHOLD", "0"),
    ("MAX_QUEUE_SIZE", "-5"),
    ("MAX_QUEUE_SIZE", "1.5"),
    ("PORT", "70000"),
    ("STREAM_MAXLEN", "99"),
    ("REDIS_TIMEOUT", "fast"),
    ("REDIS_TIMEOUT", "nan"),
    ("REDIS_TIMEOUT", "inf"),
    ("REDIS_TIMEOUT", "0"),
    ("WEBSOCKET_ENABLED", "maybe"),
    ("FLASK_DEBUG", "2"),
    ("ASYNC_MODE", "asyncio"),
    ("LOG_LEVEL", "verbose"),
    ("REDIS_URL", "http://127.0.0.1:6379"),
    ("REDIS_URL", "127.0.0.1:6379"),
    ("REDIS_URL", "redis://"),
    ("REDIS_URL", "rediss:///0"),
    ("REDIS_URL", "unix://"),
    ("MESSAGE_QUEUE_URL", "amqp://"),
    ("MESSAGE_QUEUE_URL", "kafka://broker:9092"),
    ("CORS_ALLOWED_ORIGINS", "dash.example.com"),
    ("CORS_ALLOWED_ORIGINS", "https://ok.example,localhost:3000"),
    ("CORS_ALLOWED_ORIGINS", "https://dash.example.com/app"),
])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    env = {name: value}
    if name == "MESSAGE_QUEUE_URL":
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    with pytest.raises(SettingsError) as info:
        load(**env)
    assert str(info.value).startswith(f"{name}=")


@pytest.mark.parametrize(("raw", "value"), [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("False", False), ("no", False), ("off", False)])
def test_booleans(raw: str, value: bool) -> None:
    assert load(SOCKETIO_DEBUG=raw).socketio_debug is value


def test_bounds_are_inclusive() -> None:
    assert load(WEBSOCKET_PING_INTERVAL="1").websocket_ping_interval == 1
    assert load(WEBSOCKET_PING_INTERVAL="3600").websocket_ping_interval == 3600
    assert load(MAX_QUEUE_SIZE="1").max_queue_size == 1


def test_url_schemes() -> None:
    for url in ("redis://h:6379/0", "rediss://h:6380", "unix:///run/redis.sock"):
        assert load(REDIS_URL=url).redis_url == url
    s = load(REDIS_URL="redis://h", MESSAGE_QUEUE_URL="amqp://guest@mq//")
    assert s.queue_url == "amqp://guest@mq//"


def test_cors_any_origin() -> None:
    assert load(CORS_ALLOWED_ORIGINS="*").cors_allowed_origins == ("*",)
    assert load(CORS_ALLOWED_ORIGINS=" , ").cors_allowed_origins == ()


def test_message_queue_without_redis_is_refused() -> None:
    with pytest.raises(SettingsError, match="MESSAGE_QUEUE_URL"):
        load(MESSAGE_QUEUE_URL="redis://127.0.0.1:6379/1")


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\n"
        "\n"
        "WEBSOCKET_PING_INTERVAL=30\n"
        "export MAX_QUEUE_SIZE = 50\n"
        "SECRET_KEY='from file'\n"
        'NODE_ID="file-node"\n')
    s = load_settings(environ={"MAX_QUEUE_SIZE": "70"}, env_file=env_file)
    assert s.websocket_ping_interval == 30
    assert s.max_queue_size == 70  # the real environment wins
    assert s.secret_key == "from file"
    assert s.node_id == "file-node"


def test_bad_value_in_env_file_names_the_variable(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("MAX_QUEUE_SIZE=lots\n")
    with pytest.raises(SettingsError, match=r"^MAX_QUEUE_SIZE="):
        load_settings(environ={}, env_file=env_file)


def test_malformed_env_file_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OK=1\nthis line is wrong\n")
    with pytest.raises(SettingsError, match=r":2: expected NAME=value"):
        read_env_file(env_file)


def test_missing_env_file_is_fine(tmp_path: Path) -> None:
    s = load_settings(environ={}, env_file=tmp_path / "absent.env")
    assert s == Settings()


def test_no_env_file_when_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MAX_QUEUE_SIZE=5\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}, env_file=None).max_queue_size == 1000
    assert load_settings(environ={}).max_queue_size == 5  # default: ./.env


def test_swarmdash_env_file_is_taken_from_the_given_environment(tmp_path: Path) -> None:
    env_file = tmp_path / "other.env"
    env_file.write_text("MAX_QUEUE_SIZE=7\n")
    s = load_settings(environ={"SWARMDASH_ENV_FILE": str(env_file)}, env_file=tmp_path / "x")
    assert s.max_queue_size == 7


def test_describe_lists_every_setting_once() -> None:
    rows = describe()
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)) == len(fields(Settings))
    table = {name: default for name, default, _ in rows}
    assert table["WEBSOCKET_PING_INTERVAL"] == "25"
    assert table["WEBSOCKET_ENABLED"] == "true"
    assert all(doc for _, _, doc in rows)


def test_replace_keeps_other_values() -> None:
    s = load(MAX_QUEUE_SIZE="9").replace(redis_url="redis://h")
    assert s.max_queue_size == 9 and s.redis_url == "redis://h"


def test_effective_settings_mask_secrets_and_url_passwords() -> None:
    from swarmdash.settings import effective

    s = load_settings(environ={"SECRET_KEY": "s3cret", "REDIS_URL": "redis://127.0.0.1:6379/0",
                               "MESSAGE_QUEUE_URL": "amqp://guest:pw@127.0.0.1:5672//"},
                      env_file=None)
    values = dict(effective(s))
    assert values["SECRET_KEY"] == "****"
    assert values["MESSAGE_QUEUE_URL"] == "amqp://****@127.0.0.1:5672//"
    assert values["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert values["WEBSOCKET_PING_INTERVAL"] == "25"
    assert "s3cret" not in repr(values) and "pw@" not in repr(values)


@pytest.mark.parametrize("url, shown", [
    # the audit: redis-py takes the password from the query too, and it was printed
    ("redis://127.0.0.1:6379/0?password=hunter2", "redis://127.0.0.1:6379/0?password=****"),
    ("rediss://cache.example:6380/1?username=ops&password=hunter2&ssl_cert_reqs=none",
     "rediss://cache.example:6380/1?username=****&password=****&ssl_cert_reqs=none"),
    ("redis://default:hunter2@127.0.0.1:6379/0", "redis://****@127.0.0.1:6379/0"),
    ("redis://:hunter2@127.0.0.1/0?socket_timeout=2", "redis://****@127.0.0.1/0?socket_timeout=2"),
    ("unix:///run/redis.sock?db=0&password=hunter2", "unix:///run/redis.sock?db=0&password=****"),
    ("redis://127.0.0.1:6379/0?auth_token=hunter2", "redis://127.0.0.1:6379/0?auth_token=****"),
])
def test_every_credential_in_a_url_setting_is_masked(url: str, shown: str) -> None:
    from swarmdash.settings import effective

    values = dict(effective(load_settings(
        environ={"REDIS_URL": url, "MESSAGE_QUEUE_URL": url}, env_file=None)))
    assert values["REDIS_URL"] == values["MESSAGE_QUEUE_URL"] == shown
    assert "hunter2" not in repr(values)


def test_a_setting_can_come_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-docker-secret\n")
    url = tmp_path / "redis_url"
    url.write_text("redis://node:pw@redis:6379/0")
    s = load_settings(environ={"SECRET_KEY_FILE": str(secret), "REDIS_URL_FILE": str(url)},
                      env_file=None)
    assert s.secret_key == "from-a-docker-secret" and s.redis_url == "redis://node:pw@redis:6379/0"
    # the variable itself wins; a missing file names the variable
    assert load_settings(environ={"SECRET_KEY": "direct", "SECRET_KEY_FILE": str(secret)},
                         env_file=None).secret_key == "direct"
    with pytest.raises(SettingsError, match="SECRET_KEY_FILE="):
        load_settings(environ={"SECRET_KEY_FILE": str(tmp_path / "nope")}, env_file=None)
