"""One connection's HTTP handling (pdns_backend.connection) with plain bytes and an
injected clock: incremental parsing, limits, framing errors, pipelining, deadlines."""

import pytest

from pdns_backend.connection import MAX_HEAD, MAX_REQUEST_LINE, Connection
from pdns_backend.service import MAX_BODY

LOOKUP = b"GET /dnsapi/lookup/a%2eb%2e/ANY HTTP/1.1\r\nHost: backend\r\nAccept: */*\r\n\r\n"


class Recorder:
    """A `respond` that records what it was asked and answers 200 with a fixed body."""

    def __init__(self):
        self.calls = []
        self.problems = []

    def respond(self, method, target, body):
        self.calls.append((method, target, body))
        return 200, b'{"result":true}'

    def connection(self, now=0.0):
        return Connection(self.respond, now, self.problems.append)


def responses(out: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in `out`."""
    found = []
    while out:
        head, _, rest = out.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
        found.append((int(lines[0].split()[1]), rest[:length]))
        out = rest[length:]
    return found


@pytest.fixture
def rec():
    return Recorder()


def test_a_request_dripped_one_byte_at_a_time_is_answered_once_whole(rec):
    conn = rec.connection()
    for i, byte in enumerate(LOOKUP[:-1]):
        conn.received(bytes([byte]), now=i * 0.001)
        assert not conn.out and not rec.calls
    conn.received(LOOKUP[-1:], now=1.0)
    assert rec.calls == [("GET", "/dnsapi/lookup/a%2eb%2e/ANY", b"")]
    assert responses(bytes(conn.out)) == [(200, b'{"result":true}')]
    assert not conn.closing and conn.served == 1


def test_the_request_deadline_runs_from_the_first_byte_not_the_last(rec):
    conn = rec.connection(now=0.0)
    conn.received(LOOKUP[:5], now=0.0)
    conn.sent(0, now=0.0)
    for t in (1.0, 2.0, 3.0, 4.0, 4.9):
        conn.received(LOOKUP[5:6], now=t)  # a byte every second does not extend it
    assert conn.expired(4.9, request_timeout=5.0, idle_timeout=300.0) is None
    assert conn.expired(5.1, request_timeout=5.0, idle_timeout=300.0) == (
        "no complete request within the request timeout")


def test_a_fresh_connection_that_sends_nothing_is_under_the_request_deadline(rec):
    conn = rec.connection(now=10.0)
    assert conn.awaiting_request and conn.idle
    assert conn.expired(14.0, 5.0, 300.0) is None
    assert conn.expired(15.5, 5.0, 300.0) == "no complete request within the request timeout"


def test_a_served_keepalive_connection_expires_only_after_the_idle_timeout(rec):
    conn = rec.connection(now=0.0)
    conn.received(LOOKUP, now=1.0)
    conn.sent(len(conn.out), now=1.0)
    assert conn.idle and not conn.awaiting_request
    assert conn.expired(200.0, 5.0, 300.0) is None
    assert conn.expired(302.0, 5.0, 300.0) == "idle"
    # The next request's deadline starts at its own first byte.
    conn.received(LOOKUP[:3], now=250.0)
    assert conn.expired(254.0, 5.0, 300.0) is None
    assert conn.expired(256.0, 5.0, 300.0) == "no complete request within the request timeout"


def test_pipelined_requests_are_answered_in_order_in_one_batch(rec):
    post = (b"POST /dnsapi HTTP/1.1\r\nContent-Type: text/javascript\r\nContent-Length: 17\r\n\r\n"
            b'{"method":"init"}')
    conn = rec.connection()
    conn.received(LOOKUP + post + LOOKUP, now=0.0)
    assert [c[0] for c in rec.calls] == ["GET", "POST", "GET"]
    assert rec.calls[1][2] == b'{"method":"init"}'
    assert len(responses(bytes(conn.out))) == 3 and not conn.closing


def test_a_pipelined_request_split_across_reads_is_kept(rec):
    conn = rec.connection()
    conn.received(LOOKUP + LOOKUP[:10], now=0.0)
    assert len(rec.calls) == 1 and conn.partial
    conn.received(LOOKUP[10:], now=0.1)
    assert len(rec.calls) == 2 and not conn.partial


def test_connection_close_and_http_1_0_close_after_the_response(rec):
    conn = rec.connection()
    conn.received(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", now=0.0)
    assert conn.closing and b"Connection: close\r\n" in conn.out
    conn = rec.connection()
    conn.received(b"GET /healthz HTTP/1.0\r\n\r\n", now=0.0)
    assert conn.closing


def test_a_chunked_body_is_decoded(rec):
    conn = rec.connection()
    conn.received(b"POST /dnsapi HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\n{\"met\r\n3\r\nhod\r\n0\r\n\r\n", now=0.0)
    assert rec.calls[0][2] == b'{"method'


SECRET = b"s3cret-token"


@pytest.mark.parametrize("request_bytes, status", [
    # request line over the limit
    (b"GET /" + SECRET * (MAX_REQUEST_LINE // len(SECRET)) + b" HTTP/1.1\r\n\r\n", 431),
    # too many headers
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, SECRET) for i in range(40)) + b"\r\n", 431),
    # a head over the total limit, a few bytes at a time (no single line too long)
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, SECRET * 200) for i in range(4)), 431),
    # a body over the limit, refused from its Content-Length
    (b"POST /dnsapi HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1) + SECRET, 413),
    # a chunked body over the limit
    (b"POST /dnsapi HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"".join(b"%x\r\n%s\r\n" % (len(SECRET * 100), SECRET * 100) for _ in range(10)), 413),
    # broken chunking
    (b"POST /dnsapi HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + SECRET + b"\r\n0\r\n\r\n", 400),
    # a transfer coding we cannot delimit
    (b"POST /dnsapi HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n" + SECRET, 400),
    # ambiguous framing
    (b"POST /dnsapi HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + SECRET, 400),
    (b"POST /dnsapi HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n" + SECRET, 400),
    # not HTTP at all, and a bare LF
    (b"\x16\x03\x01\x02\x00\x01" + SECRET + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\n" + SECRET + b": x\n\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 400),
])
def test_bad_requests_get_a_short_error_that_echoes_nothing_then_close(rec, request_bytes, status):
    conn = rec.connection()
    for start in range(0, len(request_bytes), 1000):
        conn.received(request_bytes[start:start + 1000], now=0.0)
    assert not rec.calls
    [(got, body)] = responses(bytes(conn.out))
    assert got == status and SECRET not in conn.out and len(body) < 100
    assert conn.closing and rec.problems
    assert b"Connection: close" in conn.out


def test_nothing_is_read_after_a_refusal(rec):
    conn = rec.connection()
    conn.received(b"GET / HTTP/2.0\r\n\r\n", now=0.0)
    out = bytes(conn.out)
    conn.received(LOOKUP, now=0.1)
    assert bytes(conn.out) == out and not rec.calls


def test_the_head_limit_is_whole_head_bytes(rec):
    conn = rec.connection()
    header = b"X-A: " + b"a" * 1000 + b"\r\n"
    conn.received(b"GET / HTTP/1.1\r\n", now=0.0)
    for _ in range(MAX_HEAD // len(header) - 1):
        conn.received(header, now=0.0)
    assert not conn.out
    conn.received(b"\r\n", now=0.0)
    assert responses(bytes(conn.out))[0][0] == 200
