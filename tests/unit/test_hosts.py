"""The Host check against DNS rebinding: which names a node answers, by default and as set."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from swarmdash.hosts import HostPolicy, host_name
from swarmdash.settings import SettingsError, load_settings

from .conftest import settings_with


@pytest.mark.parametrize("header, name", [
    ("dash.example.com", "dash.example.com"), ("Dash.Example.com:443", "dash.example.com"),
    ("127.0.0.1:8050", "127.0.0.1"), ("[::1]:8050", "::1"), ("[::1]", "::1")])
def test_host_name_drops_port_and_brackets(header: str, name: str) -> None:
    assert host_name(header) == name


def test_an_open_node_answers_only_names_that_cannot_be_rebound() -> None:
    policy = HostPolicy.from_settings(settings_with(AUTH_DISABLED="true", HOST="127.0.0.1"))
    for name in ("127.0.0.1", "10.1.2.3", "::1", "localhost", "dash.localhost"):
        assert policy.allows(name), name
    for name in ("rebind.example", "localhost.example", "127.0.0.1.nip.io"):
        assert not policy.allows(name), name


def test_a_node_with_auth_answers_any_name_unless_allowed_hosts_says() -> None:
    assert HostPolicy.from_settings(settings_with(AUTH_DISABLED="false")).any
    policy = HostPolicy.from_settings(settings_with(
        AUTH_DISABLED="false", ALLOWED_HOSTS="dash.example.com,.ops.example.net"))
    assert policy.allows("dash.example.com") and policy.allows("ops.example.net")
    assert policy.allows("eu.ops.example.net") and not policy.allows("example.com")
    assert not policy.allows("127.0.0.1"), "an explicit list is the whole list"
    assert HostPolicy.from_settings(settings_with(AUTH_DISABLED="true", ALLOWED_HOSTS="*")).any


@pytest.mark.parametrize("bad", ["https://dash.example.com", "dash.example.com:443", "a b"])
def test_allowed_hosts_refuses_what_is_not_a_name(bad: str) -> None:
    with pytest.raises(SettingsError, match="ALLOWED_HOSTS"):
        load_settings(environ={"ALLOWED_HOSTS": bad}, env_file=None)


def test_a_foreign_host_gets_a_json_400_on_every_path(make_app: Callable[..., Flask]) -> None:
    http = make_app(AUTH_DISABLED="true", HOST="127.0.0.1").test_client()
    for path in ("/", "/api/v1/snapshot", "/health", "/socket.io/?EIO=4&transport=polling"):
        r = http.get(path, headers={"Host": "rebind.example:8050"})
        assert r.status_code == 400, path
        assert "ALLOWED_HOSTS" in r.get_json()["error"] and "rebind.example" in r.get_json()[
            "error"]
    assert http.get("/api/v1/snapshot", headers={"Host": "localhost:8050"}).status_code == 200
    no_host = http.get("/health", environ_overrides={"HTTP_HOST": ""})
    assert no_host.status_code in (200, 503)  # an HTTP/1.0 health check: answered
