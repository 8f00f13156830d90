"""A gunicorn worker that gives each keep-alive connection its own thread.

PowerDNS opens a handful of long-lived connections (one per distributor thread) and
sends one request at a time on each. gunicorn's gthread worker serves such a connection
by handing every request from its poller to a thread pool and back, which costs more CPU
than the lookup itself. Here a connection's thread simply reads the next request, answers
it and waits for the next: no hand-offs, no re-registration, and the connection stays
open as PowerDNS requires (it races servers that close idle connections into SERVFAILs).

Request parsing, the WSGI environment and response writing are gunicorn's own.
"""

from __future__ import annotations

import errno
import socket
import threading
from datetime import datetime

from gunicorn import http
from gunicorn.http import wsgi
from gunicorn.workers.sync import SyncWorker

_PEER_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN)
_REASONS = {200: b"OK", 400: b"Bad Request", 500: b"Internal Server Error"}


class ConnectionThreadWorker(SyncWorker):
    """SyncWorker's accept loop; each accepted connection is served by its own thread
    until the client closes it. At most `worker_connections` connections per worker."""

    def init_process(self):
        self._slots = threading.BoundedSemaphore(self.cfg.worker_connections)
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        # The app may offer a raw route for its hot path (see pdns_backend.app.RAW_ROUTE).
        extensions = getattr(self.wsgi, "extensions", {})
        self.raw_route = extensions.get("mountdns.raw_route")

    def accept(self, listener):
        client, addr = listener.accept()
        client.setblocking(True)
        if client.family in (socket.AF_INET, socket.AF_INET6):
            # Headers and body go out in two writes: without this the body waits for the
            # peer's delayed ACK (~40 ms).
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._slots.acquire(blocking=False):
            self.log.warning("refusing connection from %s: %d connections already open",
                             addr, self.cfg.worker_connections)
            client.close()
            return
        threading.Thread(target=self.serve_connection, args=(listener, client, addr),
                         name=f"conn-{addr}", daemon=True).start()

    def serve_connection(self, listener, client, addr):
        try:
            for request in http.get_parser(self.cfg, client, addr):
                if not self.answer(listener, request, client, addr) or not self.alive:
                    break
        except http.errors.NoMoreData:
            pass  # the client closed the connection between requests
        except OSError as exc:
            if exc.errno not in _PEER_GONE:
                self.log.exception("socket error on a connection from %s", addr)
        except Exception as exc:  # noqa: BLE001 - a bad request: gunicorn answers 400 and logs
            self.handle_error(None, client, addr, exc)
        finally:
            try:
                client.close()
            finally:
                self._slots.release()

    def answer(self, listener, request, client, addr) -> bool:
        """Serve one request; True when the connection may carry another."""
        if self.raw_route is not None:
            hit = self.raw_route(request.method, request.uri)
            if hit is not None:
                status, body = hit
                keep_alive = not request.should_close()
                # Status line, headers and body in one write (see the module docstring).
                client.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n%s\r\n%s" % (
                                   status, _REASONS[status], len(body),
                                   b"" if keep_alive else b"Connection: close\r\n", body))
                self.nr += 1
                return keep_alive
        started = datetime.now()
        response, environ = wsgi.create(request, client, addr, listener.getsockname(), self.cfg)
        self.nr += 1
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
