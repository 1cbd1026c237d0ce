"""Run a node under gunicorn's gevent worker from inside the ``swarmdash`` command, with the
config production runs (``infra/gunicorn.conf.py``).

The app is built by ``loader`` in the worker, after gevent has patched that process; the
master stays unpatched, as gunicorn expects.
"""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from .settings import Settings

CONFIG = Path("infra") / "gunicorn.conf.py"


def config_file() -> Path:
    """The node's gunicorn config, ``infra/gunicorn.conf.py``: of this checkout, or of the
    current directory (the image's ``/app``)."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / CONFIG).is_file():
            return root / CONFIG
    raise SystemExit(f"{CONFIG} not found: run from a SwarmDash checkout (or the image's /app)")


class NodeApplication(BaseApplication):
    def __init__(self, loader: Callable[[], Any], settings: Settings):
        self.loader = loader
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name, value in runpy.run_path(str(config_file())).items():
            if name in self.cfg.settings:
                self.cfg.set(name, value)
        # the command line may have changed host/port: those win over the environment
        self.cfg.set("bind", [f"{self.settings.host}:{self.settings.port}"])
        self.cfg.set("proc_name", f"swarmdash-{self.settings.node_name}")

    def load(self) -> Any:
        return self.loader()


def run_gunicorn(loader: Callable[[], Any], settings: Settings) -> None:
    NodeApplication(loader, settings).run()
