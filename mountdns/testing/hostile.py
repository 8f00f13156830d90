"""Clients that misbehave on purpose, and what tests watch while they do.

The backend must keep answering PowerDNS while strangers drip requests a byte at a time,
hold hundreds of idle connections, send oversized or broken requests, or pipeline without
reading. These helpers speak raw HTTP/1.1 over sockets (http.client would fix the
client's mistakes for it), run PowerDNS queries alongside, and read a gunicorn process
tree from /proc (worker pids, to see restarts; resident memory).
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from mountdns.testing.servers import BackendServer


class TunedBackendServer(BackendServer):
    """A BackendServer with extra MOUNTDNS_* settings (every flag is also an env var)."""

    def __init__(self, *args, env: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.env = env or {}

    def spawn(self, argv, env=None):
        super().spawn(argv, {**(env or {}), **self.env})


class RawClient:
    """One TCP connection speaking HTTP/1.1 by hand."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def read_response(self) -> tuple[int, dict, bytes]:
        """(status, lowercased headers, body) of the next response; ConnectionError on EOF."""
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def get(self, path: str) -> tuple[int, dict, bytes]:
        self.send(f"GET {path} HTTP/1.1\r\nHost: backend\r\n\r\n".encode())
        return self.read_response()

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def closed_by_peer(self) -> bool:
        """Whether the server has closed its side (without consuming pending data)."""
        timeout = self.sock.gettimeout()
        self.sock.setblocking(False)  # with a timeout set, recv would wait for data first
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()


def rest_lookup_path(qname: str, qtype: str = "ANY") -> str:
    """PowerDNS's REST lookup path: every octet that is not alphanumeric percent-encoded."""
    encoded = "".join(c if c.isalnum() else f"%{ord(c):02x}" for c in qname)
    return f"/dnsapi/lookup/{encoded}/{qtype}"


class QueryLoad:
    """PowerDNS queries one at a time, until stopped or `limit` have run, in a background
    thread (as a context manager) or in the caller's (`run()`); counts the answers'
    rcodes (and timeouts) to compare with expectations."""

    def __init__(self, port: int, names: list[tuple[str, str]], limit: int = 2000, timeout: float = 3.0):
        self.port = port
        self.names = names
        self.limit = limit
        self.timeout = timeout
        self.rcodes: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="query-load", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """Stop after the query in flight (the thread only; `run()` runs to its limit)."""
        self._stop.set()
        self._thread.join(30)

    @property
    def total(self) -> int:
        return sum(self.rcodes.values())

    def run(self):
        for i in range(self.limit):
            if self._stop.is_set():
                return
            name, rdtype = self.names[i % len(self.names)]
            query = dns.message.make_query(name, rdtype)
            try:
                answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=self.timeout)
                self.rcodes[dns.rcode.to_text(answer.rcode())] += 1
            except dns.exception.Timeout:
                self.rcodes["TIMEOUT"] += 1


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (a gunicorn master's workers)."""
    try:
        return sorted(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except FileNotFoundError:
        return []


def rss_kib(pid: int) -> int:
    """Resident memory of `pid` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for {pid}")
