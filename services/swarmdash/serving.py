"""Run a node under gunicorn's gevent worker from inside the ``swarmdash`` command.

The app is built by ``loader`` in the worker, after gevent has patched that process; the
master stays unpatched, as gunicorn expects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from . import gunicorn_conf
from .settings import Settings


class NodeApplication(BaseApplication):
    def __init__(self, loader: Callable[[], Any], settings: Settings):
        self.loader = loader
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name in dir(gunicorn_conf):
            if name in self.cfg.settings:
                self.cfg.set(name, getattr(gunicorn_conf, name))
        # the command line may have changed host/port: those win over the environment
        self.cfg.set("bind", [f"{self.settings.host}:{self.settings.port}"])
        self.cfg.set("proc_name", f"swarmdash-{self.settings.node_name}")

    def load(self) -> Any:
        return self.loader()


def run_gunicorn(loader: Callable[[], Any], settings: Settings) -> None:
    NodeApplication(loader, settings).run()
