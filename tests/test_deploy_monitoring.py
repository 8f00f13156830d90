"""deploy/monitoring/: the alert rules pass promtool's checks and its unit tests, and every
query of the Grafana dashboard is PromQL that promtool parses, over metrics that exist."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry

from mountdns.testing.deploy import DEPLOY, REPO
from pdns_backend.metrics import BackendMetrics
from pdns_backend.purge_follower import FollowerMetrics
from sync.metrics import SyncMetrics

MONITORING = DEPLOY / "monitoring"
PROMTOOL = REPO / ".tools" / "bin" / "promtool"
# What PowerDNS's /metrics serves (pdns_auth_ + the statistic's name): the ones used here.
PDNS_METRICS = {"pdns_auth_udp_queries", "pdns_auth_tcp_queries", "pdns_auth_servfail_packets",
                "pdns_auth_timedout_packets", "pdns_auth_latency", "pdns_auth_packetcache_hit",
                "pdns_auth_packetcache_miss", "pdns_auth_query_cache_hit", "pdns_auth_query_cache_miss"}
_METRIC = re.compile(r"\b((?:mountdns|pdns_auth)_[a-z0-9_]+)\b")
_SUFFIXES = ("_bucket", "_count", "_sum")


def promtool(*args: str, cwd=MONITORING) -> subprocess.CompletedProcess:
    if not PROMTOOL.exists():
        pytest.fail("promtool is missing: run scripts/bootstrap (it unpacks Debian's into .tools/bin)")
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def dashboard() -> dict:
    return json.loads((MONITORING / "dashboard.json").read_text())


def dashboard_queries() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard()["panels"] for t in p.get("targets", [])]


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


def test_alert_rules_pass_promtool_check():
    result = promtool("check", "rules", "alerts.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_promtool_unit_tests():
    result = promtool("test", "rules", "alerts.test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it():
    tests = yaml.safe_load((MONITORING / "alerts.test.yaml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]}
    assert fired == {name for name, _ in alert_queries()}


def test_every_dashboard_query_is_promql_that_promtool_parses(tmp_path):
    # promtool parses PromQL in rule files only: each query becomes a recording rule.
    queries = dashboard_queries()
    assert len(queries) >= 10
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]}]}
    (tmp_path / "dashboard-rules.yaml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", "dashboard-rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_grafana_json_with_a_datasource_variable_and_panels_that_do_not_overlap():
    board = dashboard()
    assert board["uid"] == "mountdns"
    (variable,) = board["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    cells = {}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${" + variable["name"] + "}", p["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = p["title"]


def _metric_names(queries) -> set[str]:
    names = set()
    for _, expr in queries:
        for name in _METRIC.findall(expr):
            for suffix in _SUFFIXES:
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            names.add(name)
    return names


def test_powerdns_metrics_used_are_ones_powerdns_serves():
    used = {n for n in _metric_names(dashboard_queries() + alert_queries()) if n.startswith("pdns_auth_")}
    assert used and used <= PDNS_METRICS


def _served(*registries) -> set[str]:
    served = set()
    for registry in registries:
        # Families with labels have no samples until a label value is set: count their names too.
        served |= {s.name for family in registry.collect() for s in family.samples}
        served |= {family.name for family in registry.collect()}
        served |= {family.name + "_total" for family in registry.collect() if family.type == "counter"}
    return served | {name[: -len(suffix)] for name in served for suffix in _SUFFIXES if name.endswith(suffix)}


def test_sync_metrics_used_are_ones_the_sync_registers():
    registry = CollectorRegistry()
    SyncMetrics(registry)
    served = _served(registry)
    used = {n for n in _metric_names(dashboard_queries() + alert_queries()) if n.startswith("mountdns_sync_")}
    assert used, "the dashboard and alerts show nothing of the sync"
    assert used <= served, f"not registered by the sync: {sorted(used - served)}"


def test_backend_metrics_used_are_ones_the_backend_serves():
    # A backend's /metrics: its workers' lookup metrics and its master's purge follower.
    served = _served(BackendMetrics().registry, FollowerMetrics().registry)
    used = {n for n in _metric_names(dashboard_queries() + alert_queries()) if n.startswith("mountdns_backend_")}
    assert {"mountdns_backend_lookups_total", "mountdns_backend_lookup_duration_seconds",
            "mountdns_backend_redis_errors_total", "mountdns_backend_purges_sent_total",
            "mountdns_backend_purges_failed_total", "mountdns_backend_announcement_lag_seconds"} <= used, sorted(used)
    assert used <= served, f"not served by the backend: {sorted(used - served)}"
