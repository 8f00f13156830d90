"""A backend that purges its own PowerDNS, and that PowerDNS with the shipped caches on:
the pair each DNS pod runs, for tests and benchmarks of the announcement path.

The two need each other's address (PowerDNS calls the backend; the backend's purge
follower calls PowerDNS's API), so both ports are chosen before either starts. The backend
starts first: PowerDNS asks it for the zone list at start-up. Until PowerDNS is up the
follower's first purge fails and is retried, as it would be in a pod.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import dns.rcode
import dns.rdatatype

from mountdns.testing.servers import BackendServer, PdnsServer, free_port, wait_until

SEED_ZONE = "domain.foo.bar"


def purging_pair(directory: Path, redis_url: str, *, backend_args: tuple[str, ...] = (),
                 pdns_settings: dict | None = None, workers: int = 3) -> tuple[BackendServer, PdnsServer]:
    """(backend, pdns), neither started; start them with `start_pair`."""
    port = free_port()
    # One pdns_server per directory: its control socket lives there.
    pdns = PdnsServer(directory, f"http://127.0.0.1:{port}", settings=pdns_settings)
    backend = BackendServer(directory, redis_url, port=port, workers=workers,
                            extra_args=("--pdns-api-url", pdns.api_url, "--pdns-api-key", pdns.api_key,
                                        *backend_args))
    return backend, pdns


def start_pair(backend: BackendServer, pdns: PdnsServer) -> tuple[BackendServer, PdnsServer]:
    backend.start()
    wait_for_workers(backend)
    pdns.start()
    return backend, pdns


def wait_for_workers(backend: BackendServer, timeout: float = 30.0) -> None:
    """Until a worker answers (the socket listens earlier): PowerDNS gives up at start-up if
    its first call, the zone list, takes more than its 2 s timeout."""
    def healthy():
        with urllib.request.urlopen(f"{backend.url}/healthz", timeout=2) as response:
            return response.status == 200
    wait_until(healthy, timeout, f"a worker of the backend on {backend.port}", interval=0.1)


def a_records(pdns: PdnsServer, name: str, timeout: float = 2.0) -> tuple[str, list[str]]:
    """(rcode text, sorted A addresses) of `name` through `pdns` (CNAMEs chased by PowerDNS)."""
    response = pdns.query(name, "A", timeout=timeout)
    addresses = sorted(rr.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.A
                       for rr in rrset)
    return dns.rcode.to_text(response.rcode()), addresses

