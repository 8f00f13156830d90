"""Real Redis Sentinel on loopback for tests and benchmarks: a primary, replicas and
sentinels watching them, with short timeouts so that a failover takes about a second.

`redis-sentinel` is the redis-server binary started in sentinel mode; where the
`redis-sentinel` command is not installed, `redis-server CONFIG --sentinel` is the same.
Importable without pytest, like mountdns.testing.servers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from mountdns.testing.servers import Process, RedisServer, free_port, wait_until

MASTER = "mountdns"


def replica_of(primary: RedisServer, workdir: Path, name: str) -> RedisServer:
    """A replica of `primary` (not started)."""
    return RedisServer(workdir, name=name, extra_args=(
        "--replicaof", "127.0.0.1", str(primary.port), "--repl-diskless-sync-delay", "0"))


def primary_server(workdir: Path, name: str = "redis-primary") -> RedisServer:
    """A primary that feeds replicas at once (no 5 s wait for more replicas to join)."""
    return RedisServer(workdir, name=name, extra_args=("--repl-diskless-sync-delay", "0"))


class SentinelServer(Process):
    """One sentinel monitoring `primary_port` as `master`."""

    def __init__(self, workdir: Path, primary_port: int, *, master: str = MASTER, quorum: int = 2,
                 down_after_ms: int = 500, failover_timeout_ms: int = 3000, port: int | None = None):
        self.port = port or free_port()
        super().__init__(f"sentinel-{self.port}", workdir)
        self.master = master
        self.primary_port = primary_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.config_path = workdir / f"sentinel-{self.port}.conf"

    def start(self) -> "SentinelServer":
        if not self.config_path.exists():  # sentinel rewrites its config: keep it across restarts
            self.config_path.write_text("\n".join([
                "bind 127.0.0.1",
                f"port {self.port}",
                f"dir {self.workdir}",
                f"sentinel monitor {self.master} 127.0.0.1 {self.primary_port} {self.quorum}",
                f"sentinel down-after-milliseconds {self.master} {self.down_after_ms}",
                f"sentinel failover-timeout {self.master} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {self.master} 1",
                "",
            ]))
        binary = shutil.which("redis-sentinel")
        argv = [binary, str(self.config_path)] if binary else [
            shutil.which("redis-server") or "redis-server", str(self.config_path), "--sentinel"]
        self.spawn(argv)
        wait_until(lambda: self.client().ping(), 10, f"redis-sentinel on {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def primary_port_now(self) -> int | None:
        """The port this sentinel currently says the primary is on."""
        address = self.client().sentinel_get_master_addr_by_name(self.master)
        return int(address[1]) if address else None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class SentinelSetup:
    """A primary, `replicas` replicas and `sentinels` sentinels, started together."""

    def __init__(self, workdir: Path, replicas: int = 1, sentinels: int = 3, **sentinel_options):
        self.workdir = workdir
        self.primary = primary_server(workdir)
        self.replicas = [replica_of(self.primary, workdir, f"redis-replica-{i}") for i in range(replicas)]
        self.sentinel_options = sentinel_options
        self.sentinels: list[SentinelServer] = []
        self.sentinel_count = sentinels

    def start(self) -> "SentinelSetup":
        self.primary.start()
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            wait_until(lambda r=replica: r.client().info("replication").get("master_link_status") == "up", 20,
                       f"{replica.name} in sync")
        self.sentinels = [SentinelServer(self.workdir, self.primary.port, **self.sentinel_options).start()
                          for _ in range(self.sentinel_count)]
        # Every sentinel has found the replicas (and the others) before anything relies on it.
        wait_until(lambda: all(len(s.client().sentinel_slaves(MASTER)) == len(self.replicas)
                               for s in self.sentinels), 20, "sentinels seeing the replicas")
        return self

    def sentinel_args(self) -> list[str]:
        args = []
        for sentinel in self.sentinels:
            args += ["--redis-sentinel", sentinel.address]
        return args + ["--redis-sentinel-master", MASTER]

    def current_primary_port(self) -> int | None:
        return self.sentinels[0].primary_port_now()

    def stop(self) -> None:
        for process in [*self.sentinels, *self.replicas, self.primary]:
            process.stop()
