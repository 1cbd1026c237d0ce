"""auth: API keys (hashed, scoped, rotated), viewer tokens (signed, expiring, scoped, key
rotation), the origin policy, and the production refusals of the settings."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import zlib

import pytest
from itsdangerous.encoding import base64_decode, base64_encode

from swarmdash.auth import ALL_SWARMS, KeyRing, TokenError, issue_token, verify_token
from swarmdash.auth.apikeys import generate_key, key_hash, parse_api_key_entry, parse_api_keys
from swarmdash.auth.origins import OriginPolicy
from swarmdash.auth.tokens import parse_duration
from swarmdash.settings import (
    MIN_SECRET_KEY_BITS,
    SettingsError,
    check_serving,
    estimated_bits,
    load_settings,
)

SECRET = "s" * 40
OLD_SECRET = "o" * 40


def entry(key_id: str, key: str, scope: str = "*") -> str:
    return f"{key_id}:{hashlib.sha256(key.encode()).hexdigest()}:{scope}"


# --- API keys ---------------------------------------------------------------------------------

def test_generated_keys_are_random_and_only_their_hash_is_configured() -> None:
    a, b = generate_key(), generate_key()
    assert a != b and a.startswith("sdk_") and len(a) >= 40
    ring = KeyRing.from_entries([entry("fleet", a, "alpha|beta")])
    key = ring.authenticate(a)
    assert key is not None and key.id == "fleet"
    assert key.allows("alpha") and key.allows("beta") and not key.allows("gamma")
    assert a not in key.entry and key_hash(a) in key.entry
    assert ring.authenticate(b) is None
    assert ring.authenticate(a + "x") is None and ring.authenticate("") is None


def test_several_keys_at_once_for_rotation() -> None:
    old, new = generate_key(), generate_key()
    ring = KeyRing.from_entries([entry("fleet-2024", old), entry("fleet-2025", new)])
    found_old, found_new = ring.authenticate(old), ring.authenticate(new)
    assert found_old is not None and found_new is not None
    assert (found_old.id, found_new.id) == ("fleet-2024", "fleet-2025")
    assert found_old.allows("any-swarm")


@pytest.mark.parametrize("bad, says", [
    ("fleet:abc:*", "64 hex digits"),
    ("fleet:" + "a" * 64, "not an entry"),
    ("bad id:" + "a" * 64 + ":*", "key id"),
    ("fleet:" + "a" * 64 + ":alpha|no swarm", "not a swarm name"),
    ("fleet:" + "a" * 64 + ":", "not a swarm name"),
])
def test_malformed_entries_are_refused_with_the_reason(bad: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_api_key_entry(bad)


def test_duplicate_key_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="more than once"):
        parse_api_keys([entry("a", "k1"), entry("a", "k2")])


def test_api_keys_setting_accepts_commas_and_newlines_and_names_bad_entries() -> None:
    raw = f"{entry('a', 'k1', 'alpha')},\n {entry('b', 'k2')}"
    s = load_settings(environ={"API_KEYS": raw}, env_file=None)
    assert [e.split(":")[0] for e in s.api_keys] == ["a", "b"]
    with pytest.raises(SettingsError, match="API_KEYS"):
        load_settings(environ={"API_KEYS": "a:nothex:*"}, env_file=None)


# --- viewer tokens ------------------------------------------------------------------------------

def test_token_round_trip_with_its_swarms_name_and_expiry() -> None:
    now = 1_700_000_000.0
    token = issue_token(SECRET, swarms=["beta", "alpha"], ttl=3600, name="alice", now=now)
    viewer = verify_token(token, [SECRET], now=now + 10)
    assert viewer.name == "alice" and viewer.swarms == frozenset({"alpha", "beta"})
    assert viewer.expires == now + 3600
    assert viewer.may_see("alpha") and not viewer.may_see("gamma")
    assert not viewer.may_see(ALL_SWARMS), "a scoped token never sees every swarm"


def test_all_swarms_token() -> None:
    viewer = verify_token(issue_token(SECRET, swarms=None, ttl=60), [SECRET])
    assert viewer.all_swarms and viewer.may_see(ALL_SWARMS) and viewer.may_see("x")


def test_expired_token_is_refused() -> None:
    now = time.time()
    token = issue_token(SECRET, swarms=None, ttl=60, now=now - 120)
    with pytest.raises(TokenError) as exc:
        verify_token(token, [SECRET], now=now)
    assert exc.value.reason == "expired"


def test_tampered_token_is_refused() -> None:
    token = issue_token(SECRET, swarms=["alpha"], ttl=60)
    payload, signature = token.rsplit(".", 1)
    raw = base64_decode(payload.lstrip("."))
    data = json.loads(zlib.decompress(raw) if payload.startswith(".") else raw)
    data["swarms"] = "*"  # widen the scope without the key
    forged = base64_encode(json.dumps(data).encode()).decode()
    for bad in (f"{forged}.{signature}", token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
                "not-a-token", "a.b.c"):
        with pytest.raises(TokenError) as exc:
            verify_token(bad, [SECRET])
        assert exc.value.reason == "invalid"


def test_rotation_previous_key_verifies_unknown_key_does_not() -> None:
    old = issue_token(OLD_SECRET, swarms=None, ttl=60)
    assert verify_token(old, [OLD_SECRET, SECRET]).all_swarms
    with pytest.raises(TokenError):
        verify_token(old, [SECRET])
    new = issue_token(SECRET, swarms=None, ttl=60)
    assert verify_token(new, [OLD_SECRET, SECRET]).all_swarms


def test_missing_token_and_bad_issue_arguments() -> None:
    with pytest.raises(TokenError) as exc:
        verify_token(None, [SECRET])
    assert exc.value.reason == "missing"
    for kwargs in ({"swarms": []}, {"swarms": ["no swarm"]}, {"swarms": None, "ttl": 0},
                   {"swarms": None, "name": "has space"}):
        args = {"ttl": 60, **kwargs}
        with pytest.raises(ValueError):
            issue_token(SECRET, **args)  # type: ignore[arg-type]


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "30m", "8h", "2d", "1w")] == [
        90, 90, 1800, 28800, 172800, 604800]
    with pytest.raises(ValueError):
        parse_duration("8 hours")


# --- origins ----------------------------------------------------------------------------------

def test_origin_policy_same_origin_listed_and_foreign() -> None:
    env = {"wsgi.url_scheme": "http", "HTTP_HOST": "dash.example.com",
           "HTTP_X_FORWARDED_PROTO": "https"}
    policy = OriginPolicy(("https://ops.example.com",))
    assert policy.allows(None, env), "no Origin: not a browser page"
    assert policy.allows("https://dash.example.com", env), "same origin behind TLS proxy"
    assert policy.allows("https://ops.example.com", env)
    assert not policy.allows("https://evil.example.net", env)
    assert not policy.allows("http://dash.example.com.evil.net", env)
    assert OriginPolicy(("*",)).allows("https://anything.example", env)


# --- production refusals ------------------------------------------------------------------------

GOOD_SECRET = secrets.token_hex(32)
OTHER_SECRET = secrets.token_hex(32)


@pytest.mark.parametrize("env, says", [
    ({}, "SECRET_KEY is missing or a placeholder"),
    ({"SECRET_KEY": ""}, "SECRET_KEY is missing or a placeholder"),
    ({"SECRET_KEY": "change-me"}, "placeholder"),
    ({"SECRET_KEY": "short-but-not-a-placeholder"}, "fewer than 32"),
    ({"SECRET_KEY": GOOD_SECRET, "CORS_ALLOWED_ORIGINS": "*"}, "CORS_ALLOWED_ORIGINS=\\*"),
    # the audit: long enough, but no entropy
    ({"SECRET_KEY": "a" * 32}, "SECRET_KEY has about 0 bits of entropy"),
    ({"SECRET_KEY": "ab" * 32}, "SECRET_KEY has about 64 bits"),
    # the audit: a former key is as trusted as the current one, and was not checked
    ({"SECRET_KEY": GOOD_SECRET, "SECRET_KEY_PREVIOUS": "dev-insecure-change-me"},
     "SECRET_KEY_PREVIOUS \\(key 1\\) is missing or a placeholder"),
    ({"SECRET_KEY": GOOD_SECRET, "SECRET_KEY_PREVIOUS": f"{OTHER_SECRET},short"},
     "SECRET_KEY_PREVIOUS \\(key 2\\) is 5 characters"),
    ({"SECRET_KEY": GOOD_SECRET, "SECRET_KEY_PREVIOUS": "b" * 40}, "bits of entropy"),
])
def test_production_refuses_placeholder_secret_and_any_origin(env: dict[str, str],
                                                                says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        check_serving(load_settings(environ=env, env_file=None))
    check_serving(load_settings(environ={**env, "FLASK_DEBUG": "true"}, env_file=None))


def test_production_accepts_a_real_secret_and_listed_origins() -> None:
    check_serving(load_settings(environ={"SECRET_KEY": GOOD_SECRET,
                                         "SECRET_KEY_PREVIOUS": OTHER_SECRET,
                                         "CORS_ALLOWED_ORIGINS": "https://a.example"},
                                env_file=None))


def test_random_keys_of_the_documented_sizes_pass_the_entropy_check() -> None:
    for _ in range(200):
        assert estimated_bits(secrets.token_hex(16)) >= MIN_SECRET_KEY_BITS
        assert estimated_bits(secrets.token_urlsafe(24)) >= MIN_SECRET_KEY_BITS
