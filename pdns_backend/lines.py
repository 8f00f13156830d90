"""One connection of PowerDNS's unix-socket connector, without any I/O ("sans-IO").

`remote-connection-string=unix:path=/run/mountdns/backend.sock` makes PowerDNS send each
call as one line of JSON, `{"method": "lookup", "parameters": {...}}\\n`, and read one JSON
object back. Compared with the HTTP connector it spares PowerDNS, per lookup, building an
HTTP request, parsing an HTTP response and the 1 ms wait it makes before reusing an HTTP
connection (to see whether the server closed it); it spares the backend the HTTP parsing.

It has one weakness the HTTP connector has not: PowerDNS cannot tell that a unix
connection was closed until a write to it fails, and that call then fails (SERVFAIL for
one query per connection; the next call reconnects). So idle connections are never
closed here (no idle timeout); the socket's file permissions are what keeps strangers
out. Everything else the HTTP side enforces applies: a line over MAX_LINE bytes closes
the connection, a line must be complete within the request timeout of its first byte,
and a client that does not read its answers is closed.

Each line is answered through the same `Backend` as an HTTP request (the post_json shape:
`POST <url prefix>` with the line as body). A failed call (HTTP 400/500 on the HTTP side)
is answered with `log` and no `result`: PowerDNS then fails the query (SERVFAIL), where
`"result": false` would have meant "no records".
"""

from __future__ import annotations

import orjson

from pdns_backend.connection import ConnectionState
from pdns_backend.service import MAX_BODY

# A lookup line is about 250 bytes.
MAX_LINE = MAX_BODY
# The answer to a line over MAX_LINE (no `result`: PowerDNS fails the call), then the
# connection is closed.
TOO_LONG = b'{"log":["mountdns: request over %d bytes"]}\n' % MAX_LINE


class LineConnection(ConnectionState):
    """The JSON-lines side of one connection; the same interface as
    `pdns_backend.connection.Connection` (deferred mode), so the event loop serves both."""

    def __init__(self, url_prefix: str, now: float, report=None):
        super().__init__(now, report)
        self.target = url_prefix or "/"
        self.buffer = bytearray()

    def received(self, data: bytes, now: float):
        if self.closing:
            return
        if not self.buffer:
            self.started = now
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self.buffer[:end]).strip()
            del self.buffer[:end + 1]
            if line:
                self.waiting.append((("POST", self.target, line), None))
                self.served += 1
            if self.buffer:
                self.started = now
        self.partial = bool(self.buffer)
        if len(self.buffer) > MAX_LINE:
            self.buffer.clear()
            self.partial = False
            self.closing = True
            self.report("request line too long")
            if not self.waiting:
                self.out += TOO_LONG

    def answered(self, replies: list[tuple], now: float):
        for reply in replies:
            status, body = reply[0], reply[1]
            if status != 200:
                message = orjson.loads(body)
                message.pop("result", None)  # PowerDNS fails a call without one
                body = orjson.dumps(message)
            self.out += body
            self.out += b"\n"
        self.waiting = []
        self.last_active = now
        if self.closing:
            self.out += TOO_LONG

    def expired(self, now: float, request_timeout: float, idle_timeout: float) -> str | None:
        """Why to close the connection at `now`, or None; never for being idle (see the
        module's doc)."""
        return self._stalled(now, request_timeout)
