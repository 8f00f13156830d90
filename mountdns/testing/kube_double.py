"""An in-process Kubernetes API server test double spoken to over real HTTP.

There is no Kubernetes API server on the build machines, yet the sync daemon
must be tested against the wire protocol the official ``kubernetes`` client
really uses: list pagination with ``continue`` tokens, chunked watch streams,
bookmarks, resourceVersion semantics, 410 "Expired" after compaction, and the
failures a real control plane produces (dropped streams, 503s, refused
connections).  Mocking the client in-process would test none of that, so this
module serves the resources mountdns uses (Nodes and Containers it watches,
Leases it elects a leader with, Events it records, Pods) from a
``ThreadingHTTPServer`` on 127.0.0.1 and lets tests mutate the "cluster" and
inject faults through plain Python methods.

Where the real API server has a rule our code could get wrong, the double
enforces it: optimistic concurrency on ``metadata.resourceVersion`` (409
Conflict, for a patched object too; an update without one is 422 where the
kind's strategy requires it, as for Leases and custom resources), a PUT that
creates a missing Lease or Event (201) but 404 for the other kinds, the
object's name and namespace matching the URL's (400), the status subresource
(a write to the object ignores ``status``, a write to ``/status`` ignores
everything else, ``metadata.generation`` moves only with the rest), the patch
media types each kind accepts (no strategic merge patch on a custom resource:
415), MicroTime fields that must carry six fractional digits (400), Events
only in their object's namespace (422, with the legacy rules for an object
without one), and label selectors on lists and watches (an object that stops
matching reaches a watch as DELETED, one that starts matching as ADDED).

It is a library (used by tests and by the scale benchmark), so it must stay
importable without pytest::

    with KubeAPIDouble() as api:
        api.write_kubeconfig(path)
        api.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
"""

import base64
import collections
import contextlib
import datetime
import gc
import http.server
import itertools
import re
import select
import socket
import threading
import time
import urllib.parse
import uuid

import orjson
import yaml

from mountdns.testing import label_selector

GROUP = "mountdns.io"
VERSION = "v1alpha1"
PLURAL = "containers"


class _Resource:
    """Static description of one served resource type."""

    def __init__(self, kind, api_version, plural, namespaced, status_subresource=False, builtin=True,
                 create_on_update=False, unconditional_update=True):
        self.kind = kind
        self.api_version = api_version
        self.plural = plural
        self.namespaced = namespaced
        # With a status subresource, /status writes only status and the object's
        # own writes leave status alone (as for CRDs with subresources.status).
        self.status_subresource = status_subresource
        # Built-in kinds take strategic merge patches; custom resources do not.
        self.builtin = builtin
        # The registry strategy's AllowCreateOnUpdate: a PUT to a missing object creates
        # it (201) instead of answering 404.
        self.create_on_update = create_on_update
        # The strategy's AllowUnconditionalUpdate: an update whose object carries no
        # metadata.resourceVersion applies to the latest version; without it, it is 422.
        self.unconditional_update = unconditional_update
        self.list_prefix = b'{"apiVersion":"%s","kind":"%sList","metadata":' % (
            api_version.encode(), kind.encode())

    @property
    def group(self):
        return self.api_version.rpartition("/")[0]

    @property
    def group_resource(self):
        """schema.GroupResource.String(): "leases.coordination.k8s.io", "events"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


# create_on_update and unconditional_update are the registry strategies' AllowCreateOnUpdate
# and AllowUnconditionalUpdate (pkg/registry/core/{node,pod,event}/strategy.go,
# pkg/registry/coordination/lease/strategy.go, apiextensions' customresource/strategy.go,
# whose status strategy inherits both).
RESOURCES = {
    "Node": _Resource("Node", "v1", "nodes", namespaced=False, status_subresource=True),
    "Container": _Resource("Container", f"{GROUP}/{VERSION}", PLURAL, namespaced=True,
                           status_subresource=True, builtin=False, unconditional_update=False),
    "Pod": _Resource("Pod", "v1", "pods", namespaced=True, status_subresource=True),
    "Lease": _Resource("Lease", "coordination.k8s.io/v1", "leases", namespaced=True,
                       create_on_update=True, unconditional_update=False),
    "Event": _Resource("Event", "v1", "events", namespaced=True, create_on_update=True),
}
_BY_PATH = {(r.api_version, r.plural): r for r in RESOURCES.values()}

# Lease fields of type MicroTime: the server parses them with Go's layout
# "2006-01-02T15:04:05.000000Z07:00", which needs exactly six fractional digits.
_MICROTIME_FIELDS = ("acquireTime", "renewTime")
_MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")

_MERGE_PATCH = "application/merge-patch+json"
_STRATEGIC_PATCH = "application/strategic-merge-patch+json"
_JSON_PATCH = "application/json-patch+json"

# Status reasons the real API server uses for these codes.
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            409: "Conflict", 410: "Expired", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 504: "Timeout"}

# Real API server wording, so log assertions in daemon tests read naturally.
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list "
    "result. You can start a new list without the continue parameter.")

# How often an idle watch checks whether its client hung up; without it a
# watch the client abandoned would count as open until its timeout.
_PEER_CHECK_INTERVAL = 0.2

# Consistent-snapshot pagination keeps a few list snapshots alive; older ones
# expire like etcd's compacted revisions do, which yields 410 on continue.
_MAX_SNAPSHOTS = 32


def status_body(code, reason, message):
    """A Kubernetes ``Status`` object, the shape of every API error body."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Route:
    """What a request path addresses: a resource, a namespace filter, a name,
    and a subresource ("status") or None."""

    def __init__(self, resource, namespace=None, name=None, subresource=None):
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.subresource = subresource


def _parse_route(path):
    """Map a URL path onto a served resource, or None when it is not one.

    /api/v1/[namespaces/NS/]PLURAL[/NAME[/status]] for the core group,
    /apis/GROUP/VERSION/[namespaces/NS/]PLURAL[/NAME[/status]] for the others.
    """
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        api_version, rest = "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    resource = _BY_PATH.get((api_version, rest[0]))
    if resource is None or (namespace is not None and not resource.namespaced):
        return None
    name = rest[1] if len(rest) >= 2 else None
    subresource = rest[2] if len(rest) == 3 else None
    if subresource is not None and (subresource != "status" or not resource.status_subresource):
        return None
    return _Route(resource, namespace=namespace, name=name, subresource=subresource)


def _merge_patch(target, patch):
    """RFC 7386 JSON merge patch, what ``kubectl patch --type=merge`` sends."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(target, operations):
    """RFC 6902 JSON patch (add, remove, replace, test), what a list body sends.

    Raises ValueError for an operation that cannot apply, which the server
    answers with 422 (a failed test) or 400.
    """
    result = orjson.loads(orjson.dumps(target))
    for op in operations:
        if not isinstance(op, dict) or "path" not in op or "op" not in op:
            raise ValueError("each JSON patch operation needs op and path")
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        parent = result
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = tokens[-1] if tokens else None
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise ValueError(f"test failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, op.get("value"))
                else:
                    parent[index] = op.get("value")
            else:
                if kind == "replace" and last not in parent:
                    raise ValueError(f"replace of missing {op['path']}")
                parent[last] = op.get("value")
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            elif last in parent:
                del parent[last]
            else:
                raise ValueError(f"remove of missing {op['path']}")
        else:
            raise ValueError(f"unsupported JSON patch op {kind!r}")
    return result


_OPTIMISTIC_LOCK = ("the object has been modified; please apply your changes to the latest version "
                    "and try again")


def _details(resource, name):
    """StatusDetails of the errors about one object (NotFound, AlreadyExists, Conflict):
    the resource, not the kind, and no group for the core group."""
    details = {"name": name, "group": resource.group, "kind": resource.plural}
    return {k: v for k, v in details.items() if v}


def _conflict(route, cause=_OPTIMISTIC_LOCK):
    body = status_body(409, "Conflict", f'Operation cannot be fulfilled on {route.resource.group_resource} '
                                        f'"{route.name}": {cause}')
    body["details"] = _details(route.resource, route.name)
    return body


def _already_exists(route):
    body = status_body(409, "AlreadyExists", f'{route.resource.group_resource} "{route.name}" already exists')
    body["details"] = _details(route.resource, route.name)
    return body


def _bad_request(message):
    return status_body(400, "BadRequest", message)


def _quote(value):
    """A string value as field errors print it (Go's %q)."""
    return orjson.dumps(value).decode()


def _field_error(cause, field, detail="", value=None):
    """One field.Error: (cause type, field path, ErrorBody()). value is already rendered
    (_quote for strings); None for a Required error, which shows none."""
    text = {"FieldValueInvalid": "Invalid value", "FieldValueRequired": "Required value"}[cause]
    if value is not None:
        text += f": {value}"
    if detail:
        text += f": {detail}"
    return cause, field, text


def _invalid(group, kind, name, errors):
    """errors.NewInvalid: 422, a cause per field error, the message the aggregate of them
    (one error as is, several bracketed and comma-separated, repeats once)."""
    messages = list(dict.fromkeys(f"{field}: {text}" for _, field, text in errors))
    aggregate = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    qualified = f"{kind}.{group}" if group else kind
    body = status_body(422, "Invalid", f'{qualified} "{name}" is invalid: {aggregate}')
    details = {"name": name, "group": group, "kind": kind,
               "causes": [{"reason": cause, "message": text, "field": field} for cause, field, text in errors]}
    body["details"] = {k: v for k, v in details.items() if v}
    return body


def _invalid_object(resource, name, errors):
    """What create and update validation answer (rest.BeforeCreate, rest.BeforeUpdate):
    qualified by the object's kind, e.g. `Event "x" is invalid`."""
    return _invalid(resource.group, resource.kind, name, errors)


def _resource_version_required(route):
    """The registry Store's Update, for a strategy without AllowUnconditionalUpdate and an
    object without metadata.resourceVersion: qualified by the resource (the Go code fills
    the resource into the Kind field) and the value the uint64 zero as Go's %#v prints it
    (Kubernetes before 1.34; 1.34 prints 0)."""
    return _invalid(route.resource.group, route.resource.plural, route.name, [_field_error(
        "FieldValueInvalid", "metadata.resourceVersion", "must be specified for an update", value="0x0")])


def _namespace_mismatch(route, body):
    """rest.EnsureObjectNamespaceMatchesRequestNamespace, which the create, update and
    patch handlers apply to the (patched) object before anything else: an empty namespace
    takes the request's, a different one is 400. Returns the error body or None."""
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        meta = body["metadata"] = {}
    expected = route.namespace if route.resource.namespaced else ""
    current = meta.get("namespace") or ""
    if current == expected:
        return None
    if not current:
        meta["namespace"] = expected
        return None
    if not expected:
        meta.pop("namespace", None)
        return None
    return _bad_request("the namespace of the provided object does not match the namespace sent on the request")


def _name_mismatch(route, body):
    """handlers.checkName, for an update or a patch: the object's name must be the URL's."""
    name = (body.get("metadata") or {}).get("name") or ""
    if not name:
        return _bad_request(f"the name of the object ({route.name} based on URL) was undeterminable: "
                            "name must be provided")
    if name != route.name:
        return _bad_request(f"the name of the object ({name}) does not match the name on the URL ({route.name})")
    return None


def _handler_error(route, body, named):
    """What the create, update and patch handlers refuse (400) before the registry looks
    at the store: an object that does not decode, a namespace other than the URL's and,
    for an update or a patch (`named`), a name other than the URL's. None if fine."""
    return (_decode_error(route, body) or _namespace_mismatch(route, body)
            or (_name_mismatch(route, body) if named else None))


def _decode_error(route, body):
    """What decoding the object refuses (400): a Lease MicroTime without six fractional
    digits. None if it decodes."""
    if route.resource.kind == "Lease":
        spec = body.get("spec") or {}
        for field in _MICROTIME_FIELDS:
            value = spec.get(field)
            if value is not None and not (isinstance(value, str) and _MICROTIME.match(value)):
                return _bad_request(
                    f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}" as '
                    f'"2006-01-02T15:04:05.000000Z07:00": cannot parse as RFC3339 with microseconds')
    return None


def _event_errors(body):
    """legacyValidateEvent's namespace rules (pkg/apis/core/validation/events.go), which
    ValidateEventCreate and ValidateEventUpdate apply to every core/v1 Event. Without an
    eventTime the Event's namespace must be its object's, or, for an object without one
    (a cluster-scoped object), empty or "default"; with an eventTime only an object without
    a namespace restricts it, to "default" or "kube-system"."""
    involved = (body.get("involvedObject") or {}).get("namespace") or ""
    namespace = body["metadata"].get("namespace") or ""
    if not body.get("eventTime"):
        ok = namespace in ("", "default") if not involved else namespace == involved
    else:
        ok = bool(involved) or namespace in ("default", "kube-system")
    if ok:
        return []
    return [_field_error("FieldValueInvalid", "involvedObject.namespace", "does not match event.namespace",
                         value=_quote(involved))]


def _validate(route, body):
    """The strategies' validation that our code could trip over: the 422 body, or None."""
    if route.resource.kind == "Event":
        errors = _event_errors(body)
        if errors:
            return _invalid_object(route.resource, body["metadata"].get("name") or "", errors)
    return None


def _zero_rv(value):
    """A resourceVersion the server reads as none: absent, empty or 0."""
    return value in (None, "", "0", 0)


def _generation_moves(previous, body):
    """metadata.generation counts changes of everything but metadata and status."""
    strip = lambda obj: {k: v for k, v in obj.items() if k not in ("metadata", "status")}  # noqa: E731
    return strip(previous) != strip(body)


def _truthy(value):
    return value is not None and value.lower() in ("true", "1")


class _Watcher:
    """One open watch stream; events are pushed to it under the store lock.

    Pushing (rather than having each stream re-read history) means compaction
    never affects a watch that is already open, as with the real watch cache.
    """

    def __init__(self, resource, namespace, sock, selector=None):
        self.resource = resource
        self.namespace = namespace
        self.selector = selector  # a label predicate, or None for every object
        self.sock = sock
        self.events = collections.deque()
        self.bookmark_requested = False
        self.dropped = False

    def wants(self, kind, namespace):
        return kind == self.resource.kind and self.namespace in (None, namespace)

    def line_for(self, event_type, obj_bytes, labels, old_labels):
        """The event as this watch sees it, or None. As the real watch cache does with a
        label selector: an object that starts matching arrives as ADDED, one that stops
        matching as DELETED (carrying its new state), one that never matched not at all."""
        if self.selector is not None:
            matches = self.selector(labels)
            matched = self.selector(old_labels) if event_type == "MODIFIED" else matches
            if not matches and not matched:
                return None
            if event_type == "MODIFIED" and matches != matched:
                event_type = "ADDED" if matches else "DELETED"
        return b'{"type":"%s","object":%s}\n' % (event_type.encode(), obj_bytes)

    def drop(self):
        """Kill the connection mid-stream, without the terminating chunk."""
        self.dropped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class KubeAPIDouble:
    """A fake kube-apiserver for Nodes and mountdns.io Containers.

    Every mutation bumps one global resourceVersion counter (as etcd does),
    is appended to the watch history and is pushed to matching open watches.
    """

    def __init__(self, bookmark_interval=1.0, port=0):
        # Seconds between periodic BOOKMARK events on watches that asked for
        # them; None sends bookmarks only on send_bookmarks().
        self.bookmark_interval = bookmark_interval
        self.port = port
        self._cond = threading.Condition()
        self._objects = {kind: {} for kind in RESOURCES}  # kind -> key -> (obj, bytes)
        self._rv = 0
        self._history = []  # (rv, kind, namespace, event type, object bytes, labels, labels before)
        self._compacted_rv = 0
        self._snapshots = collections.OrderedDict()  # id -> (rv, [bytes])
        self._snapshot_ids = itertools.count(1)
        self._uid_prefix = str(uuid.uuid4())[:24]
        self._uid_counter = itertools.count(1)
        self._watchers = set()
        self._connections = set()
        self._available = True
        self._list_failures = []  # [remaining, status, kind-or-None]
        self._expire_next_continue = False
        self._server = None
        self._thread = None
        self.requests = []
        self.list_calls = collections.Counter()
        self.watch_calls = collections.Counter()

    # ----------------------------------------------------------- lifecycle

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Listen (again) on the same port, so clients reconnect transparently."""
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.api = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"kube-double-{self.port}", daemon=True)
        self._thread.start()

    def stop(self):
        """Close the listening socket and every open connection right away.

        Afterwards connections are refused: this is "API server unreachable".
        Cluster state is kept, so start() resumes the same cluster.
        """
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None
        self.drop_watches()
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def write_kubeconfig(self, path):
        """Write a kubeconfig for this server (plain HTTP, token user); returns the path as str."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "double", "user": {"token": "double-token"}}],
            "contexts": [{"name": "double",
                          "context": {"cluster": "double", "user": "double"}}],
            "current-context": "double",
        }
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        return str(path)

    # ------------------------------------------------------- cluster state

    @property
    def resource_version(self):
        return self._rv

    def apply(self, obj):
        """Create or replace an object; returns the stored copy."""
        obj = self._prepare(obj)
        with self._cond:
            data = self._store(obj, _now())
            self._cond.notify_all()
        return orjson.loads(data)

    def apply_many(self, objs):
        """Create or replace many objects under one lock (bulk loading)."""
        now = _now()  # formatting a timestamp per object would dominate
        # Cyclic GC passes over the growing store would otherwise take ~75%
        # of a 100k load; nothing created here is cyclic garbage.
        with _gc_paused():
            prepared = [self._prepare(obj) for obj in objs]
            with self._cond:
                for obj in prepared:
                    self._store(obj, now)
                self._cond.notify_all()

    def delete(self, kind, name, namespace=None):
        """Delete an object and emit DELETED; returns it, or None if absent."""
        with self._cond:
            deleted = self._remove(kind, name, namespace)
            self._cond.notify_all()
        return deleted

    def get(self, kind, name, namespace=None):
        with self._cond:
            entry = self._objects[kind].get(self._key(kind, name, namespace))
        return orjson.loads(entry[1]) if entry else None

    def objects(self, kind):
        with self._cond:
            stored = list(self._objects[kind].values())
        return [orjson.loads(data) for _, data in stored]

    @staticmethod
    def _key(kind, name, namespace):
        return (namespace or "default", name) if RESOURCES[kind].namespaced else ("", name)

    @staticmethod
    def _prepare(obj):
        """Deep-copy via JSON and fill defaults; done outside the lock."""
        obj = orjson.loads(orjson.dumps(obj))
        resource = RESOURCES[obj["kind"]]
        obj["apiVersion"] = resource.api_version
        meta = obj.setdefault("metadata", {})
        if resource.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        return obj

    def _store(self, obj, now):
        """Store a prepared object and return its JSON.

        The caller holds the lock and notifies waiting watch streams.
        """
        kind = obj["kind"]
        meta = obj["metadata"]
        key = self._key(kind, meta["name"], meta.get("namespace"))
        previous = self._objects[kind].get(key)
        if previous:
            old_meta = previous[0]["metadata"]
            meta["uid"] = old_meta["uid"]
            meta.setdefault("creationTimestamp", old_meta["creationTimestamp"])
            generation = old_meta.get("generation", 1)
            meta["generation"] = generation + 1 if _generation_moves(previous[0], obj) else generation
        else:
            meta.setdefault("uid", self._new_uid())
            meta.setdefault("creationTimestamp", now)
            meta["generation"] = 1
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        data = orjson.dumps(obj)
        self._objects[kind][key] = (obj, data)
        self._emit("MODIFIED" if previous else "ADDED", kind, meta.get("namespace"), data,
                   label_selector.labels_of(obj), label_selector.labels_of(previous[0]) if previous else None)
        return data

    def _new_uid(self):
        # UUID-shaped and unique, but far cheaper than uuid4() per object.
        return f"{self._uid_prefix}{next(self._uid_counter):012x}"

    def _remove(self, kind, name, namespace):
        entry = self._objects[kind].pop(self._key(kind, name, namespace), None)
        if entry is None:
            return None
        obj = orjson.loads(entry[1])
        # The DELETED event carries the object at the deletion's revision.
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._emit("DELETED", kind, obj["metadata"].get("namespace"), orjson.dumps(obj),
                   label_selector.labels_of(obj))
        return obj

    def _emit(self, event_type, kind, namespace, obj_bytes, labels, old_labels=None):
        self._history.append((self._rv, kind, namespace, event_type, obj_bytes, labels, old_labels))
        for watcher in self._watchers:
            if watcher.wants(kind, namespace):
                line = watcher.line_for(event_type, obj_bytes, labels, old_labels)
                if line is not None:
                    watcher.events.append(line)

    # ----------------------------------------------------- fault injection

    def compact(self):
        """Forget history up to now: older resourceVersions now get 410."""
        with self._cond:
            self._history.clear()
            self._compacted_rv = self._rv
            self._snapshots.clear()

    def drop_watches(self):
        """Abruptly end every open watch stream (no terminating chunk)."""
        with self._cond:
            for watcher in self._watchers:
                watcher.drop()
            # Unregistered here, so open_watches is 0 as soon as this returns.
            self._watchers.clear()
            self._cond.notify_all()

    def send_bookmarks(self):
        """Make every bookmark-enabled watch send a BOOKMARK now."""
        with self._cond:
            for watcher in self._watchers:
                watcher.bookmark_requested = True
            self._cond.notify_all()

    def set_available(self, available):
        """While unavailable every request gets 503 and open watches drop."""
        with self._cond:
            self._available = available
        if not available:
            self.drop_watches()

    def fail_lists(self, n, status=500, kind=None):
        """Fail the next n list (non-watch) requests, optionally of one kind."""
        with self._cond:
            self._list_failures.append([n, status, kind])

    def truncate_next_list(self):
        """Make the next continue request of a paginated list get 410 Expired."""
        with self._cond:
            self._expire_next_continue = True

    @property
    def open_watches(self):
        with self._cond:
            return len(self._watchers)

    def wait_for_open_watches(self, n, timeout=5.0):
        """Block until at least n watches are open; False on timeout."""
        return self.wait_until(lambda: len(self._watchers) >= n, timeout)

    def wait_until(self, predicate, timeout=5.0):
        """Block until predicate() holds; False on timeout.

        Re-checked whenever the cluster changes or a watch opens or closes.
        """
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    # ------------------------------------------------- request processing
    # These run on handler threads and return (status, body-bytes).

    def _admit(self, method, path, query):
        """Record the request; return an error response if it must fail."""
        with self._cond:
            self.requests.append((method, path, query))
            if not self._available:
                return 503, status_body(503, "ServiceUnavailable",
                                        "the server is currently unable to handle the request")
        return None

    def _take_list_failure(self, kind):
        with self._cond:
            for failure in self._list_failures:
                if failure[2] in (None, kind):
                    failure[0] -= 1
                    if failure[0] <= 0:
                        self._list_failures.remove(failure)
                    return failure[1]
        return None

    def _list(self, route, query):
        kind = route.resource.kind
        with self._cond:
            self.list_calls[kind] += 1
        failure = self._take_list_failure(kind)
        if failure:
            return failure, status_body(failure, _REASONS.get(failure, ""),
                                        f"injected list failure ({failure})")
        try:
            selector = _selector(query)
        except label_selector.InvalidSelector as exc:
            return 400, status_body(400, "BadRequest", str(exc))
        rv = int(query.get("resourceVersion") or 0)
        if query.get("resourceVersionMatch") == "Exact" and rv < self._compacted_rv:
            return 410, status_body(410, "Expired", _too_old(rv, self._compacted_rv))
        limit = int(query.get("limit") or 0)
        token = query.get("continue")
        with self._cond:
            if token:
                snapshot = self._resume_snapshot(token)
                if snapshot is None:
                    return 410, status_body(410, "Expired", _CONTINUE_EXPIRED)
                snap_id, rv, items, offset = snapshot
            else:
                rv, items, offset = self._rv, self._sorted_items(route, selector), 0
                snap_id = None
            end = offset + limit if limit else len(items)
            meta = {"resourceVersion": str(rv)}
            if end < len(items):
                if snap_id is None:
                    snap_id = self._keep_snapshot(rv, items)
                meta["continue"] = _encode_token(snap_id, end)
                meta["remainingItemCount"] = len(items) - end
            page = items[offset:end]
        body = b"".join([route.resource.list_prefix, orjson.dumps(meta),
                         b',"items":[', b",".join(page), b"]}"])
        return 200, body

    def _sorted_items(self, route, selector=None):
        """Serialized objects in etcd key order, filtered by namespace and labels. The
        key is "namespace/name" (the name alone for a cluster-scoped kind) compared as
        bytes, so namespace "a-b" lists before "a" ('-' < '/'), not after it as the
        (namespace, name) pairs would sort; the sync relies on that order."""
        entries = self._objects[route.resource.kind]
        keys = sorted((k for k in entries if route.namespace in (None, k[0])), key=_etcd_key)
        if selector is not None:
            keys = [k for k in keys if selector(label_selector.labels_of(entries[k][0]))]
        return [entries[k][1] for k in keys]

    def _keep_snapshot(self, rv, items):
        snap_id = next(self._snapshot_ids)
        self._snapshots[snap_id] = (rv, items)
        while len(self._snapshots) > _MAX_SNAPSHOTS:
            self._snapshots.popitem(last=False)
        return snap_id

    def _resume_snapshot(self, token):
        if self._expire_next_continue:
            self._expire_next_continue = False
            return None
        try:
            snap_id, offset = _decode_token(token)
        except ValueError:
            return None
        if snap_id not in self._snapshots:
            return None
        rv, items = self._snapshots[snap_id]
        return snap_id, rv, items, offset

    def _get(self, route):
        with self._cond:
            entry = self._objects[route.resource.kind].get(
                self._key(route.resource.kind, route.name, route.namespace))
        if entry is None:
            return 404, _not_found(route)
        return 200, entry[1]

    def _write(self, method, route, body, content_type=""):
        """POST/PUT/PATCH/DELETE against a single object, its status, or a collection."""
        kind = route.resource.kind
        if method == "DELETE":
            if route.subresource:
                return 405, status_body(405, "MethodNotAllowed", "DELETE not allowed on a subresource")
            deleted = self.delete(kind, route.name, route.namespace)
            return (200, deleted) if deleted else (404, _not_found(route))
        if method == "PATCH":
            media = content_type.split(";")[0].strip()
            if media == _STRATEGIC_PATCH and not route.resource.builtin:
                return 415, status_body(415, "UnsupportedMediaType", (
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"))
            if media not in (_MERGE_PATCH, _STRATEGIC_PATCH, _JSON_PATCH):
                return 415, status_body(415, "UnsupportedMediaType", f"unsupported patch type {media!r}")
            expected = list if media == _JSON_PATCH else dict
            if not isinstance(body, expected):
                return 400, status_body(400, "BadRequest", "the patch body does not match its media type")
        elif not isinstance(body, dict):
            return 400, status_body(400, "BadRequest", "a JSON object body is required")
        if method in ("POST", "PUT"):
            # The handlers decode the object, then check its namespace and (on update) its
            # name against the URL, before the registry looks at the store.
            refused = _handler_error(route, body, named=method == "PUT")
            if refused:
                return 400, refused
        if method == "POST":
            meta = body.get("metadata") or {}
            name = meta.get("name")
            if not name and meta.get("generateName"):
                name = f"{meta['generateName']}{next(self._uid_counter):05x}"
                meta["name"] = name
            if not name:
                return 422, _invalid_object(route.resource, "", [_field_error(
                    "FieldValueRequired", "metadata.name", "name or generateName is required")])
            route = _Route(route.resource, route.namespace, name)
            if not _zero_rv(meta.get("resourceVersion")):
                # etcd3's Create refuses it with a plain error, which the server sends as 500.
                refused = status_body(500, "", "resourceVersion should not be set on objects to be created")
                del refused["reason"]
                return 500, refused
        with self._cond:
            # Read, check and store under one lock: two writers holding the same
            # resourceVersion must not both succeed.
            current = self._get_locked(kind, route.name, route.namespace)
            if method == "POST" and current:
                return 409, _already_exists(route)
            if method == "PATCH" and not current:
                return 404, _not_found(route)  # a patch never creates, whatever the strategy
            if method == "PUT" and not current and not route.resource.create_on_update:
                return 404, _not_found(route)
            if method == "PUT":
                # The UID the object carries is a precondition, checked against the stored
                # object (an empty one when there is none) before anything else.
                uid = body["metadata"].get("uid") or ""
                stored_uid = current["metadata"]["uid"] if current else ""
                if uid and uid != stored_uid:
                    return 409, _conflict(route, f"Precondition failed: UID in precondition: {uid}, "
                                                 f"UID in object meta: {stored_uid}")
            if method == "PATCH":
                try:
                    if isinstance(body, list):
                        body = _json_patch(current, body)
                    else:
                        body = _merge_patch(current, body)
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    return 422, status_body(422, "Invalid", f"the patch could not be applied: {exc}")
                if not isinstance(body, dict):
                    return 400, _bad_request("the patched object is not a JSON object")
                refused = _handler_error(route, body, named=True)
                if refused:
                    return 400, refused
            body["kind"] = kind
            meta = body.setdefault("metadata", {})
            if current is None:
                if method == "PUT":
                    # Created by the update (the strategy allows it): the resourceVersion
                    # the object carries is ignored, the system fields filled afresh.
                    for field in ("resourceVersion", "uid", "creationTimestamp"):
                        meta.pop(field, None)
            else:
                # The patched object's resourceVersion is a precondition as a PUT's is.
                wanted_rv = meta.get("resourceVersion")
                if _zero_rv(wanted_rv):
                    if not route.resource.unconditional_update:
                        return 422, _resource_version_required(route)
                elif wanted_rv != current["metadata"]["resourceVersion"]:
                    return 409, _conflict(route)
            if route.resource.status_subresource and current is not None:
                body = self._split_status(route, current, body)
            elif route.resource.status_subresource and method == "POST":
                body.pop("status", None)  # created without status, as the real server does
            invalid = _validate(route, body)
            if invalid:
                return 422, invalid
            obj = self._prepare(body)
            data = self._store(obj, _now())
            self._cond.notify_all()
        return (201 if current is None else 200), data

    @staticmethod
    def _split_status(route, current, body):
        """A write to /status keeps only status (and nothing else) of the body; a write
        to the object keeps everything but status."""
        if route.subresource == "status":
            merged = orjson.loads(orjson.dumps(current))
            if "status" in body:
                merged["status"] = body["status"]
            else:
                merged.pop("status", None)
            merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return merged
        if "status" in current:
            body["status"] = current["status"]
        else:
            body.pop("status", None)
        return body

    def _get_locked(self, kind, name, namespace):
        entry = self._objects[kind].get(self._key(kind, name, namespace))
        return orjson.loads(entry[1]) if entry else None

    def _open_watch(self, route, query, sock):
        """Register a watcher; returns (watcher, replay lines) or an error line.

        Registration and replay happen under one lock so no event falls in
        the gap between history replay and live delivery.
        """
        kind = route.resource.kind
        rv = int(query.get("resourceVersion") or 0)
        with self._cond:
            self.watch_calls[kind] += 1
            if rv and rv < self._compacted_rv:
                # As the server writes it, an empty ListMeta included ("metadata":{}).
                error = status_body(410, "Expired", _too_old(rv, self._compacted_rv))
                return None, [orjson.dumps({"type": "ERROR", "object": error}) + b"\n"]
            selector = _selector(query)  # checked before the stream started
            watcher = _Watcher(route.resource, route.namespace, sock, selector)
            if rv:
                replay = [line for ev_rv, ev_kind, ns, *event in self._history
                          if ev_rv > rv and watcher.wants(ev_kind, ns)
                          and (line := watcher.line_for(*event)) is not None]
            else:
                replay = [b'{"type":"ADDED","object":%s}\n' % data
                          for data in self._sorted_items(route, selector)]
            self._watchers.add(watcher)
            self._cond.notify_all()
        return watcher, replay

    def _close_watch(self, watcher):
        with self._cond:
            self._unregister(watcher)

    def _unregister(self, watcher):
        self._watchers.discard(watcher)
        self._cond.notify_all()

    def _next_watch_lines(self, watcher, deadline, bookmarks):
        """Wait for events, a bookmark, the deadline or a drop.

        Returns lines to send, [] when the watch timed out, or None when the
        stream must be killed abruptly.  A finished watch is unregistered
        before the caller ends the stream, so a client that saw the end also
        sees open_watches drop.
        """
        next_bookmark = (time.monotonic() + self.bookmark_interval
                         if bookmarks and self.bookmark_interval else None)
        with self._cond:
            while True:
                if watcher.dropped or _peer_closed(watcher.sock):
                    self._unregister(watcher)
                    return None
                if watcher.events:
                    lines = list(watcher.events)
                    watcher.events.clear()
                    return lines
                now = time.monotonic()
                due_bookmark = watcher.bookmark_requested or (
                    next_bookmark is not None and now >= next_bookmark)
                if bookmarks and due_bookmark:
                    watcher.bookmark_requested = False
                    # No queued events, so this watch has seen every revision.
                    return [_bookmark_line(watcher.resource, self._rv)]
                if deadline is not None and now >= deadline:
                    self._unregister(watcher)
                    return []
                waits = [t - now for t in (deadline, next_bookmark) if t is not None]
                self._cond.wait(min(waits + [_PEER_CHECK_INTERVAL]))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def process_request(self, request, client_address):
        # Tracked so stop() can kill idle keep-alive and streaming connections.
        with self.api._cond:
            self.api._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.api._cond:
            self.api._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # Connections killed by drop_watches()/stop() are expected; stay quiet.
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def api(self):
        return self.server.api

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip("/") or "/"  # the client asks for "/version/"
        query = dict(urllib.parse.parse_qsl(parsed.query))
        body = self._read_body()
        refused = self.api._admit(method, path, query)
        if refused:
            return self._send(*refused)
        if method == "GET" and path in _DISCOVERY:
            return self._send(200, _DISCOVERY[path])
        route = _parse_route(path)
        if route is None:
            return self._send(404, status_body(404, "NotFound", "the server could not find the requested resource"))
        if method == "GET" and route.subresource:
            return self._send(*self.api._get(route))
        if method == "GET" and route.name:
            return self._send(*self.api._get(route))
        if method == "GET" and _truthy(query.get("watch")):
            return self._watch(route, query)
        if method == "GET":
            return self._send(*self.api._list(route, query))
        if (method == "POST") == bool(route.name):
            return self._send(405, status_body(405, "MethodNotAllowed", f"{method} not allowed here"))
        if route.subresource and method == "POST":
            return self._send(405, status_body(405, "MethodNotAllowed", "POST not allowed on a subresource"))
        return self._send(*self.api._write(method, route, body, self.headers.get("Content-Type") or ""))

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return orjson.loads(self.rfile.read(length)) if length else None

    def _send(self, status, body):
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _watch(self, route, query):
        try:
            _selector(query)
        except label_selector.InvalidSelector as exc:
            return self._send(400, status_body(400, "BadRequest", str(exc)))
        timeout = query.get("timeoutSeconds")
        deadline = time.monotonic() + int(timeout) if timeout else None
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        # The real server streams every watch as chunked JSON lines and closes
        # the connection when the watch ends.
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # Registered only once the headers are out: a drop before them would
        # look like a connection error, which urllib3 silently retries.
        watcher, lines = self.api._open_watch(route, query, self.connection)
        try:
            self._stream(watcher, lines, deadline, bookmarks)
        except OSError:
            pass  # client went away or the stream was dropped
        finally:
            if watcher:
                self.api._close_watch(watcher)

    def _stream(self, watcher, lines, deadline, bookmarks):
        self._write_chunks(lines)
        while watcher:
            lines = self.api._next_watch_lines(watcher, deadline, bookmarks)
            if lines is None:
                return  # abrupt end: no terminating chunk
            if not lines:
                break
            self._write_chunks(lines)
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunks(self, lines):
        for line in lines:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        self.wfile.flush()


_DISCOVERY = {
    "/version": {
        "major": "1", "minor": "30", "gitVersion": "v1.30.0-double", "gitCommit": "double",
        "gitTreeState": "clean", "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.22",
        "compiler": "gc", "platform": "linux/amd64",
    },
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{
            "name": group,
            "versions": [{"groupVersion": f"{group}/{version}", "version": version}],
            "preferredVersion": {"groupVersion": f"{group}/{version}", "version": version},
        } for group, version in ((GROUP, VERSION), ("coordination.k8s.io", "v1"))],
    },
}


def _selector(query):
    """The labelSelector of a list or watch as a predicate, None without one; raises
    label_selector.InvalidSelector as the API server answers 400."""
    raw = query.get("labelSelector")
    return label_selector.parse(raw) if raw and raw.strip() else None


def _too_old(rv, compacted_rv):
    return f"too old resource version: {rv} ({compacted_rv})"


def _not_found(route):
    body = status_body(404, "NotFound", f'{route.resource.group_resource} "{route.name}" not found')
    body["details"] = _details(route.resource, route.name)
    return body


def _bookmark_line(resource, rv):
    obj = {"kind": resource.kind, "apiVersion": resource.api_version,
           "metadata": {"resourceVersion": str(rv)}}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


def _peer_closed(sock):
    """True once a watch client hung up (it never sends anything after the request)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _etcd_key(key):
    """The order etcd keeps an object's key in: "namespace/name", or the name of a
    cluster-scoped object (its namespace is ""). Strings compare by code point, which
    is the order of their UTF-8 bytes."""
    namespace, name = key
    return f"{namespace}/{name}" if namespace else name


def _encode_token(snap_id, offset):
    return base64.urlsafe_b64encode(orjson.dumps({"s": snap_id, "o": offset})).decode()


def _decode_token(token):
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["s"]), int(data["o"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(token) from exc


@contextlib.contextmanager
def _gc_paused():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
