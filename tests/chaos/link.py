"""A TCP link between one node and Redis, as a process of its own.

``python -m tests.chaos.link TARGET_PORT`` forwards a free port (printed on stdout) to
127.0.0.1:TARGET_PORT with :class:`tests.faults.TcpLink`. SIGSTOP freezes the link: the
node's connections stay open but nothing passes, and new connections hang, as when a
network path goes dark; SIGCONT lets the traffic through again.
"""

from __future__ import annotations

import signal
import sys

from tests.faults import TcpLink


def main() -> None:
    link = TcpLink(int(sys.argv[1]))
    print(link.port, flush=True)
    while True:  # until SIGTERM/SIGKILL; the relay threads do the work
        signal.pause()


if __name__ == "__main__":
    main()
