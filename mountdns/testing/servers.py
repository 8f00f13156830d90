"""Real servers for integration tests and benchmarks: redis-server, pdns_server and
mountdns-backend, each on a free 127.0.0.1 port, each stoppable and restartable on the
same port (to test failures), each cleaned up even when a test fails.

Importable without pytest, so the demo-like tests and the benchmark share it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import redis

REPO = Path(__file__).resolve().parents[2]
PDNS_CONFIG_DIR = REPO / "pdns"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (DNS needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def eventually(predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """True as soon as `predicate()` is; False if it is not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def wait_until(check, timeout: float, what: str, interval: float = 0.05, give_up=None):
    """`check()`'s first true result; TimeoutError when it has none within `timeout`, or
    as soon as `give_up()` returns a reason (a server that exited will never be ready)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - reported below if it never succeeds
            last_error = exc
        reason = give_up() if give_up else None
        if reason:
            raise TimeoutError(f"{reason} before {what}")
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last_error!r})")


class Process:
    """A child process with its output in a log file, stopped on exit."""

    def __init__(self, name: str, workdir: Path):
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def spawn(self, argv: list[str], env: dict | None = None):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        log.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 10):
        if not self.running():
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class RedisServer(Process):
    def __init__(self, workdir: Path, port: int | None = None, name: str = "redis",
                 extra_args: tuple[str, ...] = ()):
        super().__init__(name, workdir)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.extra_args = tuple(extra_args)  # e.g. ("--replicaof", host, port)

    def start(self):
        # No persistence: a restart comes back empty, which tests use on purpose.
        self.spawn([shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1",
                    "--port", str(self.port), "--save", "", "--appendonly", "no",
                    "--dir", str(self.workdir), "--dbfilename", f"{self.name}.rdb", *self.extra_args])
        wait_until(lambda: self.client().ping(), 10, f"redis-server on {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


class BackendServer(Process):
    def __init__(self, workdir: Path, redis_url: str, port: int | None = None, workers: int = 3,
                 threads: int = 1, max_connections: int = 256, extra_args: tuple[str, ...] = (),
                 name: str = "backend"):
        super().__init__(name, workdir)
        self.extra_args = tuple(extra_args)  # e.g. --pdns-api-url/--pdns-api-key
        self.port = port or free_port()
        self.redis_url = redis_url
        self.workers = workers
        self.threads = threads
        self.max_connections = max_connections
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.spawn([str(VENV_BIN / "mountdns-backend"), "--bind", f"127.0.0.1:{self.port}",
                    "--redis-url", self.redis_url, "--workers", str(self.workers),
                    "--threads", str(self.threads), "--max-connections", str(self.max_connections),
                    "--log-level", "warning", *self.extra_args])

        def healthy():
            if not self.running():
                raise RuntimeError(f"backend exited:\n{self.log_tail()}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        wait_until(healthy, 20, f"mountdns-backend on {self.port}")
        return self


CACHES_OFF = {"cache-ttl": "0", "query-cache-ttl": "0", "negquery-cache-ttl": "0"}


class PdnsServer(Process):
    """pdns_server with the shipped pdns/pdns.conf, overriding only addresses, ports,
    directories, the backend URL and any `settings` a test asks for."""

    def __init__(self, workdir: Path, backend_url: str, connector_options: str = "",
                 settings: dict | None = None, port: int | None = None, zone: str = "domain.foo.bar"):
        super().__init__("pdns", workdir)
        self.port = port or free_port()
        self.api_port = free_port()
        self.api_key = "test-api-key"
        self.backend_url = backend_url
        self.connector_options = connector_options
        self.settings = settings or {}
        self.zone = zone
        self.api_url = f"http://127.0.0.1:{self.api_port}"

    def argv(self) -> list[str]:
        connection = f"http:url={self.backend_url}/dnsapi{self.connector_options},timeout=2000"
        overrides = {
            "config-dir": str(PDNS_CONFIG_DIR),
            "socket-dir": str(self.workdir),
            "local-address": "127.0.0.1",
            "local-port": str(self.port),
            "webserver-address": "127.0.0.1",
            "webserver-port": str(self.api_port),
            "webserver-allow-from": "127.0.0.1",
            "api-key": self.api_key,
            "remote-connection-string": connection,
            "daemon": "no",
            "guardian": "no",
            "write-pid": "no",
            **self.settings,
        }
        return [shutil.which("pdns_server") or "/usr/sbin/pdns_server"] + [
            f"--{k}={v}" for k, v in overrides.items()]

    def start(self):
        self.spawn(self.argv())

        def answers():
            if not self.running():
                raise RuntimeError(f"pdns_server exited:\n{self.log_tail()}")
            response = self.query(self.zone, "SOA", timeout=0.5)
            return response.rcode() == dns.rcode.NOERROR and response.answer
        wait_until(answers, 20, f"pdns_server on {self.port}", interval=0.1)
        return self

    def query(self, name: str, rdtype: str, timeout: float = 2.0, tcp: bool = False) -> dns.message.Message:
        message = dns.message.make_query(name, rdtype)
        send = dns.query.tcp if tcp else dns.query.udp
        return send(message, "127.0.0.1", port=self.port, timeout=timeout)

    def control(self, *args: str) -> str:
        return subprocess.run(["pdns_control", f"--socket-dir={self.workdir}", *args],
                              capture_output=True, text=True, timeout=10).stdout


def workdir(prefix: str = "mountdns-") -> Path:
    # Short path under /tmp: pdns_control's unix socket path must stay under 108 bytes.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
