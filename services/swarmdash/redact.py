"""Credentials never reach the logs, even with SOCKETIO_DEBUG's packet logging.

Engine.IO logs every packet it receives, the Socket.IO CONNECT with its ``auth: {token}``
among them. The loggers given to python-socketio and python-engineio replace viewer
tokens, ``"token"`` / ``"api_key"`` values and ``Bearer`` credentials by ``****``.
"""

from __future__ import annotations

import logging
import re

MASK = "****"
_PATTERNS = (
    # "token": "...", 'token': '...', "api_key": "..." in JSON or a Python repr
    (re.compile(r"""(["'](?:token|api_key|password|secret)["']\s*:\s*)(["'])(?:(?!\2).)*\2""",
                re.IGNORECASE), rf"\1\2{MASK}\2"),
    (re.compile(r"(Bearer\s+)\S+", re.IGNORECASE), rf"\1{MASK}"),
    # a signed viewer token on its own: payload.signature (or payload.time.signature)
    (re.compile(r"\.?[A-Za-z0-9_-]{16,}(?:\.[A-Za-z0-9_-]{4,}){1,2}"), MASK),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactCredentials(logging.Filter):
    """A filter that formats a record's message once and masks the credentials in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def packet_logger(name: str) -> logging.Logger:
    """A logger for SOCKETIO_DEBUG's packet log (INFO, to the node's log), credentials
    masked."""
    logger = logging.getLogger(f"swarmdash.{name}")
    logger.setLevel(logging.INFO)
    if not any(isinstance(f, RedactCredentials) for f in logger.filters):
        logger.addFilter(RedactCredentials())
    return logger
