"""One client connection's HTTP/1.1 state, without any I/O ("sans-IO").

The worker reads whatever bytes a socket has, hands them to `Connection.received`, and
writes out whatever `Connection.out` holds; this module decides what the bytes mean. So a
client sending one byte every few seconds costs a few microseconds per byte instead of a
blocked worker, and everything about limits and deadlines is tested here with plain
bytes and an injected `now`.

Parsing is gunicorn_h1c's incremental parser (picohttpparser), which already bounds the
request line and each header and rejects ambiguous framing (Content-Length with
Transfer-Encoding, duplicate lengths, bad chunk sizes). On top of it:

- the whole head is bounded (431), the body is bounded (413, refused from its
  Content-Length before any of it is read), malformed framing is a 400; each of these
  closes the connection, and none echoes what the client sent;
- a request must be complete within `request_timeout` of its first byte (of the
  connection's opening for the first request): a whole-request deadline, which a
  client cannot extend by dripping bytes;
- pipelined requests are answered in order; their responses are written together.

With `defer`, complete requests are not answered as they are parsed but queued in
`waiting`, in order with any refusal; the event loop answers every ready connection's
requests of one round together (their lookups share one Redis round trip) and hands the
answers back through `answered`.
"""

from __future__ import annotations

from gunicorn_h1c import H1CProtocol, LimitRequestHeaders, LimitRequestLine

from pdns_backend.service import BODY_TOO_LARGE, HEAD_TOO_LARGE, MALFORMED, MAX_BODY

# A REST lookup's request line is at most ~800 bytes (253 octets, each percent-encoded
# as 3) and PowerDNS sends a handful of short headers: these bounds are generous for it
# and small enough that thousands of connections cost little memory.
MAX_REQUEST_LINE = 4096
MAX_HEADERS = 32
MAX_HEADER_LINE = 4096
MAX_HEAD = 8192
# Bytes of pipelined requests kept after a complete one (more arrive on the next read).
MAX_PIPELINED = 64 * 1024

_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
            413: b"Content Too Large", 431: b"Request Header Fields Too Large",
            500: b"Internal Server Error", 503: b"Service Unavailable"}


class _Refused(Exception):
    """The request broke a limit or its framing; carries the (status, body) to send."""

    def __init__(self, reply: tuple[int, bytes], problem: str):
        super().__init__(problem)
        self.reply = reply
        self.problem = problem


def render(status: int, body: bytes, keep_alive: bool, content_type: bytes = b"application/json") -> bytes:
    """A whole response (status line, headers, body) as one bytes object, for one write."""
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status, _REASONS.get(status, b"Error"), content_type, len(body),
        b"" if keep_alive else b"Connection: close\r\n", body)


class ConnectionState:
    """What the worker's event loop reads of any connection, HTTP (`Connection`) or
    PowerDNS's JSON lines (`pdns_backend.lines.LineConnection`): the bytes to write, the
    requests waiting for answers, and the times its deadlines are counted from."""

    def __init__(self, now: float, report=None):
        self.report = report or (lambda problem: None)
        # Deferred: ((method, target, body), extra) per request, or (None, response bytes)
        # for a refusal, in the order they must be written.
        self.waiting: list[tuple] = []
        self.out = bytearray()       # response bytes not yet written
        self.closing = False         # close once `out` is written
        self.opened = now
        self.started = now           # when the pending request's first byte arrived
        self.last_active = now       # when the last response was produced (or the opening)
        self.served = 0
        self.partial = False         # holds bytes of an incomplete request
        self.lingering_since = None  # set by the worker once a closing connection is drained
        self.lingered = 0

    @property
    def awaiting_request(self) -> bool:
        """True while the connection owes us a request: one is partly received, or none
        has come yet on a fresh connection. Such a connection is under the request deadline."""
        return self.partial or self.served == 0

    @property
    def idle(self) -> bool:
        """Nothing received and nothing to write: closing it now loses no request."""
        return not self.partial and not self.out and not self.closing and not self.waiting

    @property
    def requests(self) -> list[tuple[str, str, bytes]]:
        """The deferred requests awaiting answers, in order."""
        return [request for request, _ in self.waiting if request is not None]

    def sent(self, count: int, now: float):
        """`count` bytes of `out` were written: progress, as far as deadlines go."""
        del self.out[:count]
        if count:
            self.last_active = now

    def _stalled(self, now: float, request_timeout: float) -> str | None:
        """The client holds the connection without progress: a request not complete
        within the request timeout, or answers it does not read."""
        if self.awaiting_request and now - self.started > request_timeout:
            return "no complete request within the request timeout"
        if self.out and now - self.last_active > request_timeout:
            return "client not reading its responses"
        return None


class Connection(ConnectionState):
    """The HTTP side of one connection. `respond(method, target, body) -> (status, body)`
    answers a complete request; `report(problem)` is told why a connection is refused.
    With `defer`, requests wait in `waiting` until `answered` (see the module's doc)."""

    def __init__(self, respond, now: float, report=None, defer: bool = False):
        super().__init__(now, report)
        self.respond = respond
        self.defer = defer
        self._reset_request()
        self.parser = self._new_parser()

    def _new_parser(self) -> H1CProtocol:
        return H1CProtocol(on_headers_complete=self._on_headers, on_body=self._on_body,
                           limit_request_line=MAX_REQUEST_LINE, limit_request_fields=MAX_HEADERS,
                           limit_request_field_size=MAX_HEADER_LINE, limit_remaining=MAX_PIPELINED)

    def _reset_request(self):
        self.head_bytes = 0
        self.headers_done = False
        self.body = bytearray()

    # --- parser callbacks -------------------------------------------------------------

    def _on_headers(self):
        self.headers_done = True
        length = self.parser.content_length
        if length is not None and length > MAX_BODY:
            raise _Refused(BODY_TOO_LARGE, "request body too large")
        if self.parser.get_header(b"transfer-encoding") is not None and not self.parser.is_chunked:
            raise _Refused(MALFORMED, "malformed HTTP request")  # a body we cannot delimit

    def _on_body(self, chunk):
        self.body += chunk
        if len(self.body) > MAX_BODY:
            raise _Refused(BODY_TOO_LARGE, "request body too large")

    # --- what the worker calls ----------------------------------------------------------

    def answered(self, replies: list[tuple], now: float):
        """The answers to `requests`, in order: render them (and any refusal queued
        between them) into `out`."""
        replies = iter(replies)
        for request, extra in self.waiting:
            if request is None:
                self.out += extra
            else:
                self._render(next(replies), extra)
        self.waiting = []
        self.last_active = now

    def received(self, data: bytes, now: float):
        """Take bytes read from the socket; answers go to `out`."""
        if self.closing:
            return
        if not self.partial:
            self.partial = True
            if self.served:
                self.started = now
        self._feed(data)
        while not self.closing and self.parser.is_complete:
            self._answer(now)
            if self.closing:
                return
            tail = self.parser.remaining()
            self.parser.reset()
            self._reset_request()
            self.partial = bool(tail)
            if tail:
                self.started = now
                self._feed(tail)

    def expired(self, now: float, request_timeout: float, idle_timeout: float) -> str | None:
        """Why the connection should be closed at `now`, or None."""
        stalled = self._stalled(now, request_timeout)
        if stalled is not None:
            return stalled
        if self.served and self.idle and now - self.last_active > idle_timeout:
            return "idle"
        return None

    # --- internals ----------------------------------------------------------------------

    def _feed(self, data: bytes):
        try:
            self.parser.feed(data)
            if not self.headers_done:
                self.head_bytes += len(data)
                if self.head_bytes > MAX_HEAD:
                    raise _Refused(HEAD_TOO_LARGE, "request head too large")
        except _Refused as exc:
            self._refuse(exc.reply, exc.problem)
        except (LimitRequestLine, LimitRequestHeaders):
            self._refuse(HEAD_TOO_LARGE, "request head too large")
        except ValueError:  # every gunicorn_h1c parse error; never our 500
            self._refuse(MALFORMED, "malformed HTTP request")

    def _refuse(self, reply: tuple[int, bytes], problem: str):
        status, body = reply
        if self.waiting:  # after the answers still owed to earlier requests
            self.waiting.append((None, render(status, body, keep_alive=False)))
        else:
            self.out += render(status, body, keep_alive=False)
        self.closing = True
        self.partial = False
        self.report(problem)

    def _answer(self, now: float):
        parser = self.parser
        request = (parser.method.decode("latin-1"), parser.path.decode("latin-1"), bytes(self.body))
        keep_alive = bool(parser.should_keep_alive)
        if self.defer:
            self.waiting.append((request, keep_alive))
        else:
            self._render(self.respond(*request), keep_alive)
        self.served += 1
        self.last_active = now
        self.partial = False
        if not keep_alive:
            self.closing = True

    def _render(self, reply: tuple, keep_alive: bool):
        if len(reply) == 2:
            self.out += render(reply[0], reply[1], keep_alive)
        else:  # (status, body, content type): /metrics
            self.out += render(reply[0], reply[1], keep_alive, reply[2].encode("latin-1"))
