"""The proxy tests' local cluster (real redis-server, gunicorn nodes, HAProxy, DNS): see
:mod:`tests.local_cluster`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swarmdash.cluster.local import LocalCluster
from tests.local_cluster import start_cluster


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("lc"))
    try:
        yield cluster
    finally:
        cluster.down()
