"""Flask application factory for the remote backend.

The app is a shell around `pdns_backend.service.Backend`: one catch-all route hands
(method, raw target, body) to `Backend.respond`, which decodes every connector mode,
calls the pure lookup and maps every error. The gunicorn worker calls the same
`Backend.respond` directly (found in `app.extensions[BACKEND]`), so the Flask test client
and production take one path.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from mountdns import redis_connect
from mountdns.keyspace import DEFAULT_PREFIX
from mountdns.redis_connect import RedisTarget
from pdns_backend.metrics import BackendMetrics
from pdns_backend.redis_batch import BatchingRedisStore
from pdns_backend.service import BODY_TOO_LARGE, MAX_BODY, Backend

DEFAULTS = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "KEY_PREFIX": DEFAULT_PREFIX,
    "URL_PREFIX": "/dnsapi",
    # Shorter than PowerDNS's default 2 s connector timeout, so a hung Redis becomes our
    # own 500 (SERVFAIL, logged) rather than a dropped connection on the PowerDNS side.
    "REDIS_TIMEOUT": 0.5,
    # /metrics: "process" (this process's own registry), a directory (prometheus-client's
    # multiprocess mode, as mountdns-backend sets up for its workers), or None (not served).
    "METRICS": "process",
    # Seconds a zone read from Redis answers apex lookups (PowerDNS's SOA probes) from
    # memory; 0: every apex lookup reads Redis (pdns_backend.zone_table).
    "ZONE_TABLE_MAX_AGE": 0.0,
}

STORE = "mountdns.store"
BACKEND = "mountdns.backend"


def make_store(config) -> BatchingRedisStore:
    # REDIS_TARGET (mountdns.redis_connect) may name Sentinels; else REDIS_URL is used.
    target = config.get("REDIS_TARGET") or RedisTarget(url=config["REDIS_URL"])
    client = redis_connect.connect(target, timeout=float(config["REDIS_TIMEOUT"]), health_check_interval=30)
    return BatchingRedisStore(client, prefix=config["KEY_PREFIX"])


def raw_target() -> str:
    """The request target still percent-encoded: PowerDNS encodes names byte by byte and
    we must see broken encodings to reject them, which PATH_INFO has already decoded away."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw is None:
        raw = quote(request.environ.get("PATH_INFO", ""), safe="/")
        query = request.environ.get("QUERY_STRING")
        raw += f"?{query}" if query else ""
    return raw


def create_app(config: dict | None = None, store=None) -> Flask:
    """Build the backend. `store` overrides the Redis store (tests use MemoryStore)."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("MOUNTDNS")
    if config:
        app.config.update(config)
    app.extensions[STORE] = store if store is not None else make_store(app.config)
    metrics = app.config["METRICS"]
    backend = Backend(app.extensions[STORE], app.config["URL_PREFIX"],
                      metrics=None if metrics is None else BackendMetrics(None if metrics == "process" else metrics),
                      zone_table_max_age=float(app.config["ZONE_TABLE_MAX_AGE"]))
    app.extensions[BACKEND] = backend

    # Werkzeug then refuses longer bodies, chunked ones included, before reading them.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    def everything(**_):
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            (status, body), content_type = BODY_TOO_LARGE, ()
        else:
            status, body, *content_type = backend.respond(request.method, raw_target(), body)
        return Response(body, status=status, content_type=content_type[0] if content_type else "application/json")

    every_method = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    app.add_url_rule("/", "everything", everything, methods=every_method)
    app.add_url_rule("/<path:_>", "everything", everything, methods=every_method)
    return app
