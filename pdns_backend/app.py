"""Flask application factory for the remote backend.

The handlers are thin: decode PowerDNS's request (pdns_backend.protocol), call the pure
method (pdns_backend.methods / lookup), encode JSON in one body with Content-Length.
Failures are never answered with an empty result: an empty lookup would become a wrong
NXDOMAIN and an empty getAllDomains makes PowerDNS refuse every query, so a Redis
failure is an HTTP 500, which PowerDNS turns into SERVFAIL while keeping its zone list.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import orjson
from flask import Flask, Response, request

from mountdns import redis_connect
from mountdns.keyspace import DEFAULT_PREFIX
from mountdns.redis_connect import RedisTarget
from mountdns.store import StoreError
from mountdns.store.redis_store import RedisStore
from pdns_backend import methods
from pdns_backend.protocol import BadRequest, Call, post_form_call, post_json_call, rest_call

log = logging.getLogger("mountdns.backend")

DEFAULTS = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "KEY_PREFIX": DEFAULT_PREFIX,
    "URL_PREFIX": "/dnsapi",
    # Shorter than PowerDNS's default 2 s connector timeout, so a hung Redis becomes our
    # own 500 (SERVFAIL, logged) rather than a dropped connection on the PowerDNS side.
    "REDIS_TIMEOUT": 0.5,
}

STORE = "mountdns.store"
RAW_ROUTE = "mountdns.raw_route"  # (method, raw URI) -> (status, body) | None, for the worker


def encode(result, log_lines: list[str] | None = None) -> bytes:
    body = {"result": result}
    if log_lines:
        body["log"] = log_lines
    return orjson.dumps(body)


def json_response(result, status: int = 200, log_lines: list[str] | None = None) -> Response:
    return Response(encode(result, log_lines), status=status, content_type="application/json")


def answer(store, decode, what: str) -> tuple[int, bytes]:
    """(HTTP status, JSON body) for one PowerDNS call; `decode` builds the Call."""
    try:
        call = decode()
        return 200, encode(methods.call(store, call.method, call.parameters))
    except BadRequest as exc:
        log.warning("bad request %s: %s", what[:200], exc)
        return 400, encode(False, [f"mountdns: {exc}"])
    except StoreError as exc:
        log.error("store unavailable: %s", exc)
        return 500, encode(False, [f"mountdns: {exc}"])
    except Exception as exc:  # noqa: BLE001 - never a stack trace on the wire; it goes to our log
        log.exception("unexpected error answering %s", what[:200])
        return 500, encode(False, [f"mountdns: internal error: {type(exc).__name__}"])


class LookupFastPath:
    """WSGI middleware answering REST `lookup` calls without Flask's request machinery.

    PowerDNS makes three lookups per query (more for a CNAME), so this one route is
    nearly all the traffic; routing, request and response objects cost more than the
    Redis round trip. Everything else goes to the Flask app.
    """

    STATUS = {200: "200 OK", 400: "400 BAD REQUEST", 500: "500 INTERNAL SERVER ERROR"}

    def __init__(self, wsgi_app, store, url_prefix: str):
        self.wsgi_app = wsgi_app
        self.store = store
        self.url_prefix = url_prefix
        self.lookup_prefix = url_prefix + "/lookup/"

    def raw(self, method: str, raw_uri: str) -> tuple[int, bytes] | None:
        """(status, body) when this is a REST lookup, else None. Also used directly by
        pdns_backend.worker, which skips building a WSGI environment for it."""
        if method != "GET" or not raw_uri.startswith(self.lookup_prefix):
            return None
        path, _, query = raw_uri[len(self.url_prefix):].partition("?")
        return answer(self.store, lambda: rest_call(path, query), raw_uri)

    def __call__(self, environ, start_response):
        hit = self.raw(environ.get("REQUEST_METHOD", ""), environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
        if hit is None:
            return self.wsgi_app(environ, start_response)
        status, body = hit
        start_response(self.STATUS[status], [("Content-Type", "application/json"),
                                             ("Content-Length", str(len(body)))])
        return [body]


def make_store(config) -> RedisStore:
    # REDIS_TARGET (mountdns.redis_connect) may name Sentinels; else REDIS_URL is used.
    target = config.get("REDIS_TARGET") or RedisTarget(url=config["REDIS_URL"])
    client = redis_connect.connect(target, timeout=float(config["REDIS_TIMEOUT"]), health_check_interval=30)
    return RedisStore(client, prefix=config["KEY_PREFIX"])


def raw_path() -> str:
    """The request path still percent-encoded: PowerDNS encodes names byte by byte and we
    must see broken encodings to reject them, which PATH_INFO has already decoded away."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw is None:
        raw = quote(request.environ.get("PATH_INFO", ""), safe="/")
    return raw.split("?", 1)[0]


def decode_call(url_prefix: str) -> Call:
    path = raw_path()
    rest = path[len(url_prefix):] if path.startswith(url_prefix) else path
    if request.method == "GET":
        return rest_call(rest, request.query_string.decode("latin-1"))
    body = request.get_data(cache=False)
    method_segment = rest.strip("/")
    if method_segment:
        return post_form_call(method_segment.split("/")[0], body)
    return post_json_call(body)


def create_app(config: dict | None = None, store=None) -> Flask:
    """Build the backend. `store` overrides the Redis store (tests use MemoryStore)."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("MOUNTDNS")
    if config:
        app.config.update(config)
    app.extensions[STORE] = store if store is not None else make_store(app.config)
    url_prefix = app.config["URL_PREFIX"].rstrip("/")

    def dispatch(**_):
        status, body = answer(app.extensions[STORE], lambda: decode_call(url_prefix),
                              f"{request.method} {request.path}")
        return Response(body, status=status, content_type="application/json")

    app.add_url_rule(url_prefix, "dnsapi", dispatch, methods=["GET", "POST"])
    app.add_url_rule(f"{url_prefix}/<path:rest>", "dnsapi_path", dispatch, methods=["GET", "POST"])

    @app.get("/healthz")
    def healthz():
        return json_response(True)

    @app.get("/readyz")
    def readyz():
        if app.extensions[STORE].ping():
            return json_response(True)
        return json_response(False, 503, ["mountdns: redis does not answer"])

    @app.errorhandler(Exception)
    def unexpected(exc):
        # Never a stack trace on the wire: PowerDNS logs the body; the trace goes to our log.
        if hasattr(exc, "code") and isinstance(getattr(exc, "code"), int) and exc.code < 500:
            return json_response(False, exc.code, [f"mountdns: {exc}"])
        log.exception("unexpected error on %s %s", request.method, request.path[:200])
        return json_response(False, 500, [f"mountdns: internal error: {type(exc).__name__}"])

    fast_path = LookupFastPath(app.wsgi_app, app.extensions[STORE], url_prefix)
    app.wsgi_app = fast_path
    app.extensions[RAW_ROUTE] = fast_path.raw
    return app
