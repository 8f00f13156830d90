"""The Redis arguments of the rendered deployment, run with real redis-server processes: the
primary as its StatefulSet starts it, and a DNS pod's replica as its container starts it
(only ports, directories and the primary's address changed to this machine's).

What it shows: the replica syncs through the "replica" ACL user, that user cannot write the
primary, the backend's password reads the replica, and the replica keeps answering from its
last data while the primary is down.
"""

from __future__ import annotations

import redis
import pytest

from mountdns.keyspace import Keys
from mountdns.testing.deploy import container, render
from mountdns.testing.servers import Process, free_port, wait_until

pytestmark = pytest.mark.integration
NODE_1 = Keys().node("node-1")  # a key the sync writes, as replicated data

SECRETS = {"redis-password": "primary-secret", "redis-replica-password": "replica-secret",
           "pdns-api-key": "api-secret"}
FIELDS = {"metadata.name": "redis-0", "metadata.namespace": "mountdns"}


def _local(argv: list[str], port: int, directory, primary_port: int | None = None) -> list[str]:
    """The container's redis-server arguments, moved to this machine: port, data directory,
    and the primary's Service name to 127.0.0.1."""
    out = list(argv)
    out[out.index("--port") + 1] = str(port)
    out[out.index("--dir") + 1] = str(directory)
    if "--replicaof" in out:
        at = out.index("--replicaof")
        assert out[at + 1:at + 3] == ["redis-primary", "6379"]
        out[at + 1:at + 3] = ["127.0.0.1", str(primary_port)]
    # Loopback only, whatever the container binds (redis-server takes the last --bind given).
    out += ["--bind", "127.0.0.1"]
    return out


def _start(name, argv, directory) -> Process:
    process = Process(name, directory)
    process.spawn(argv)
    return process


def test_dns_pod_replica_syncs_as_the_replica_user_and_serves_stale_data(tmp_path):
    docs = render("base")
    primary_c = container(docs, "redis", "redis")
    replica_c = container(docs, "mountdns-dns", "redis-replica")
    backend_c = container(docs, "mountdns-dns", "backend")
    primary_argv = primary_c.argv(primary_c.env(docs, SECRETS, FIELDS))
    replica_argv = replica_c.argv(replica_c.env(docs, SECRETS, FIELDS))
    assert primary_argv[0] == replica_argv[0] == "redis-server"
    backend_url = backend_c.env(docs, SECRETS, FIELDS)["MOUNTDNS_REDIS_URL"]

    primary_port, replica_port = free_port(), free_port()
    (tmp_path / "primary").mkdir()
    (tmp_path / "replica").mkdir()
    primary = _start("primary", _local(primary_argv, primary_port, tmp_path / "primary"), tmp_path)
    replica = None
    try:
        writer = redis.Redis(port=primary_port, password=SECRETS["redis-password"])
        wait_until(lambda: writer.ping(), 10, "the primary", give_up=lambda: not primary.running())
        writer.set(NODE_1, "2.3.4.5")
        replica = _start("replica", _local(replica_argv, replica_port, tmp_path / "replica", primary_port), tmp_path)
        # The backend's URL, pointed at this replica's port.
        reader = redis.Redis.from_url(backend_url.replace(":6379/", f":{replica_port}/"))
        wait_until(lambda: reader.get(NODE_1) == b"2.3.4.5", 20, "the replica's first sync",
                   give_up=lambda: not replica.running())

        as_replica_user = redis.Redis(port=primary_port, username="replica", password=SECRETS["redis-replica-password"])
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_replica_user.set(NODE_1, "6.6.6.6")
        with pytest.raises(redis.exceptions.ReadOnlyError):
            reader.set(NODE_1, "6.6.6.6")

        writer.set(NODE_1, "12.34.5.6")
        wait_until(lambda: reader.get(NODE_1) == b"12.34.5.6", 10, "the change replicated")
        primary.stop()
        wait_until(lambda: reader.info("replication")["master_link_status"] == "down", 20, "the link down")
        assert reader.get(NODE_1) == b"12.34.5.6", "stale data is served while the primary is down"
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()
