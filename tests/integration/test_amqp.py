"""The Socket.IO message queue over AMQP: RabbitMQ through kombu, a real broker."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.helpers import DashClient, Node, node_group, wait_for

from .test_cluster import notify

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def rabbitmq_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def amqp_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Node], str]]:
    assert rabbitmq_up(), "RabbitMQ must listen on 127.0.0.1:5672 (.ci/run starts it)"
    with node_group(tmp_path_factory.mktemp("amqp")) as group:
        for i, engine in enumerate(("gunicorn", "eventlet"), 1):
            group.start(f"amqp{i}", engine, MESSAGE_QUEUE_URL=AMQP_URL)
        yield group.nodes, group.channel


def test_notify_reaches_every_node_through_rabbitmq(
        amqp_nodes: tuple[list[Node], str]) -> None:
    nodes, channel = amqp_nodes
    clients = [DashClient(n.url).connect() for n in nodes]
    try:
        for c in clients:
            assert c.subscribe(swarm="*", channels=["agent"])["ok"]
        notify(AMQP_URL, "broker failover drill", channel)
        for c in clients:
            wait_for(lambda c=c: c.events("system_alert"), 15, message=f"notify on {c.url}")
            (_, alert), = c.events("system_alert")
            assert alert["data"]["message"] == "broker failover drill"
    finally:
        for c in clients:
            c.close()
