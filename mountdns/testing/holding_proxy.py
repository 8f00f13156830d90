"""A TCP proxy between PowerDNS and the backend that can hold back one backend answer.

It makes the race behind a stale cache reproducible: a lookup reads Redis before a write,
its answer is held while the write and its purge happen, then released, and PowerDNS
caches the old answer after the purge. Under load the same happens by chance, when
lookups queue in PowerDNS and in the backend. Importable without pytest.
"""

from __future__ import annotations

import socket
import threading


class HoldingProxy:
    """Forwards 127.0.0.1:port to `upstream_port`. Armed with `hold(marker)`, the first
    request containing `marker` is forwarded at once, and its response is kept until
    `release()`; `held` is set once that response (read after the backend's Redis read)
    has arrived."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.marker: bytes | None = None
        self.held = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self, marker: bytes) -> None:
        with self.lock:
            self.marker = marker
            self.held.clear()
            self.released.clear()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.closed = True
        self.released.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            marked = threading.Event()  # this connection carries the held request
            threading.Thread(target=self._requests, args=(client, server, marked), daemon=True).start()
            threading.Thread(target=self._responses, args=(server, client, marked), daemon=True).start()

    def _requests(self, client, server, marked) -> None:
        try:
            while data := client.recv(65536):
                with self.lock:
                    if self.marker is not None and self.marker in data:
                        self.marker = None
                        marked.set()
                server.sendall(data)
        except OSError:
            pass
        finally:
            _close(server)

    def _responses(self, server, client, marked) -> None:
        try:
            while data := server.recv(65536):
                if marked.is_set():  # PowerDNS sends one request at a time per connection
                    marked.clear()
                    self.held.set()
                    self.released.wait(30)
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)


def _close(sock) -> None:
    try:
        sock.close()
    except OSError:
        pass
