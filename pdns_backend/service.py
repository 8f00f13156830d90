"""The one path from an HTTP request to the pure lookup, and the one error mapping.

Both ways in end here: the gunicorn worker (pdns_backend.worker) parses requests itself
and calls `Backend.respond` directly; the Flask app (pdns_backend.app, used by tests and
any other WSGI server) calls the same method from a catch-all route. Either way a request
is (method, raw target, body) and the answer is (status, JSON body), so every connector
mode and every server gives the same answers and the same errors.

Failures are never answered with an empty result: an empty lookup would become a wrong
NXDOMAIN and an empty getAllDomains makes PowerDNS refuse every query, so a store failure
is an HTTP 500, which PowerDNS turns into SERVFAIL while keeping its zone list. Error
bodies say what kind of failure it was, never where the store is or what the client sent
beyond a short excerpt of a bad name; the details go to the log, rate-limited.
"""

from __future__ import annotations

import logging
from time import perf_counter

import orjson

from mountdns.settings import mask_secrets
from mountdns.store import StoreError
from pdns_backend import methods
from pdns_backend.loglimit import LogLimiter
from pdns_backend.metrics import ANSWERED, BAD_REQUEST, CONTENT_TYPE, EMPTY, STORE_ERROR
from pdns_backend.protocol import BadRequest, Call, name_parameter, post_form_call, post_json_call, rest_call
from pdns_backend.zone_table import ZoneTable

log = logging.getLogger("mountdns.backend")

# Far above any PowerDNS request (a post_json lookup is about 200 bytes) and far below
# what would cost memory; larger bodies are refused without being read (413).
MAX_BODY = 8 * 1024


def encode(result, log_lines: list[str] | None = None) -> bytes:
    body = {"result": result}
    if log_lines:
        body["log"] = log_lines
    return orjson.dumps(body)


def failure(status: int, reason: str) -> tuple[int, bytes]:
    """An error answer: `{"result": false, "log": ["mountdns: <reason>"]}`."""
    return status, encode(False, [f"mountdns: {reason}"])


# Answers to requests that never reach a method; fixed texts, nothing the client sent.
NOT_FOUND = failure(404, "no such path")
METHOD_NOT_ALLOWED = failure(405, "only GET and POST are served")
BODY_TOO_LARGE = failure(413, f"request body over {MAX_BODY} bytes")
HEAD_TOO_LARGE = failure(431, "request line or headers too large")
MALFORMED = failure(400, "malformed HTTP request")
STORE_UNAVAILABLE = failure(500, "store unavailable")


class StoreView:
    """The store as the methods see it for one request or one event-loop round: apex
    lookups from the zone table while it is fresh, names already resolved this round
    from `resolved`, everything else from the store (whose replies renew the table)."""

    def __init__(self, store, table: ZoneTable, resolved: dict | None = None, tally=None):
        self.store = store
        self.table = table
        self.resolved = resolved or {}
        self.tally = tally  # pdns_backend.metrics.LookupTally, or None

    def resolve(self, qname: str):
        found = self.resolved.get(qname)
        if found is not None:
            if isinstance(found, StoreError):
                raise found
            return found
        if self.table.enabled:
            apex = self.table.apex(qname)
            if apex is not None:
                if self.tally is not None:
                    self.tally.zone_table_answer()
                return apex  # no Redis at all
            read_at = self.table.clock()
            resolution = self.store.resolve(qname)
            self.table.learn(qname, resolution, read_at)
            return resolution
        return self.store.resolve(qname)

    def __getattr__(self, name):
        return getattr(self.store, name)


class Backend:
    """PowerDNS's remote-backend calls answered from `store`, under `url_prefix`.

    `zone_table_max_age` (seconds, 0: off) is how long a zone read from Redis may answer
    apex lookups (PowerDNS's SOA probes) from memory; see pdns_backend.zone_table."""

    def __init__(self, store, url_prefix: str = "/dnsapi", limiter: LogLimiter | None = None, metrics=None,
                 zone_table_max_age: float = 0.0, clock=None):
        self.store = store
        self.url_prefix = url_prefix.rstrip("/")
        self.limiter = limiter or LogLimiter(log)
        self.metrics = metrics  # pdns_backend.metrics.BackendMetrics; None: no /metrics
        self.tally = metrics.tally if metrics is not None else None
        self.zone_table = ZoneTable(zone_table_max_age, **({"clock": clock} if clock else {}))
        self.view = StoreView(store, self.zone_table, tally=self.tally)

    def respond(self, method: str, target: str, body: bytes = b"", view: StoreView | None = None,
                decoded=None, started: float | None = None) -> tuple:
        """(HTTP status, JSON body) for one request, or (status, body, content type) when
        the body is not JSON; `target` is the raw request target (path still
        percent-encoded, with its query string). `view` and `decoded` (the request's
        Call, or the BadRequest decoding it raised) come from `respond_many`."""
        path, _, query = target.partition("?")
        if method not in ("GET", "POST"):
            return METHOD_NOT_ALLOWED
        if path == self.url_prefix or path.startswith(self.url_prefix + "/"):
            if decoded is None:
                return self.call(lambda: self.decode(method, path[len(self.url_prefix):], query, body), path,
                                 view, started=started)
            if isinstance(decoded, tuple):  # a lookup and its name, checked already
                return self.call(lambda: decoded[0], path, view, decoded[1], started)
            return self.call(lambda: _given(decoded), path, view, started=started)
        if path == "/healthz" and method == "GET":
            return 200, encode(True)
        if path == "/readyz" and method == "GET":
            return (200, encode(True)) if self.store.ping() else (503, encode(False, ["mountdns: store unavailable"]))
        if path == "/metrics" and method == "GET" and self.metrics is not None:
            return 200, self.metrics.exposition(), CONTENT_TYPE
        return NOT_FOUND

    def respond_many(self, requests: list[tuple[str, str, bytes]]) -> list[tuple]:
        """The answers to one event-loop round's requests, in order, as `respond` gives
        them; the names their lookups need from Redis are resolved together first (one
        EVALSHA each, one round trip for all: pdns_backend.redis_batch)."""
        resolve_many = getattr(self.store, "resolve_many", None)
        if len(requests) < 2 or resolve_many is None:
            return [self.respond(*request) for request in requests]
        started = perf_counter()
        decoded, names = [], {}
        for method, target, body in requests:
            path, _, query = target.partition("?")
            entry = None
            if method in ("GET", "POST") and (path == self.url_prefix or path.startswith(self.url_prefix + "/")):
                try:
                    entry = self.decode(method, path[len(self.url_prefix):], query, body)
                except BadRequest as exc:
                    entry = exc
                else:
                    if entry.method == "lookup":
                        try:
                            name = name_parameter(entry.parameters, "qname")
                        except BadRequest:
                            pass  # answered as a bad request by the call itself
                        else:
                            entry = (entry, name)
                            if not self.zone_table.enabled or self.zone_table.apex(name[0]) is None:
                                names[name[0]] = None
            decoded.append(entry)
        resolved = {}
        if names:
            qnames = list(names)
            read_at = self.zone_table.clock()
            for qname, result in zip(qnames, resolve_many(qnames)):
                resolved[qname] = result
                if not isinstance(result, StoreError):
                    self.zone_table.learn(qname, result, read_at)
        view = StoreView(self.store, self.zone_table, resolved, self.tally)
        return [self.respond(method, target, body, view, entry, started)
                for (method, target, body), entry in zip(requests, decoded)]

    @staticmethod
    def decode(method: str, rest: str, query: str, body: bytes) -> Call:
        """The Call of any connector mode, from the path after the url prefix."""
        if method == "GET":
            return rest_call(rest, query)
        method_segment = rest.strip("/")
        if method_segment:
            return post_form_call(method_segment.split("/")[0], body)
        return post_json_call(body)

    def call(self, decode, path: str, view: StoreView | None = None, name=None,
             started: float | None = None) -> tuple[int, bytes]:
        """Decode and run one call; the only place errors become answers (and lookups
        are counted: a request that does not decode as a call is not one)."""
        started = perf_counter() if started is None else started
        call = None
        try:
            call = decode()
            result = methods.call(view or self.view, call.method, call.parameters, name)
            if call.method == "lookup" and self.tally is not None:
                self.tally.lookup(call.parameters.get("qtype"), ANSWERED if result else EMPTY,
                                  perf_counter() - started)
            return 200, encode(result)
        except BadRequest as exc:
            if call is not None and call.method == "lookup" and self.tally is not None:
                self.tally.lookup(call.parameters.get("qtype"), BAD_REQUEST, perf_counter() - started)
            self.problem("bad request", logging.WARNING, f"bad request on {path[:120]!r}: {exc}")
            return failure(400, str(exc))
        except StoreError as exc:
            if self.tally is not None:
                self.tally.store_error()
                if call.method == "lookup":
                    self.tally.lookup(call.parameters.get("qtype"), STORE_ERROR, perf_counter() - started)
            self.problem("store unavailable", logging.ERROR, f"store unavailable: {mask_secrets(str(exc))}")
            return STORE_UNAVAILABLE
        except Exception as exc:  # noqa: BLE001 - never a stack trace on the wire; it goes to our log
            self.problem(f"internal error {type(exc).__name__}", logging.ERROR,
                         f"unexpected error on {path[:120]!r}", exc_info=exc)
            return failure(500, f"internal error: {type(exc).__name__}")

    def problem(self, key: str, level: int, message: str, exc_info=None):
        self.limiter.log(key, level, message, exc_info=exc_info)


def _given(decoded):
    """A request decoded earlier: its Call, or the BadRequest its decoding raised."""
    if isinstance(decoded, BadRequest):
        raise decoded
    return decoded
