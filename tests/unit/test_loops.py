"""A node's background duties run round after round; a failed round does not end them."""

from __future__ import annotations

import logging

import pytest

from swarmdash.loops import every


def test_a_failed_round_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []
    slept: list[float] = []

    def round_() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("a bug met by the first round")

    with caplog.at_level(logging.ERROR):
        every(2.5, round_, sleep=slept.append, running=lambda: len(rounds) < 3, what="a duty")
    assert rounds == [0, 1, 2] and slept == [2.5, 2.5, 2.5]
    assert "a duty failed" in caplog.text and "a bug met by the first round" in caplog.text


def test_nothing_runs_once_the_node_stops() -> None:
    every(1, lambda: pytest.fail("ran after stopping"), sleep=lambda s: None,
          running=lambda: False, what="a duty")
