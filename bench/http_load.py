"""The backend alone over HTTP, in PowerDNS's REST shape: sequential lookups and wrk."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mountdns.names import as_absolute
from mountdns.testing.servers import BackendServer

WRK = shutil.which("wrk") or "/usr/bin/wrk"


def encode_qname(name: str) -> str:
    """PowerDNS's REST encoding: every byte but ASCII letters and digits as %xx, lowercase."""
    return "".join(chr(b) if chr(b).isalnum() and b < 128 else f"%{b:02x}" for b in name.encode())


def lookup_path(name: str) -> str:
    return f"/dnsapi/lookup/{encode_qname(as_absolute(name))}/ANY"


def http_lookups(backend: BackendServer, names: list[str]) -> None:
    """Sequential lookups over one keep-alive connection, as one PowerDNS thread does."""
    connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    try:
        for name in names:
            connection.request("GET", lookup_path(name))
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"lookup of {name} answered {response.status}: {body[:200]!r}")
    finally:
        connection.close()


@dataclass
class WrkResult:
    requests_per_s: float
    avg_ms: float
    p99_ms: float
    errors: str
    argv: list[str]


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(backend: BackendServer, names: list[str], seconds: float, directory: Path) -> WrkResult:
    script = directory / "lookups.lua"
    paths = ",\n".join(f'  "{lookup_path(n)}"' for n in names)
    script.write_text(
        "local paths = {\n" + paths + "\n}\n"
        "local i = 0\n"
        "function init(args)\n  i = math.random(#paths)\nend\n"
        "function request()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n")
    argv = [WRK, "-t2", "-c8", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), backend.url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    out = done.stdout
    latency_line = re.search(r"^\s+Latency\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    if not (latency_line and p99 and rps):
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    errors = []
    for pattern in (r"Non-2xx or 3xx responses: \d+", r"Socket errors: [^\n]+"):
        found = re.search(pattern, out)
        if found:
            errors.append(found.group(0))
    return WrkResult(float(rps.group(1)), _ms(latency_line.group(1)), _ms(p99.group(1)),
                     "; ".join(errors), ["wrk"] + argv[1:-3] + ["-s lookups.lua", backend.url])
