"""A stand-in for PowerDNS's HTTP API cache flush endpoint, for tests of the purges.

It records each PUT (path, X-API-Key, status answered) and can be told to fail (`status`),
to hang until released, or be stopped, which a real pdns_server cannot do on demand.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FLUSH = "/api/v1/servers/localhost/cache/flush?domain="


class FakePdnsApi:
    """The PowerDNS API's cache flush endpoint, recording (path, X-API-Key, status) per PUT."""

    def __init__(self):
        self.requests: list[tuple[str, str | None, int]] = []
        self.status = 200
        self.hang = threading.Event()  # set: requests wait until `release` is set
        self.release = threading.Event()
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                if api.hang.is_set():
                    api.release.wait(10)
                with api.lock:
                    status = api.status
                    api.requests.append((self.path, self.headers.get("X-API-Key"), status))
                body = b'{"count": 1, "result": "Flushed cache."}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.stopped = False

    def paths(self, status: int = 200) -> list[str]:
        with self.lock:
            return [path for path, _, s in self.requests if s == status]

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
