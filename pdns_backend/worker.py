"""A gunicorn worker for PowerDNS's traffic that no other client can stall.

PowerDNS keeps a few long-lived connections and sends one small request at a time on
each; every request is a lookup that costs less than serving it. Each worker thread runs
an event loop over non-blocking sockets: it reads whatever bytes the ready sockets have,
lets `pdns_backend.connection` parse them incrementally, answers the complete requests
of the whole round together through the app's `Backend.respond_many` (the same entry the
Flask app uses, one request at a time; a round's lookups share one Redis round trip) and
writes each connection's responses in one write. There is no hand-off to a thread pool
and, with the default of one loop per process, no thread ever waits for the GIL.

What keeps strangers from hurting PowerDNS:
- nothing blocks the loop on one client: a client that drips its request a byte at a
  time is just a connection with a partial request, closed when its whole-request
  deadline (`--request-timeout`, from its first byte) passes;
- a loop at its connection limit makes room by closing its longest-idle connection
  (fresh connections that never completed a request first, then keep-alive ones by
  last activity; PowerDNS's are in use and come last), and when every connection is
  mid-request it stops accepting, leaving new connections to the kernel's backlog and
  the other workers, until a connection closes;
- keep-alive connections idle longer than `--idle-timeout` are closed. That timeout is
  long on purpose: a server that closes a connection PowerDNS is about to reuse makes
  it answer SERVFAIL (PowerDNS issue #5619);
- a client that sends requests but does not read the answers is not read from until it
  does, and is closed after the request timeout.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import threading
import time

from gunicorn.workers import base

from pdns_backend.app import BACKEND
from pdns_backend.connection import Connection
from pdns_backend.lines import LineConnection
from pdns_backend.loglimit import LogLimiter

READ_SIZE = 16 * 1024
# How often deadlines are checked; they are enforced to within this.
SWEEP_INTERVAL = 0.25
# After a refused request the client may still be sending: its connection is shut for
# writing and drained (discarding) for up to this long or this many bytes before it is
# closed, so that closing does not reset the connection before the client reads the answer.
LINGER_SECONDS = 1.0
LINGER_BYTES = 256 * 1024
# Connections accepted per readable event: a burst is taken in a few gulps, and the
# kernel can hand the rest to other workers meanwhile.
ACCEPT_BATCH = int(os.environ.get("XAB", "32"))

_PEER_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF, errno.ECONNABORTED)


class EventLoop:
    """One event loop: its own selector and connections, `limit` of them at most.

    Independent of gunicorn (the worker passes its sockets, `alive` and a heartbeat), so
    tests drive it with socket pairs and an injected clock."""

    def __init__(self, respond, limiter: LogLimiter, listeners, limit: int, request_timeout: float,
                 idle_timeout: float, alive=lambda: True, clock=time.monotonic, respond_many=None,
                 url_prefix: str = "/dnsapi"):
        self.respond = respond
        self.url_prefix = url_prefix  # where a unix-socket connection's calls are sent (pdns_backend.lines)
        # The answers to a round's requests, in order; by default one `respond` each.
        self.respond_many = respond_many or (lambda requests: [respond(*r) for r in requests])
        self.limiter = limiter
        self.listeners = listeners
        self.limit = limit
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.alive = alive
        self.clock = clock
        self.selector = selectors.DefaultSelector()
        self.connections: dict[socket.socket, Connection] = {}
        self.listening = False

    # --- the loop -------------------------------------------------------------------

    def run(self, heartbeat=None):
        """Serve until `alive()` is false; `heartbeat()` (false to stop) about once a second."""
        self.listen(True)
        next_sweep = next_beat = 0.0
        try:
            while self.alive():
                now = self.clock()
                if heartbeat is not None and now >= next_beat:
                    next_beat = now + 1.0
                    if not heartbeat():
                        return
                if now >= next_sweep:
                    next_sweep = now + SWEEP_INTERVAL
                    self.sweep(now)
                self.step(SWEEP_INTERVAL)
        finally:
            for sock in list(self.connections):
                self.close(sock)
            self.selector.close()

    def step(self, timeout: float):
        """Wait up to `timeout` for sockets to be ready and serve them: read every ready
        socket, answer the round's complete requests together, then write."""
        ready = []
        for key, events in self.selector.select(timeout):
            if key.data is None:
                self.accept(key.fileobj)
            elif self.read(key.fileobj, key.data, events):
                ready.append((key.fileobj, key.data, events))
        if ready:
            self.answer(ready)
            for sock, conn, events in ready:
                if self.connections.get(sock) is conn:
                    self.write(sock, conn, events)

    def listen(self, on: bool):
        if on == self.listening:
            return
        for listener in self.listeners:
            if on:
                self.selector.register(listener, selectors.EVENT_READ, None)
            else:
                self.selector.unregister(listener)
        self.listening = on

    # --- connections ----------------------------------------------------------------

    def accept(self, listener):
        for _ in range(ACCEPT_BATCH):
            if len(self.connections) >= self.limit and self.evictable() is None:
                # Every connection is mid-request: let the backlog and other workers wait
                # for us until one completes, fails its deadline or closes.
                self.listen(False)
                self.problem("at limit", logging.WARNING,
                             f"connection limit ({self.limit}) reached with every connection mid-request: "
                             "not accepting until one closes")
                return
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # another loop or worker took it
            except OSError as exc:  # EMFILE and the like: back off until a connection closes
                self.listen(False)
                self.problem("accept failed", logging.ERROR, f"accept failed: {exc}")
                return
            if len(self.connections) >= self.limit:
                victim = self.evictable()
                self.problem("evicted", logging.WARNING,
                             f"connection limit ({self.limit}) reached: closed the longest-idle connection")
                self.close(victim)
            self.add(sock)

    def add(self, sock: socket.socket):
        """Serve an accepted connection: HTTP over TCP, PowerDNS's JSON lines over a unix socket."""
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # A response is one write, but a pipelined batch or a large one may not be:
            # never let a part wait for the peer's delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if sock.family == socket.AF_UNIX:
            conn = LineConnection(self.url_prefix, self.clock(), self.refused)
        else:
            conn = Connection(self.respond, self.clock(), self.refused, defer=True)
        self.connections[sock] = conn
        self.selector.register(sock, selectors.EVENT_READ, conn)

    def evictable(self) -> socket.socket | None:
        """The connection to close to make room: idle ones only, those that never
        completed a request first, then the least recently active."""
        best, best_key = None, None
        for sock, conn in self.connections.items():
            if conn.idle or conn.lingering_since is not None:
                key = (conn.lingering_since is None, conn.served > 0, conn.last_active)
                if best_key is None or key < best_key:
                    best, best_key = sock, key
        return best

    def close(self, sock: socket.socket):
        self.connections.pop(sock, None)
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        if not self.listening and self.alive():
            self.listen(True)

    def sweep(self, now: float):
        for sock, conn in list(self.connections.items()):
            if conn.lingering_since is not None:
                if now - conn.lingering_since > LINGER_SECONDS:
                    self.close(sock)
                continue
            reason = conn.expired(now, self.request_timeout, self.idle_timeout)
            if reason:
                if reason != "idle":
                    self.problem(reason, logging.INFO, f"closed a connection: {reason}")
                self.close(sock)
        if not self.listening:
            self.listen(True)  # a connection may have become idle: accept() decides again
        self.limiter.flush()

    # --- I/O --------------------------------------------------------------------------

    def read(self, sock: socket.socket, conn: Connection, events: int) -> bool:
        """Read what a ready socket has (its complete requests wait in `conn.waiting`);
        True when the connection is still open and is to be written."""
        if self.connections.get(sock) is not conn:
            return False  # closed earlier in this round (evicted to admit a newcomer)
        if conn.lingering_since is not None:
            self.drain(sock, conn)
            return False
        try:
            if events & selectors.EVENT_READ and not conn.out:
                data = sock.recv(READ_SIZE)
                if not data:
                    self.close(sock)  # the client closed its side
                    return False
                conn.received(data, self.clock())
        except (BlockingIOError, InterruptedError):
            pass
        except Exception as exc:  # noqa: BLE001 - socket errors, and a bug must cost one connection, not the worker
            self.failed(sock, exc)
            return False
        return True

    def answer(self, ready: list):
        """Answer the requests waiting on the round's connections, all in one call."""
        waiting = [(sock, conn) for sock, conn, _ in ready if conn.waiting]
        if not waiting:
            return
        counts = [len(conn.requests) for _, conn in waiting]
        requests = [request for _, conn in waiting for request in conn.requests]
        try:
            replies = self.respond_many(requests) if requests else []
        except Exception as exc:  # noqa: BLE001 - respond never raises; if it does, these connections go
            for sock, _ in waiting:
                self.failed(sock, exc)
            return
        now, start = self.clock(), 0
        for (_, conn), count in zip(waiting, counts):
            conn.answered(replies[start:start + count], now)
            start += count

    def failed(self, sock: socket.socket, exc: Exception):
        if isinstance(exc, OSError):
            if exc.errno not in _PEER_GONE:
                self.problem("socket error", logging.WARNING, f"socket error: {exc}")
        else:
            self.problem(f"internal error {type(exc).__name__}", logging.ERROR,
                         "unexpected error serving a connection; closed it", exc_info=exc)
        self.close(sock)

    def write(self, sock: socket.socket, conn: Connection, events: int):
        """Write what the connection has to send, and wait for what comes next."""
        try:
            if conn.out:
                conn.sent(sock.send(conn.out), self.clock())
        except (BlockingIOError, InterruptedError):
            pass
        except Exception as exc:  # noqa: BLE001 - as in read
            self.failed(sock, exc)
            return
        if conn.out:
            # Wait until the client reads; read nothing more from it meanwhile.
            self.selector.modify(sock, selectors.EVENT_WRITE, conn)
        elif not self.alive():
            self.close(sock)
        elif conn.closing:
            self.linger(sock, conn)
        elif events & selectors.EVENT_WRITE:
            self.selector.modify(sock, selectors.EVENT_READ, conn)

    def linger(self, sock: socket.socket, conn: Connection):
        """Everything is written: shut our side and drain the client's until it closes."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(sock)
            return
        conn.lingering_since = self.clock()
        conn.lingered = 0
        self.selector.modify(sock, selectors.EVENT_READ, conn)

    def drain(self, sock: socket.socket, conn: Connection):
        try:
            data = sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.lingered += len(data)
        if not data or conn.lingered > LINGER_BYTES:
            self.close(sock)

    def refused(self, problem: str):
        self.problem(problem, logging.WARNING, f"refused a request: {problem}")

    def problem(self, key: str, level: int, message: str, exc_info=None):
        self.limiter.log(key, level, message, exc_info=exc_info)


class EventLoopWorker(base.Worker):
    """`threads` event loops per worker process (default 1), each accepting and serving its
    own connections; `worker_connections` per process, split evenly among the loops.

    Serves only a pdns_backend app: it calls the app's Backend directly rather than going
    through WSGI, so the request path is the same as the Flask app's catch-all route."""

    request_timeout = 5.0
    idle_timeout = 300.0

    @classmethod
    def configured(cls, request_timeout: float, idle_timeout: float) -> type["EventLoopWorker"]:
        """This worker class with the given timeouts (gunicorn has no settings for them,
        and takes a worker class, not an instance)."""
        return type(cls.__name__, (cls,), {"request_timeout": request_timeout, "idle_timeout": idle_timeout})

    def load_wsgi(self):
        super().load_wsgi()
        self.backend = getattr(self.wsgi, "extensions", {}).get(BACKEND)
        if self.backend is None:
            raise RuntimeError("EventLoopWorker serves only pdns_backend.app.create_app() applications")

    def run(self):
        for listener in self.sockets:
            listener.setblocking(False)
        threads = max(1, self.cfg.threads)
        limit = max(1, self.cfg.worker_connections // threads)

        def loop():
            return EventLoop(self.backend.respond, self.backend.limiter, self.sockets, limit,
                             self.request_timeout, self.idle_timeout, alive=lambda: self.alive,
                             respond_many=self.backend.respond_many, url_prefix=self.backend.url_prefix)

        for i in range(1, threads):
            threading.Thread(target=loop().run, name=f"loop-{i}", daemon=True).start()
        loop().run(heartbeat=self.heartbeat)

    def heartbeat(self) -> bool:
        """Tell the arbiter this worker is alive, and add the lookups counted since the
        last beat to the metrics; False when the arbiter is gone."""
        self.notify()
        if self.backend.metrics is not None:
            self.backend.metrics.flush()
        if self.ppid != os.getppid():
            self.log.info("parent changed, shutting down: %s", self)
            return False
        return True
