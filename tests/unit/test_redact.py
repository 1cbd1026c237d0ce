"""Credentials are masked in log lines (SOCKETIO_DEBUG's packet log)."""

from __future__ import annotations

import logging

import pytest

from swarmdash.auth import issue_token
from swarmdash.redact import packet_logger, redact

TOKEN = issue_token("k" * 40, swarms=["alpha"], ttl=60)


@pytest.mark.parametrize("line", [
    f'sid: Received packet MESSAGE data 0{{"token":"{TOKEN}"}}',
    f"auth {{'token': '{TOKEN}'}}",
    f"Authorization: Bearer {TOKEN}",
    f"a bare {TOKEN} in a message",
    'api {"api_key": "sdk_secret_value"}',
])
def test_credentials_are_masked(line: str) -> None:
    masked = redact(line)
    assert "****" in masked
    assert TOKEN not in masked and TOKEN.split(".")[-1] not in masked
    assert "sdk_secret_value" not in masked


@pytest.mark.parametrize("line", [
    'emitting event "log_update_batch" to sub|alpha||log [/]',
    "node ops-node1.example.com:8050 at 1796042040039-0, 127.0.0.1:8050",
    'Sending packet MESSAGE data 31[{"ok":true,"cursor":"1796042040039-0"}]',
])
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert redact(line) == line


def test_the_packet_logger_masks_what_it_logs(caplog: pytest.LogCaptureFixture) -> None:
    logger = packet_logger("engineio")
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("%s: Received packet %s data %s", "sid", "MESSAGE",
                    f'0{{"token":"{TOKEN}"}}')
    assert caplog.messages == ['sid: Received packet MESSAGE data 0{"token":"****"}']
