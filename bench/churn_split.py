"""The churn benchmark with the 2 cores split as a deployment splits the work between
machines: one core for a DNS pod's work (the PowerDNS dnsperf loads, the backend, Redis),
the other for the sync, the API double and the test's driver (see bench.churn)."""

from __future__ import annotations

from bench import churn
from bench.report import Table


def run(quick: bool) -> list[Table]:
    return churn.run(quick, split_cores=True)
