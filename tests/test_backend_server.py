"""The real mountdns-backend process (gunicorn with pdns_backend.worker.EventLoopWorker): keep-alive
connections carrying many requests, the raw lookup route and the WSGI routes side by side."""

import http.client
import json
import shutil

import pytest

from mountdns.store.redis_store import RedisStore
from tests.conftest import load
from mountdns.testing.pdns_requests import lookup_params, pdns_quote, request_args
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.hostile import RawClient, rest_lookup_path
from mountdns.testing.servers import BackendServer, eventually, workdir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backend(redis_server):
    directory = workdir("mountdns-backend-")
    # Two event loops in one process (two connections each), and a small connection limit.
    server = BackendServer(directory, redis_server.url, workers=1, threads=2, max_connections=4).start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def connection(backend, redis_client):
    load(RedisStore(redis_client), SEED_STATE)
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    yield conn
    conn.close()


def send(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, json.loads(response.read()), response


def test_one_connection_carries_lookups_and_other_methods(connection):
    lookup = "/dnsapi/lookup/" + pdns_quote("Container_D_0.domain.foo.bar.") + "/ANY"
    for _ in range(3):
        status, body, _ = send(connection, "GET", lookup)
        assert status == 200 and body["result"][0]["content"] == "container_b_0.domain.foo.bar."
        status, body, _ = send(connection, "GET", "/dnsapi/getAllDomains?includeDisabled=true")
        assert status == 200 and body["result"][0]["zone"] == "domain.foo.bar."
        args = request_args("post_json", "lookup", lookup_params("container_a_0.domain.foo.bar."))
        status, body, _ = send(connection, "POST", args["path"], args["data"], {"Content-Type": args["content_type"]})
        assert status == 200 and body["result"][0]["content"] == "1.2.3.4"
        status, body, _ = send(connection, "GET", "/healthz")
        assert status == 200 and body == {"result": True}


def test_raw_route_answers_bad_requests_with_400_and_keeps_the_connection(connection):
    status, body, response = send(connection, "GET", "/dnsapi/lookup/a%zz/ANY")
    assert status == 400 and "broken percent-encoding" in body["log"][0]
    assert response.getheader("Content-Length") == str(len(json.dumps(body, separators=(",", ":"))))
    status, body, _ = send(connection, "GET", "/dnsapi/lookup/" + pdns_quote("container_a_1.domain.foo.bar.") + "/A")
    assert status == 200 and body["result"][0]["content"] == "2.3.4.5"


def test_connection_close_is_honoured(connection):
    _, _, response = send(connection, "GET", "/dnsapi/lookup/" + pdns_quote("domain.foo.bar.") + "/SOA",
                          headers={"Connection": "close"})
    assert response.will_close
    # The server closed its side: http.client reconnects for the next request.
    status, body, _ = send(connection, "GET", "/dnsapi/lookup/" + pdns_quote("domain.foo.bar.") + "/NS")
    assert status == 200 and body["result"][0]["content"] == "ns1.domain.foo.bar."


def test_at_the_limit_the_longest_idle_connections_make_room(backend, redis_client):
    load(RedisStore(redis_client), SEED_STATE)
    path = rest_lookup_path("container_a_0.domain.foo.bar.")
    clients = []
    try:
        # Twice as many connections as the worker may hold, each used once, in turn:
        # every newcomer is served, and the worker never holds more than its limit.
        for _ in range(2 * backend.max_connections):
            client = RawClient(backend.port)
            clients.append(client)
            status, _, body = client.get(path)
            assert status == 200 and json.loads(body)["result"][0]["content"] == "1.2.3.4"
        assert eventually(lambda: sum(not c.closed_by_peer() for c in clients) <= backend.max_connections)
        # The newest connection is still open and serving.
        assert clients[-1].get(path)[0] == 200
        # Room was made from the oldest: the two event loops each hold part of the
        # connections, so which old one went first depends on where it was accepted.
        assert any(c.closed_by_peer() for c in clients[:backend.max_connections])
    finally:
        for client in clients:
            client.close()
