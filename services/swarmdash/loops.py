"""A node's background loops: one round every interval, for as long as the node runs.

The store watch, the heartbeat, the replication metrics, the slow-consumer watchdog and the
connection deadlines each run a round now and then on the engine's own ``sleep``. A round
that fails is logged with its traceback and the loop goes on: a bug met by one round, or
one connection, must not silently end a duty of a live node.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def every(interval: float, round_: Callable[[], object], *, sleep: Callable[[float], None],
          running: Callable[[], bool], what: str) -> None:
    """Run ``round_``, then sleep ``interval`` seconds, while ``running()``; ``what`` names
    the loop in the log line of a failed round."""
    while running():
        try:
            round_()
        except Exception:  # anything: the loop must outlive a failed round (logged)
            log.exception("%s failed", what)
        sleep(interval)
