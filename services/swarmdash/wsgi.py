"""The gunicorn entry: ``gunicorn -c python:swarmdash.gunicorn_conf swarmdash.wsgi:app``.

The engine is chosen here (gevent, matching ``worker_class`` in the gunicorn config);
gunicorn's gevent worker has monkey-patched the process before this module is imported.
"""

from __future__ import annotations

from .app import create_app
from .settings import load_settings

app = create_app(load_settings(), async_mode="gevent")
