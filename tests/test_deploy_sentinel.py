"""The ha overlay's Redis failover, run for real on this machine: three redis-server and
three Sentinel processes started by the overlay's own scripts with its own arguments (only
ports, directories and host names moved to 127.0.0.1).

It shows the pieces the overlay relies on: the first start makes redis-0 the primary and
the others its replicas; when the primary dies the Sentinels promote a replica, whose
readiness probe ("role: master", what the Service redis-primary follows) then passes; and a
restarted old primary asks the Sentinels first and comes back as a replica, not as a second
primary.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import redis

from mountdns.keyspace import Keys
from mountdns.testing.deploy import container, find, render
from mountdns.testing.servers import Process, free_port, wait_until

pytestmark = pytest.mark.integration
NODE_1 = Keys().node("node-1")  # a key the sync writes, as replicated data

SECRETS = {"redis-password": "primary-secret", "redis-replica-password": "replica-secret",
           "pdns-api-key": "api-secret"}


def _set(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(flag) + 1] = value
    return out


class Cluster:
    """The overlay's Redis pods and Sentinels as local processes."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        docs = render("ha")
        scripts = find(docs, "ConfigMap", "redis-ha-scripts")["data"]
        for name, text in scripts.items():
            (tmp_path / name).write_text(text)
        self.redis_c = container(docs, "redis", "redis")
        self.sentinel_c = container(docs, "redis-sentinel", "sentinel")
        self.config_c = container(docs, "redis-sentinel", "config")
        assert self.redis_c.spec["command"] == ["sh", "/scripts/start-redis.sh"]
        assert self.config_c.spec["command"] == ["sh", "/scripts/sentinel-config.sh"]
        self.redis_ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: list[Process] = []
        # The scripts' cluster names, moved to this machine.
        self.env = {"SENTINEL_HOST": "127.0.0.1", "SENTINEL_PORT": str(self.sentinel_ports[0]),
                    "FIRST_PRIMARY_HOST": "127.0.0.1", "FIRST_PRIMARY_PORT": str(self.redis_ports[0]),
                    "ANNOUNCE_HOST": "127.0.0.1"}

    def start_redis(self, i: int) -> Process:
        pod = f"redis-{i}"
        env = self.redis_c.env(render("ha"), SECRETS, {"metadata.name": pod})
        argv = self.redis_c.argv(env)[2:]  # redis-server's arguments, after "sh script"
        directory = self.tmp / pod
        directory.mkdir(exist_ok=True)
        argv = _set(_set(_set(argv, "--port", str(self.redis_ports[i])), "--dir", str(directory)),
                    "--replica-announce-ip", "127.0.0.1")
        process = Process(pod, self.tmp)
        process.spawn(["sh", str(self.tmp / "start-redis.sh"), *argv, "--bind", "127.0.0.1"],
                      env={**env, **self.env})
        self.processes.append(process)
        wait_until(lambda: self.client(i).ping(), 10, pod, give_up=lambda: not process.running() and pod)
        return process

    def start_sentinel(self, i: int) -> Process:
        pod = f"redis-sentinel-{i}"
        env = self.config_c.env(render("ha"), SECRETS, {"metadata.name": pod})
        conf = self.tmp / f"{pod}.conf"
        subprocess.run(["sh", str(self.tmp / "sentinel-config.sh")], check=True, timeout=30,
                       env={**os.environ, **env, **self.env, "SENTINEL_CONF": str(conf)})
        argv = self.sentinel_c.argv(env)
        assert argv[:2] == ["redis-sentinel", "/data/sentinel.conf"]
        # redis-sentinel is redis-server --sentinel (Debian's redis-server package has no link).
        args = _set(argv[2:], "--port", str(self.sentinel_ports[i]))
        process = Process(pod, self.tmp)
        # The config script writes no bind (the pod listens on every address); here, loopback
        # only, as start_redis does.
        process.spawn(["redis-server", str(conf), "--sentinel", *args, "--bind", "127.0.0.1"])
        self.processes.append(process)
        wait_until(lambda: self.sentinel(i).ping(), 10, pod, give_up=lambda: not process.running() and pod)
        return process

    def client(self, i: int) -> redis.Redis:
        return redis.Redis(port=self.redis_ports[i], password=SECRETS["redis-password"], socket_timeout=2)

    def sentinel(self, i: int) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[i], socket_timeout=2, decode_responses=True)

    def ready(self, i: int) -> bool:
        """The redis container's readiness probe, run against pod i."""
        command = self.redis_c.spec["readinessProbe"]["exec"]["command"]
        command = [c.replace("-p 6379", f"-p {self.redis_ports[i]}") for c in command]
        result = subprocess.run(command, env={**os.environ, "REDISCLI_AUTH": SECRETS["redis-password"]},
                                capture_output=True, timeout=10)
        return result.returncode == 0

    def stop(self):
        for process in self.processes:
            process.stop()


def test_sentinels_promote_a_replica_and_the_old_primary_returns_as_a_replica(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        # The first start: no sentinel answers yet, so redis-0 is the primary and the others
        # its replicas. The sentinels start after them and find the replicas at once (they
        # poll a primary's INFO only every 10 s).
        primary = cluster.start_redis(0)
        cluster.start_redis(1)
        cluster.start_redis(2)
        for i in range(3):
            cluster.start_sentinel(i)
        assert cluster.ready(0) and not cluster.ready(1) and not cluster.ready(2)
        cluster.client(0).set(NODE_1, "2.3.4.5")
        wait_until(lambda: cluster.client(2).get(NODE_1) == b"2.3.4.5", 20, "replication")
        # Each sentinel knows both replicas and the two other sentinels before the failure.
        wait_until(lambda: all(cluster.sentinel(i).sentinel_master("mountdns")["num-other-sentinels"] == 2
                               and cluster.sentinel(i).sentinel_master("mountdns")["num-slaves"] == 2
                               for i in range(3)), 30, "sentinels and replicas discovered")

        primary.stop()
        promoted = wait_until(lambda: [i for i in (1, 2) if cluster.ready(i)], 60, "a replica promoted")
        assert len(promoted) == 1
        (new,) = promoted
        assert cluster.client(new).get(NODE_1) == b"2.3.4.5"
        cluster.client(new).set(NODE_1, "12.34.5.6")

        # The failover is complete once the sentinels name the new primary (a pod restarted
        # before that still hears of the old one: Sentinel's own window, closed by Sentinel
        # itself when it next polls the pod).
        wait_until(lambda: all(cluster.sentinel(i).sentinel_get_master_addr_by_name("mountdns")
                               == ("127.0.0.1", cluster.redis_ports[new]) for i in range(3)),
                   30, "the sentinels switched to the new primary")
        cluster.start_redis(0)
        # A replica from its first moment: the start script asked the sentinels.
        assert cluster.client(0).info("replication")["role"] == "slave"
        assert not cluster.ready(0), "a restarted old primary must not be a second primary"
        wait_until(lambda: cluster.client(0).get(NODE_1) == b"12.34.5.6", 30,
                   "the old primary replicating from the new one")
    finally:
        cluster.stop()
