"""How PowerDNS 4.7's HTTP connector shapes a call in each of its three modes, so the
tests can send the same call every way (see the connector notes in the README)."""

from urllib.parse import urlencode

import orjson

MODES = ("rest", "post", "post_json")
REST_ORDER = {
    "lookup": ("qname", "qtype"),
    "list": ("domain_id", "zonename"),
    "getDomainInfo": ("name",),
    "getAllDomainMetadata": ("name",),
    "getDomainMetadata": ("name", "kind"),
}


def pdns_quote(text: str) -> str:
    """PowerDNS percent-encodes every octet that is not alphanumeric, lowercase hex."""
    return "".join(c if c.isascii() and c.isalnum() else "".join(f"%{b:02x}" for b in c.encode())
                   for c in text)


def request_args(mode: str, method: str, params: dict, prefix: str = "/dnsapi") -> dict:
    """kwargs for a werkzeug test client `open` (or requests) call."""
    if mode == "rest":
        args = [pdns_quote(str(params[k])) for k in REST_ORDER.get(method, ())]
        path = "/".join([prefix, method, *args])
        if method == "getAllDomains":
            path += "?includeDisabled=true"
        return {"method": "GET", "path": path}
    if mode == "post":
        return {"method": "POST", "path": f"{prefix}/{method}",
                "data": urlencode({"parameters": orjson.dumps(params).decode()}),
                "content_type": "application/x-www-form-urlencoded"}
    return {"method": "POST", "path": prefix,
            "data": orjson.dumps({"method": method, "parameters": params}),
            "content_type": "text/javascript; charset=utf-8"}


def lookup_params(qname: str, qtype: str = "ANY") -> dict:
    return {"qname": qname, "qtype": qtype, "remote": "127.0.0.1", "local": "127.0.0.1",
            "real-remote": "127.0.0.1/32", "zone-id": -1}
