"""The worker's event loop (pdns_backend.worker.EventLoop) driven step by step with real
sockets and an injected clock: eviction order at the limit, not accepting when every
connection is mid-request, deadlines, and not reading from a client that does not read."""

import logging
import socket

import pytest

from pdns_backend.loglimit import LogLimiter
from pdns_backend.worker import EventLoop

REQUEST = b"GET /dnsapi/lookup/a%2eb%2e/ANY HTTP/1.1\r\n\r\n"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def respond(method, target, body):
    return 200, b'{"result":[' + b'{"qtype":"A","content":"1.2.3.4"},' * 20 + b'true]}'


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def make_loop(clock, listener):
    loops = []

    def make(limit=4, request_timeout=5.0, idle_timeout=300.0):
        loop = EventLoop(respond, LogLimiter(logging.getLogger("test.worker"), clock=clock), [listener], limit,
                         request_timeout, idle_timeout, clock=clock)
        loop.listen(True)
        loops.append(loop)
        return loop
    yield make
    for loop in loops:
        for sock in list(loop.connections):
            loop.close(sock)
        loop.selector.close()


def connect(listener) -> socket.socket:
    client = socket.create_connection(listener.getsockname(), timeout=5)
    return client


def spin(loop, until, steps=200):
    """Run loop steps until `until()` is true (bounded)."""
    for _ in range(steps):
        if until():
            return True
        loop.step(0.01)
    return until()


def served_client(loop, listener, clock):
    """A client that has completed one request and read its answer."""
    client = connect(listener)
    assert spin(loop, lambda: len(loop.connections) and any(c.opened == clock.now and not c.served
                                                           for c in loop.connections.values()))
    return ask(loop, client)


def ask(loop, client):
    """One request and its answer on `client`, stepping the loop meanwhile."""
    client.sendall(REQUEST)
    data = b""
    for _ in range(500):
        if b"true]}" in data:
            return client
        loop.step(0.01)
        try:
            data += client.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
    raise AssertionError("no answer")


def closed(client) -> bool:
    client.setblocking(False)
    try:
        while True:
            data = client.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        client.settimeout(5)


def test_at_the_limit_never_served_connections_go_first_then_the_least_recently_active(make_loop, listener, clock):
    loop = make_loop(limit=3)
    old_served = served_client(loop, listener, clock)
    clock.now += 1
    stranger = connect(listener)
    assert spin(loop, lambda: len(loop.connections) == 2)
    clock.now += 1
    recent_served = served_client(loop, listener, clock)
    clock.now += 1
    newcomer = connect(listener)
    assert spin(loop, lambda: closed(stranger))
    assert len(loop.connections) == 3 and not closed(old_served) and not closed(recent_served)
    clock.now += 1
    ask(loop, newcomer)  # now every connection has been served: the least recently active goes
    clock.now += 1
    another = connect(listener)
    assert spin(loop, lambda: closed(old_served))
    assert not closed(recent_served) and not closed(newcomer) and len(loop.connections) == 3
    for sock in (old_served, stranger, recent_served, newcomer, another):
        sock.close()


def test_with_every_connection_mid_request_it_stops_accepting_until_one_closes(make_loop, listener, clock):
    loop = make_loop(limit=2, request_timeout=5.0)
    dripping = [connect(listener) for _ in range(2)]
    assert spin(loop, lambda: len(loop.connections) == 2)
    for client in dripping:
        client.sendall(REQUEST[:10])
    assert spin(loop, lambda: all(c.partial for c in loop.connections.values()))
    waiting = connect(listener)  # completes in the kernel's backlog
    assert spin(loop, lambda: not loop.listening)
    assert len(loop.connections) == 2
    clock.now += 6  # the drippers' whole-request deadline passes
    loop.sweep(clock.now)
    assert all(closed(c) for c in dripping)
    assert loop.listening and spin(loop, lambda: len(loop.connections) == 1)
    waiting.sendall(REQUEST)
    waiting.settimeout(5)
    assert spin(loop, lambda: not closed(waiting) and loop.connections
                and next(iter(loop.connections.values())).served == 1)
    for sock in dripping + [waiting]:
        sock.close()


def test_a_fresh_connection_that_sends_nothing_is_closed_at_the_request_deadline(make_loop, listener, clock):
    loop = make_loop(request_timeout=5.0)
    silent = connect(listener)
    assert spin(loop, lambda: len(loop.connections) == 1)
    clock.now += 4
    loop.sweep(clock.now)
    assert not closed(silent)
    clock.now += 2
    loop.sweep(clock.now)
    assert closed(silent) and not loop.connections
    silent.close()


def test_idle_keepalive_connections_close_after_the_idle_timeout(make_loop, listener, clock):
    loop = make_loop(request_timeout=5.0, idle_timeout=60.0)
    client = served_client(loop, listener, clock)
    clock.now += 59
    loop.sweep(clock.now)
    assert not closed(client)
    clock.now += 2
    loop.sweep(clock.now)
    assert closed(client)
    client.close()


def test_a_client_that_does_not_read_is_not_read_from_and_is_dropped(make_loop, listener, clock):
    loop = make_loop(request_timeout=5.0)
    client = connect(listener)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert spin(loop, lambda: len(loop.connections) == 1)
    [server_side] = loop.connections
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    [conn] = loop.connections.values()
    client.setblocking(False)
    sent = 0
    for _ in range(2000):  # bounded: a few MB at most
        try:
            sent += client.send(REQUEST * 100)
        except BlockingIOError:
            pass
        loop.step(0)
        if conn.out:
            break
    assert conn.out, "the server's send buffer never filled"
    answered = conn.served
    for _ in range(50):
        loop.step(0)
    assert conn.served == answered  # nothing more is read while answers wait
    clock.now += 6
    loop.sweep(clock.now)
    assert not loop.connections
    client.close()


def test_a_refused_client_still_sending_gets_its_answer_before_the_close(make_loop, listener, clock):
    loop = make_loop()
    client = connect(listener)
    assert spin(loop, lambda: len(loop.connections) == 1)
    client.setblocking(False)
    client.send(b"POST /dnsapi HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n")
    answer = b""
    for _ in range(300):  # keep sending body bytes while the server refuses
        try:
            client.send(b"x" * 4096)
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass
        loop.step(0.005)
        try:
            answer += client.recv(65536)
        except BlockingIOError:
            pass
        if b"\r\n\r\n" in answer and answer.endswith(b"}"):
            break
    assert answer.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in answer
    [conn] = loop.connections.values()
    assert conn.lingering_since is not None
    clock.now += 2  # the drain is bounded in time
    loop.sweep(clock.now)
    assert not loop.connections
    client.close()


def test_requests_ready_in_one_round_are_answered_in_one_call_in_order(clock, listener):
    rounds = []

    def respond_many(requests):
        rounds.append([target for _, target, _ in requests])
        return [(200, b'{"result":"%s"}' % target.encode()) for _, target, _ in requests]

    loop = EventLoop(respond, LogLimiter(logging.getLogger("test.worker"), clock=clock), [listener], 8,
                     5.0, 300.0, clock=clock, respond_many=respond_many)
    loop.listen(True)
    try:
        clients = [connect(listener) for _ in range(3)]
        assert spin(loop, lambda: len(loop.connections) == 3)
        for i, client in enumerate(clients):
            # the last client pipelines two requests
            client.sendall(b"".join(b"GET /r%d HTTP/1.1\r\n\r\n" % (i * 10 + k) for k in range(1 + (i == 2))))
        # Over loopback, sendall returns once the bytes are in the server's receive queue:
        # every socket is ready for the next round.
        loop.step(0.5)
        assert sorted(rounds[0]) == ["/r0", "/r10", "/r20", "/r21"] and len(rounds) == 1
        answers = []
        for client in clients:
            data = b""
            while data.count(b"result") < (2 if client is clients[2] else 1):
                data += client.recv(65536)
            answers.append(data)
        assert b'"/r0"' in answers[0] and b'"/r10"' in answers[1]
        assert answers[2].index(b'"/r20"') < answers[2].index(b'"/r21"')
    finally:
        for sock in list(loop.connections):
            loop.close(sock)
        loop.selector.close()
