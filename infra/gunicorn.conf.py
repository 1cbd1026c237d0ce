"""gunicorn config of a SwarmDash node: ``gunicorn -c infra/gunicorn.conf.py swarmdash.wsgi:app``.

The values live in ``swarmdash/gunicorn_conf.py`` (gevent worker, one worker per node and
why, worker_connections, bind and timeouts from the node's settings) so that ``swarmdash
serve`` runs exactly the same server. Override a value by assigning it below the import.
"""

from swarmdash.gunicorn_conf import *  # noqa: F403
