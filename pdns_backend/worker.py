"""A gunicorn worker for PowerDNS's traffic: a few long-lived connections, one request at
a time on each, and every request a lookup that costs less than serving it.

Each worker thread runs an event loop over its connections: when one becomes readable,
the thread reads the request, answers it and goes back to waiting. Compared with gunicorn's
gthread worker there is no hand-off from a poller to a thread pool and back for every
request, and with the default of one loop thread per process no thread ever waits for the
GIL, which on a 2-core machine was most of the difference (see the README's benchmarks).
Connections stay open: PowerDNS reuses them, and a server that closes idle connections
races it into SERVFAILs. Parsing (gunicorn's, with its C parser when installed), the WSGI
environment and response writing for the non-lookup routes are gunicorn's own.

A request is read once its connection is readable, in one blocking read bounded by
`timeout` (gunicorn's --timeout), so a client that stalls mid-request delays the other
connections of its loop by at most that and is then dropped. The backend's clients are
PowerDNS servers, which send whole requests.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
from datetime import datetime

from gunicorn import http
from gunicorn.http import wsgi
from gunicorn.workers import base

_PEER_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF)
_REASONS = {200: b"OK", 400: b"Bad Request", 500: b"Internal Server Error"}
_READ_TIMEOUT = 5.0


class _Connection:
    def __init__(self, worker, listener, sock, addr):
        self.listener = listener
        self.sock = sock
        self.addr = addr
        self.parser = http.get_parser(worker.cfg, sock, addr)

    def buffered(self) -> bool:
        """Whether the parser already holds the start of another request (pipelining)."""
        buf = self.parser.unreader.buf
        buf.seek(0, 2)
        return buf.tell() > 0


class EventLoopWorker(base.Worker):
    """`threads` event loops per worker process (default 1), each accepting and serving its
    own connections; at most `worker_connections` open connections per process."""

    def init_process(self):
        self._slots = threading.BoundedSemaphore(self.cfg.worker_connections)
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        # The app may offer a raw route for its hot path (see pdns_backend.app.RAW_ROUTE).
        self.raw_route = getattr(self.wsgi, "extensions", {}).get("mountdns.raw_route")

    def run(self):
        for listener in self.sockets:
            listener.setblocking(False)
        loops = [threading.Thread(target=self.loop, name=f"loop-{i}", daemon=True)
                 for i in range(1, self.cfg.threads)]
        for thread in loops:
            thread.start()
        self.loop(heartbeat=True)

    def loop(self, heartbeat: bool = False):
        selector = selectors.DefaultSelector()
        for listener in self.sockets:
            selector.register(listener, selectors.EVENT_READ)
        try:
            while self.alive:
                if heartbeat:
                    self.notify()  # tells the arbiter this worker is alive
                    if self.ppid != os.getppid():
                        self.log.info("parent changed, shutting down: %s", self)
                        return
                for key, _ in selector.select(1.0):
                    if key.data is None:
                        self.accept(selector, key.fileobj)
                    elif not self.serve(key.data):
                        self.close(selector, key.data)
        finally:
            for key in list(selector.get_map().values()):
                if key.data is not None:
                    self.close(selector, key.data)
            selector.close()

    def accept(self, selector, listener):
        try:
            sock, addr = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another loop or process took it
        if not self._slots.acquire(blocking=False):
            self.log.warning("refusing connection from %s: %d connections already open",
                             addr, self.cfg.worker_connections)
            sock.close()
            return
        sock.setblocking(True)
        sock.settimeout(_READ_TIMEOUT)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # WSGI responses go out as headers then body: without this the body waits for
            # the peer's delayed ACK (~40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(sock, selectors.EVENT_READ, _Connection(self, listener, sock, addr))

    def close(self, selector, connection: _Connection):
        try:
            selector.unregister(connection.sock)
        except (KeyError, ValueError):
            pass
        connection.sock.close()
        self._slots.release()

    def serve(self, connection: _Connection) -> bool:
        """Answer the request(s) waiting on a readable connection; False to close it."""
        try:
            while True:
                request = next(connection.parser)
                if not self.answer(connection, request) or not self.alive:
                    return False
                if not connection.buffered():
                    return True
        except (StopIteration, http.errors.NoMoreData):
            return False  # the client closed the connection
        except socket.timeout:
            self.log.warning("dropping %s: no complete request within %.0f s", connection.addr, _READ_TIMEOUT)
            return False
        except OSError as exc:
            if exc.errno not in _PEER_GONE:
                self.log.exception("socket error on a connection from %s", connection.addr)
            return False
        except Exception as exc:  # noqa: BLE001 - a bad request: gunicorn answers 400 and logs
            self.handle_error(None, connection.sock, connection.addr, exc)
            return False

    def answer(self, connection: _Connection, request) -> bool:
        """Serve one request; True when the connection may carry another."""
        self.nr += 1
        if self.raw_route is not None:
            hit = self.raw_route(request.method, request.uri)
            if hit is not None:
                status, body = hit
                keep_alive = not request.should_close()
                # Status line, headers and body in one write.
                connection.sock.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                                        b"Content-Length: %d\r\n%s\r\n%s" % (
                                            status, _REASONS[status], len(body),
                                            b"" if keep_alive else b"Connection: close\r\n", body))
                return keep_alive
        started = datetime.now()
        response, environ = wsgi.create(request, connection.sock, connection.addr,
                                        connection.listener.getsockname(), self.cfg)
        body = self.wsgi(environ, response.start_response)
        try:
            for chunk in body:
                response.write(chunk)
            response.close()
        finally:
            self.log.access(response, request, environ, datetime.now() - started)
            if hasattr(body, "close"):
                body.close()
        return not response.should_close()
