"""The local cluster: the docker-compose topology as real processes on loopback, no Docker.

``swarmdash cluster`` (:mod:`.cli`) drives :class:`.local.LocalCluster`, which runs
redis-server (one, or a primary, replicas and sentinels: :mod:`.redis`), the nodes under
gunicorn, HAProxy with the repository's ``haproxy.cfg`` (finding the nodes through
:mod:`.dns`) and optionally Prometheus (its config rendered by :mod:`.prometheus`), each a
background process of :mod:`.processes` on the ports of :mod:`.ports`. The tests start
their redis-servers and nodes with the same modules.

Nothing is imported here: ``swarmdash`` builds its command line from :mod:`.cli` and
:mod:`.ports` without importing an HTTP client before ``serve`` patches for its engine.
"""


class ClusterError(RuntimeError):
    """The cluster cannot be started, changed or reached as asked (the message says why)."""
