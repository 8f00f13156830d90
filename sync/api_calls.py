"""One Kubernetes API call as the sync's writers make it: the raw JSON answer, a bounded
wait, and every failure turned into the caller's own exception.

The status writer and the Event recorder both need exactly this; the typed client would
re-serialise bodies (and deserialise answers into models nobody reads). Calls go by path
(see sync.kube_rest).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from sync.kube_rest import KubeRest

REQUEST_TIMEOUT = 10.0  # seconds; the writers run off the DNS path and retry later


def call(rest: KubeRest, method: str, path: str, *, errors: Mapping[int, type[Exception]],
         failure: type[Exception], **request: Any) -> dict:
    """The JSON answer of `method path` (`request`: KubeRest.request's path_params, body,
    content_type). An API error whose status is in `errors` raises that exception; any
    other failure (API error or connection) raises `failure`."""
    from kubernetes.client.rest import ApiException

    try:
        response = rest.request(method, path, timeout=REQUEST_TIMEOUT, **request)
        return json.loads(response.data)
    except ApiException as exc:
        if exc.status in errors:
            raise errors[exc.status](f"{exc.status} {exc.reason}") from exc
        raise failure(f"{exc.status} {exc.reason}: {exc.body}") from exc
    except Exception as exc:  # noqa: BLE001 - connection errors of every kind
        raise failure(f"{type(exc).__name__}: {exc}") from exc
