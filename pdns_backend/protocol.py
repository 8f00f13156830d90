"""Decoding PowerDNS's three HTTP connector request shapes into (method, parameters).

REST:            GET  {url}/{method}/{arg}/{arg}?query   (segments percent-encoded byte by byte)
post=1:          POST {url}/{method}   form body parameters=<url-encoded JSON object>
post=1,post_json=1: POST {url}        body {"method": ..., "parameters": {...}}

All three become the same call, so every mode gives the same answers. Method names are
matched case-insensitively (PowerDNS sends camelCase).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_to_bytes

import orjson

from mountdns.names import InvalidName, as_absolute, normalize


class BadRequest(ValueError):
    """A request PowerDNS could not have meant: broken encoding, bad JSON, bad name."""


# Positional REST arguments of each method, in PowerDNS 4.7's order.
REST_ARGUMENTS = {
    "lookup": ("qname", "qtype"),
    "list": ("domain_id", "zonename"),
    "getdomaininfo": ("name",),
    "getalldomainmetadata": ("name",),
    "getdomainmetadata": ("name", "kind"),
    "getalldomains": (),
    "initialize": (),
}

_BAD_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")


@dataclass(frozen=True)
class Call:
    method: str  # lowercased
    parameters: dict


def decode_segment(segment: str) -> str:
    """One percent-encoded path segment to text; PowerDNS encodes every octet it must."""
    if "%" not in segment:
        return segment  # a method name or a qtype: nothing to decode
    if _BAD_PERCENT.search(segment):
        raise BadRequest(f"broken percent-encoding in {segment[:80]!r}")
    raw = unquote_to_bytes(segment)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # DNS labels are octets; keep them one-to-one rather than reject them.
        return raw.decode("latin-1")


def rest_call(raw_path: str, query_string: str) -> Call:
    """A REST-mode call from the raw (still percent-encoded) path after the url prefix."""
    segments = raw_path.strip("/").split("/") if raw_path.strip("/") else []
    if not segments:
        raise BadRequest("no method name in the path")
    method = decode_segment(segments[0]).lower()
    args = [decode_segment(s) for s in segments[1:]]
    names = REST_ARGUMENTS.get(method, ())
    params = dict(zip(names, args))
    if query_string:  # a lookup has none
        for key, values in parse_qs(query_string).items():
            params.setdefault(key, values[-1])
    return Call(method, params)


def _json_object(body: bytes | str, what: str) -> dict:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson's message gives the position, not the text.
        raise BadRequest(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest(f"{what} is not a JSON object")
    return value


def post_form_call(method_segment: str, form_body: bytes) -> Call:
    """post=1: method in the path, `parameters=<JSON>` in a form body."""
    if not method_segment:
        raise BadRequest("no method name in the path")
    method = decode_segment(method_segment).lower()
    try:
        form = parse_qs(form_body.decode("latin-1"), keep_blank_values=True, strict_parsing=bool(form_body))
    except ValueError as exc:
        # parse_qs's message quotes the offending field: never echo the body.
        raise BadRequest("form body is not url-encoded") from exc
    raw = form.get("parameters", ["{}"])[-1]
    return Call(method, _json_object(raw, "the parameters field"))


def post_json_call(body: bytes) -> Call:
    """post=1,post_json=1: {"method": ..., "parameters": {...}} (Content-Type text/javascript)."""
    message = _json_object(body, "the request body")
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise BadRequest("the request body has no method name")
    params = message.get("parameters", {})
    if not isinstance(params, dict):
        raise BadRequest("parameters is not a JSON object")
    return Call(method.lower(), params)


def name_parameter(params: dict, key: str) -> tuple[str, str]:
    """(normalized name, name as sent) of a required name parameter."""
    raw = params.get(key)
    if not isinstance(raw, str):
        raise BadRequest(f"missing parameter {key!r}")
    try:
        return normalize(raw), as_absolute(raw)
    except InvalidName as exc:
        raise BadRequest(f"bad {key}: {exc}") from exc
