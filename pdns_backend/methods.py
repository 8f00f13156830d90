"""The remote-backend methods mountdns implements, each a thin adapter from PowerDNS's
parameters to the pure functions in `lookup`."""

from __future__ import annotations

from mountdns.names import InvalidName, normalize
from pdns_backend import lookup as answers
from pdns_backend.protocol import BadRequest, name_parameter


def _lookup(store, params: dict, name: tuple[str, str] | None = None):
    qname, owner = name or name_parameter(params, "qname")
    qtype = params.get("qtype")
    if not isinstance(qtype, str) or not qtype:
        raise BadRequest("missing parameter 'qtype'")
    return answers.lookup(store, qname, qtype, owner) or False


def _zone_named(store, params: dict, key: str):
    name, _ = name_parameter(params, key)
    return store.zone(name)


def _get_domain_info(store, params: dict):
    zone = _zone_named(store, params, "name")
    return answers.domain_info(zone) if zone else False


def _list(store, params: dict):
    zonename = params.get("zonename")
    if not isinstance(zonename, str):
        raise BadRequest("missing parameter 'zonename'")
    try:
        name = normalize(zonename)
    except InvalidName as exc:
        raise BadRequest(f"bad zonename: {exc}") from exc
    return answers.list_zone(store, name)


def _get_all_domain_metadata(store, params: dict):
    name_parameter(params, "name")  # validated; mountdns keeps no per-zone metadata
    return {}


def _get_domain_metadata(store, params: dict):
    name_parameter(params, "name")
    return []


METHODS = {
    "lookup": _lookup,
    "list": _list,
    "getalldomains": lambda store, params: answers.all_domains(store),
    "getdomaininfo": _get_domain_info,
    "getalldomainmetadata": _get_all_domain_metadata,
    "getdomainmetadata": _get_domain_metadata,
    # Never sent over HTTP by PowerDNS 4.7, but part of the protocol: accept it.
    "initialize": lambda store, params: True,
}


def call(store, method: str, params: dict, name: tuple[str, str] | None = None):
    """The `result` for a decoded call; an unimplemented method is `False`, not an error,
    because PowerDNS probes optional methods and treats HTTP errors as failures. `name`
    is a lookup's qname as `name_parameter` gives it, when the caller has it already."""
    if method == "lookup":
        return _lookup(store, params, name)
    handler = METHODS.get(method)
    return handler(store, params) if handler else False
