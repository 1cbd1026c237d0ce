"""Run a node under gunicorn's gevent worker from inside the ``swarmdash`` command.

The app is built by ``loader`` in the worker, after gevent has patched that process; the
master stays unpatched, as gunicorn expects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from . import gunicorn_conf


class NodeApplication(BaseApplication):
    def __init__(self, loader: Callable[[], Any], bind: str):
        self.loader = loader
        self.bind = bind
        super().__init__()

    def load_config(self) -> None:
        for name in dir(gunicorn_conf):
            if name in self.cfg.settings:
                self.cfg.set(name, getattr(gunicorn_conf, name))
        self.cfg.set("bind", [self.bind])

    def load(self) -> Any:
        return self.loader()


def run_gunicorn(loader: Callable[[], Any], host: str, port: int) -> None:
    NodeApplication(loader, f"{host}:{port}").run()
