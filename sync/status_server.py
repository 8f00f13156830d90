"""The sync's HTTP endpoint (`--metrics-bind`, default 127.0.0.1:9153): `/healthz`,
`/readyz` and `/metrics`.

A small threaded WSGI server from the standard library, in a daemon thread: the sync
has no web framework, and prometheus-client's own WSGI app renders `/metrics` from the
registry it is given. Probe answers are plain text, the reason on failure.
"""

from __future__ import annotations

import logging
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from mountdns.settings import ConfigError
from sync.health import Health

log = logging.getLogger("mountdns.sync.http")


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never keeps the process from exiting


class _IPv6Server(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


def make_app(registry: CollectorRegistry, health: Health):
    metrics_app = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/healthz":
            ok, reason = health.liveness()
            status = "200 OK" if ok else "500 Internal Server Error"
        elif path == "/readyz":
            ok, reason = health.readiness()
            status = "200 OK" if ok else "503 Service Unavailable"
        else:
            status, reason = "404 Not Found", "not found: try /healthz, /readyz or /metrics"
        body = (reason + "\n").encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class StatusServer:
    """Serves `make_app` on (host, port) in a daemon thread until `stop()`."""

    def __init__(self, bind: tuple[str, int], registry: CollectorRegistry, health: Health):
        host, port = bind
        host = host.strip("[]")
        server_class = _IPv6Server if ":" in host else _ThreadingServer
        try:
            self.server = make_server(host, port, make_app(registry, health), server_class=server_class,
                                      handler_class=_QuietHandler)
        except OSError as exc:
            raise ConfigError(f"--metrics-bind: cannot listen on {host}:{port}: {exc}") from exc
        self.thread = threading.Thread(target=self.server.serve_forever, name="status-http", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> "StatusServer":
        self.thread.start()
        log.info("serving /healthz, /readyz and /metrics on %s:%d", self.server.server_address[0], self.port)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
