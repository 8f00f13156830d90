"""Kubernetes API calls by path, over the official client's ApiClient.

The official client does the HTTP: configuration, authentication, TLS, the connection
pool, query and path encoding, and ApiException for an answer that is not 2xx. Its
generated API classes are not used: in this client every one of their methods is wrapped
in pydantic's `validate_call`, built when the class is first used, and CoreV1Api alone
has over 400 of them. Importing it cost the sync ~20 MiB of resident memory for the
handful of calls it makes, ~200 bytes per Container at 100,000 Containers, and the
arguments it validates are ours. The calls below send what the generated methods send
(the same paths, query parameters, headers and authentication) and hand back the raw
urllib3 response, as those methods do with `_preload_content=False`; the writers (status,
Events) take the JSON answer with every failure turned into their own exception (`call`).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from kubernetes.client.rest import ApiException

# The paths the sync calls; `{namespace}` and `{name}` are filled in (and encoded) by the
# client from a call's path_params.
CONTAINERS = "/apis/mountdns.io/v1alpha1/containers"
NAMESPACED_CONTAINERS = "/apis/mountdns.io/v1alpha1/namespaces/{namespace}/containers"
CONTAINER = NAMESPACED_CONTAINERS + "/{name}"
CONTAINER_STATUS = CONTAINER + "/status"
NODES = "/api/v1/nodes"
PODS = "/api/v1/pods"
NAMESPACED_PODS = "/api/v1/namespaces/{namespace}/pods"
POD = NAMESPACED_PODS + "/{name}"
EVENTS = "/api/v1/namespaces/{namespace}/events"
EVENT = EVENTS + "/{name}"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
LEASE = LEASES + "/{name}"

REQUEST_TIMEOUT = 10.0  # seconds, a writer's call: they run off the DNS path and retry later

# The generated list methods' keyword arguments, and the query parameters they send, in
# the order they send them.
_QUERY_NAMES = {
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "_continue": "continue",
    "field_selector": "fieldSelector",
    "label_selector": "labelSelector",
    "limit": "limit",
    "resource_version": "resourceVersion",
    "resource_version_match": "resourceVersionMatch",
    "timeout_seconds": "timeoutSeconds",
    "watch": "watch",
}
_JSON = "application/json"


class KubeRest:
    """Requests by path through one ApiClient."""

    def __init__(self, api_client):
        self.api_client = api_client

    def request(self, method: str, path: str, *, path_params: Mapping[str, str] | None = None,
                query: Mapping[str, Any] | None = None, body: Any = None, content_type: str = _JSON,
                timeout: Any = None):
        """The urllib3 response, unread (a watch is read as it streams). An answer that is
        not 2xx raises ApiException (its `status`, `reason` and `body`), as the generated
        methods do."""
        _, url, headers, data, _ = self.api_client.param_serialize(
            method, path, path_params=dict(path_params or {}),
            query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
            header_params={"Accept": _JSON, **({"Content-Type": content_type} if body is not None else {})},
            body=body, auth_settings=["BearerToken"])
        response = self.api_client.call_api(method, url, header_params=headers, body=data,
                                            _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    def lister(self, path: str, namespace: str | None = None, **fixed) -> Callable[..., Any]:
        """A list/watch call shaped like the generated `list_*` methods: their keyword
        arguments (`limit`, `_continue`, `watch`, `resource_version`, ...), plus
        `_request_timeout`; `fixed` ones (a label selector) are sent on every call."""
        path_params = {"namespace": namespace} if namespace else None

        def list_call(_preload_content: bool = False, _request_timeout: Any = None, **kwargs):
            if _preload_content:
                raise TypeError("list calls hand back the raw response (_preload_content=False)")
            arguments = {**fixed, **kwargs}
            unknown = set(arguments) - set(_QUERY_NAMES)
            if unknown:
                raise TypeError(f"unknown list arguments: {', '.join(sorted(unknown))}")
            query = {query: arguments[k] for k, query in _QUERY_NAMES.items() if k in arguments}
            return self.request("GET", path, path_params=path_params, query=query, timeout=_request_timeout)

        return list_call


def call(rest: KubeRest, method: str, path: str, *, errors: Mapping[int, type[Exception]],
         failure: type[Exception], **request: Any) -> dict:
    """The JSON answer of `method path` (`request`: KubeRest.request's path_params, body,
    content_type), within REQUEST_TIMEOUT. An API error whose status is in `errors` raises
    that exception; any other failure (API error or connection) raises `failure`."""
    try:
        response = rest.request(method, path, timeout=REQUEST_TIMEOUT, **request)
        return json.loads(response.data)
    except ApiException as exc:
        if exc.status in errors:
            raise errors[exc.status](f"{exc.status} {exc.reason}") from exc
        raise failure(f"{exc.status} {exc.reason}: {exc.body}") from exc
    except Exception as exc:  # noqa: BLE001 - connection errors of every kind
        raise failure(f"{type(exc).__name__}: {exc}") from exc
