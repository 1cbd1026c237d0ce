"""Run a node under gunicorn's gevent worker from inside the ``swarmdash`` command, with the
config production runs (:mod:`swarmdash.gunicorn_conf`).

The app is built by ``loader`` in the worker, after gevent has patched that process; the
master stays unpatched, as gunicorn expects.
"""

from __future__ import annotations

import runpy
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from .settings import Settings

#: gunicorn's ``-c`` for the node's config, a module of the package (works from a wheel).
CONFIG = "python:swarmdash.gunicorn_conf"


def gunicorn_config() -> dict[str, Any]:
    """The node's gunicorn settings as gunicorn reads them: the module run now, with the
    settings of the environment."""
    return runpy.run_module(CONFIG.removeprefix("python:"))


class NodeApplication(BaseApplication):
    def __init__(self, loader: Callable[[], Any], settings: Settings):
        self.loader = loader
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name, value in gunicorn_config().items():
            if name in self.cfg.settings:
                self.cfg.set(name, value)
        # the command line may have changed host/port: those win over the environment
        self.cfg.set("bind", [f"{self.settings.host}:{self.settings.port}"])
        self.cfg.set("proc_name", f"swarmdash-{self.settings.node_name}")

    def load(self) -> Any:
        return self.loader()


def run_gunicorn(loader: Callable[[], Any], settings: Settings) -> None:
    NodeApplication(loader, settings).run()
