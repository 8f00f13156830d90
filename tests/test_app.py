"""The HTTP backend through Flask's test client: every connector mode, every method,
bad requests and store failures."""

import fakeredis
import pytest
import redis

from mountdns.plan import Changes
from mountdns.store.redis_store import RedisStore
from mountdns.store.memory_store import MemoryStore
from pdns_backend.app import create_app
from tests.conftest import load
from mountdns.testing.pdns_requests import MODES, lookup_params, request_args
from mountdns.testing.seed import SEED_STATE, SEED_ZONE


@pytest.fixture(params=["memory", "fakeredis"])
def app(request):
    store = MemoryStore() if request.param == "memory" else RedisStore(fakeredis.FakeRedis())
    load(store, SEED_STATE)
    return create_app(store=store)


@pytest.fixture
def client(app):
    return app.test_client()


def call(client, mode, method, params):
    response = client.open(**request_args(mode, method, params))
    return response.status_code, response.get_json()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("qname, qtype, expected", [
    ("Container_A_0.domain.foo.bar.", "ANY", [("A", "1.2.3.4")]),
    ("container_a_0.DOMAIN.foo.bar.", "A", [("A", "1.2.3.4")]),
    ("Container_D_0.domain.foo.bar.", "ANY", [("CNAME", "container_b_0.domain.foo.bar.")]),
    ("container_a_0.domain.foo.bar.", "AAAA", []),
    ("nothere.domain.foo.bar.", "ANY", []),
    ("*.container_a_0.domain.foo.bar.", "ANY", []),
])
def test_lookup_answers_the_same_in_every_connector_mode(client, mode, qname, qtype, expected):
    status, body = call(client, mode, "lookup", lookup_params(qname, qtype))
    assert status == 200
    if not expected:
        assert body == {"result": False}
    else:
        assert [(r["qtype"], r["content"]) for r in body["result"]] == expected
        assert all(r["qname"] == qname and r["ttl"] == 30 and r["domain_id"] == SEED_ZONE.id
                   for r in body["result"])


@pytest.mark.parametrize("mode", MODES)
def test_get_all_domains_and_domain_info_in_every_mode(client, mode):
    status, body = call(client, mode, "getAllDomains", {"include_disabled": True})
    assert status == 200 and [d["zone"] for d in body["result"]] == ["domain.foo.bar."]
    status, info = call(client, mode, "getDomainInfo", {"name": "domain.foo.bar."})
    assert status == 200 and info["result"]["id"] == SEED_ZONE.id and info["result"]["serial"] > 0
    status, missing = call(client, mode, "getDomainInfo", {"name": "example.org."})
    assert status == 200 and missing == {"result": False}


@pytest.mark.parametrize("mode", MODES)
def test_metadata_methods_answer_empty(client, mode):
    assert call(client, mode, "getAllDomainMetadata", {"name": "domain.foo.bar."}) == (200, {"result": {}})
    assert call(client, mode, "getDomainMetadata", {"name": "domain.foo.bar.", "kind": "PRESIGNED"}) == (
        200, {"result": []})


@pytest.mark.parametrize("mode", MODES)
def test_list_returns_the_whole_zone(client, mode):
    status, body = call(client, mode, "list", {"zonename": "domain.foo.bar.", "domain_id": SEED_ZONE.id})
    assert status == 200
    assert [r["qtype"] for r in body["result"]].count("CNAME") == 4
    assert body["result"][0]["qtype"] == "SOA"


@pytest.mark.parametrize("mode", MODES)
def test_unimplemented_method_is_false_not_an_error(client, mode):
    assert call(client, mode, "getBeforeAndAfterNamesAbsolute", {"id": 1, "qname": "x"}) == (
        200, {"result": False})


@pytest.mark.parametrize("path, reason", [
    ("/dnsapi/lookup/container%zz%2edomain/ANY", "broken percent-encoding"),
    ("/dnsapi/lookup/" + "a" * 64 + ".domain.foo.bar/ANY", "label longer than 63"),
    ("/dnsapi/lookup/" + ".".join(["abcdefghi"] * 26) + "/ANY", "longer than 253"),
    ("/dnsapi/lookup/a..b/ANY", "empty label"),
    ("/dnsapi/lookup/container%5fa%5f0%2edomain%2efoo%2ebar", "missing parameter 'qtype'"),
])
def test_bad_rest_requests_get_400_with_a_reason(client, path, reason):
    response = client.get(path)
    assert response.status_code == 400
    body = response.get_json()
    assert body["result"] is False and reason in body["log"][0]


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"parameters": {}}', "no method name"),
    (b'{"method": "lookup", "parameters": []}', "parameters is not a JSON object"),
    (b'{"method": "lookup", "parameters": {"qtype": "A"}}', "missing parameter 'qname'"),
])
def test_bad_post_json_requests_get_400_with_a_reason(client, body, reason):
    response = client.post("/dnsapi", data=body, content_type="text/javascript; charset=utf-8")
    assert response.status_code == 400
    assert reason in response.get_json()["log"][0]


def test_bad_post_form_parameters_get_400(client):
    response = client.post("/dnsapi/lookup", data="parameters=%7Bbroken",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "not JSON" in response.get_json()["log"][0]


def test_health_and_readiness(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def unreachable_redis_app():
    # A port nothing listens on: every Redis call fails at once.
    return create_app({"REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_TIMEOUT": 0.2})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method, params", [
    ("lookup", lookup_params("container_a_0.domain.foo.bar.")),
    ("getAllDomains", {"include_disabled": True}),
    ("getDomainInfo", {"name": "domain.foo.bar."}),
    ("list", {"zonename": "domain.foo.bar.", "domain_id": 1}),
])
def test_redis_unreachable_is_a_500_never_an_empty_answer(unreachable_redis_app, mode, method, params):
    response = unreachable_redis_app.test_client().open(**request_args(mode, method, params))
    assert response.status_code == 500
    # What failed, never where the store is.
    assert response.get_json() == {"result": False, "log": ["mountdns: store unavailable"]}


def test_readiness_fails_when_redis_is_unreachable(unreachable_redis_app):
    assert unreachable_redis_app.test_client().get("/readyz").status_code == 503
    assert unreachable_redis_app.test_client().get("/healthz").status_code == 200


def test_config_comes_from_prefixed_environment(monkeypatch):
    monkeypatch.setenv("MOUNTDNS_KEY_PREFIX", "other:")
    app = create_app({"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert app.extensions["mountdns.store"].keys.prefix == "other:"
    assert isinstance(app.extensions["mountdns.store"].redis, redis.Redis)


class BrokenStore:
    """A store with a bug: anything but a clean StoreError."""

    def resolve(self, qname):
        raise KeyError("a bug")

    def ping(self):
        return True


@pytest.mark.parametrize("mode", MODES)
def test_an_unexpected_error_is_a_500_with_a_log_line_not_a_stack_trace(mode):
    client = create_app(store=BrokenStore()).test_client()
    response = client.open(**request_args(mode, "lookup", lookup_params("container_a_0.domain.foo.bar.")))
    assert response.status_code == 500
    assert response.get_json() == {"result": False, "log": ["mountdns: internal error: KeyError"]}


@pytest.mark.parametrize("mode", MODES)
def test_only_ascii_letters_fold_so_a_kelvin_sign_finds_nothing(mode):
    # Python's str.lower() turns U+212A KELVIN SIGN into 'k': the backend must not, or a
    # query spelled with it would find kelvin.domain.foo.bar's record.
    store = MemoryStore()
    load(store, SEED_STATE)
    store.apply(Changes(parents_put={"kelvin.domain.foo.bar": "node-0"}))
    client = create_app(store=store).test_client()

    assert call(client, mode, "lookup", lookup_params("\u212aelvin.domain.foo.bar.", "ANY")) == (
        200, {"result": False})
    status, body = call(client, mode, "lookup", lookup_params("KELVIN.domain.foo.bar.", "ANY"))
    assert status == 200 and [(r["qtype"], r["content"]) for r in body["result"]] == [("A", "1.2.3.4")]


def test_a_store_outage_logs_one_line_per_interval_with_a_count(unreachable_redis_app, caplog):
    client = unreachable_redis_app.test_client()
    path = request_args("rest", "lookup", lookup_params("container_a_0.domain.foo.bar."))["path"]
    with caplog.at_level("WARNING", logger="mountdns.backend"):
        for _ in range(20):
            assert client.get(path).status_code == 500
    lines = [r for r in caplog.records if "store unavailable" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "ERROR"


def test_paths_outside_the_api_are_404_and_other_methods_405(client):
    response = client.get("/elsewhere")
    assert response.status_code == 404 and response.get_json()["result"] is False
    response = client.put("/dnsapi/lookup/x/A", data=b"x")
    assert response.status_code == 405 and response.get_json()["result"] is False


def test_a_body_over_the_limit_is_413_and_not_echoed(client):
    secret = b"parameters=" + b"s3cret" * 5000
    response = client.post("/dnsapi/lookup", data=secret, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert b"s3cret" not in response.data and len(response.data) < 200


def test_a_broken_form_body_is_400_and_not_echoed(client):
    response = client.post("/dnsapi/lookup", data=b"parameters=1&&s3cret&=x",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and b"s3cret" not in response.data
