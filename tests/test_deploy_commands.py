"""Every container's command line in the rendered deployment is one its program accepts, and
every probe and Service port is a port that program binds with those arguments.

The programs judge: mountdns-sync's and mountdns-backend's own parsers, pdns_server itself
(`--config=check`, and `--config=current` for what it will bind), and redis-server (the
Redis arguments run for real in test_deploy_redis.py).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from mountdns.settings import check_redis_url, parse_bind
from mountdns.testing.deploy import OVERLAYS, REPO, container, containers, find, of_kind, render, selects
from pdns_backend.cli import build_parser as backend_parser
from sync.config import build_parser as sync_parser
from sync.config import settings_from_args

OVERLAY_NAMES = sorted(OVERLAYS)
SECRETS = {"redis-password": "primary-secret", "redis-replica-password": "replica-secret",
           "pdns-api-key": "api-secret"}
FIELDS = {"metadata.name": "pod-0", "metadata.namespace": "mountdns"}
ANY_ADDRESS = {"0.0.0.0", "::", "[::]"}


def _options(parser) -> set[str]:
    return set(parser._option_string_actions)


def _parse(argv: list[str], parser):
    """The parser's arguments; a flag it does not know fails the test (argparse would exit 2)."""
    unknown = sorted({a.split("=", 1)[0] for a in argv if a.startswith("--") and a.split("=", 1)[0]
                      not in _options(parser)})
    assert not unknown, f"flags {parser.prog} does not know: {unknown}"
    return parser.parse_args(argv)


def _environment(monkeypatch, c, docs) -> dict:
    env = c.env(docs, SECRETS, FIELDS)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


# --- mountdns-sync -------------------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_sync_command_is_accepted_by_the_sync_parser(overlay, monkeypatch):
    docs = render(overlay)
    sync = container(docs, "mountdns-sync", "sync")
    env = _environment(monkeypatch, sync, docs)
    argv = sync.argv(env)
    assert argv[0] == "mountdns-sync"
    assert "$(" not in " ".join(argv), "every $(VAR) names a variable of the container"
    settings = settings_from_args(_parse(argv[1:], sync_parser()))
    assert [z.name for z in settings.zones] == ["domain.foo.bar"]
    assert settings.redis_url == "redis://:primary-secret@redis-primary:6379/0"
    assert settings.manifests is None and settings.kubeconfig is None, "in-cluster configuration"
    assert settings.owner_id == "mountdns-sync"
    assert settings.leader_elect and settings.lease_namespace == "mountdns" and settings.lease_name == "mountdns-sync"
    assert settings.metrics_bind == ("0.0.0.0", 9153)
    # The sync never calls PowerDNS: each DNS pod's backend purges its own.
    assert "--pdns-api-url" not in _options(sync_parser())
    if overlay == "ha":
        assert settings.redis_target.sentinels == (("redis-sentinel", 26379),)
        assert settings.redis_target.master == "mountdns"
        assert settings.redis_target.password == "primary-secret"
    else:
        assert settings.redis_target.sentinels == ()


# --- mountdns-backend ----------------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_backend_command_is_accepted_by_the_backend_parser(overlay, monkeypatch):
    docs = render(overlay)
    backend = container(docs, "mountdns-dns", "backend")
    env = _environment(monkeypatch, backend, docs)
    argv = backend.argv(env)
    assert argv[0] == "mountdns-backend"
    args = _parse(argv[1:], backend_parser())
    assert parse_bind(args.bind)[0] == "127.0.0.1", "the backend answers lookups on localhost only"
    check_redis_url(args.redis_url)
    assert args.redis_url == "redis://:replica-secret@127.0.0.1:6379/0"
    assert not args.redis_sentinel and not args.redis_sentinel_master, "it reads the pod's own replica"
    assert args.pdns_api_url == "http://127.0.0.1:8081" and args.pdns_api_key == SECRETS["pdns-api-key"]
    assert parse_bind(args.metrics_bind) == ("0.0.0.0", 9154)
    assert backend.ports()["metrics"]["containerPort"] == 9154


# --- PowerDNS ------------------------------------------------------------------------------------------

def _pdns_argv(docs, tmp_path, *mode: str) -> list[str]:
    """pdns_server (the installed one) with the container's arguments, reading pdns.conf from
    the rendered ConfigMap in a temporary config dir."""
    pdns = container(docs, "mountdns-dns", "pdns")
    (configmap,) = [find(docs, "ConfigMap", v["configMap"]["name"]) for v in pdns.pod["spec"]["volumes"]
                    if v["name"] == "pdns-config"]
    (tmp_path / "pdns.conf").write_text(configmap["data"]["pdns.conf"])
    argv = pdns.argv(pdns.env(docs, SECRETS, FIELDS))
    assert argv[0] == "/usr/local/sbin/pdns_server", "the official image's binary, not its start-up script"
    args = [f"--config-dir={tmp_path}" if a.startswith("--config-dir=") else a for a in argv[1:]]
    return ["pdns_server", *args, *mode]


@pytest.mark.integration
@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_pdns_accepts_pdns_conf_with_the_containers_arguments(overlay, tmp_path):
    # --config=check rejects unknown settings and bad values; run on the installed 4.7.
    result = subprocess.run(_pdns_argv(render(overlay), tmp_path, "--config=check"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _pdns_settings(docs, tmp_path) -> dict[str, str]:
    """What pdns_server will run with: `--config=current` prints every setting, commented
    out ("# name=value") when it is the default."""
    result = subprocess.run(_pdns_argv(docs, tmp_path, "--config=current"), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    settings: dict[str, str] = {}
    for line in result.stdout.splitlines():
        m = re.match(r"^(# )?([a-z0-9-]+)=(.*)$", line)
        if m and (not m[1] or m[2] not in settings):
            settings[m[2]] = m[3]
    return settings


# --- ports ---------------------------------------------------------------------------------------------

def _binds(c, docs, tmp_path) -> set[tuple[str, int, str]]:
    """(address, port, protocol) that the container's process binds with its arguments."""
    env = c.env(docs, SECRETS, FIELDS)
    argv = c.argv(env)
    program = argv[0].rsplit("/", 1)[-1]
    if program == "pdns_server":
        s = _pdns_settings(docs, tmp_path)
        dns = {(a.strip(), int(s["local-port"]), proto) for a in re.split(r"[,\s]+", s["local-address"])
               if a.strip() for proto in ("UDP", "TCP")}
        return dns | {(s["webserver-address"], int(s["webserver-port"]), "TCP")} if s["webserver"] == "yes" else dns
    if program == "mountdns-backend":
        args = _parse(argv[1:], backend_parser())
        binds = {(*parse_bind(args.bind), "TCP")}
        return binds | ({(*parse_bind(args.metrics_bind), "TCP")} if args.metrics_bind else set())
    if program == "mountdns-sync":
        # --metrics-bind HOST:PORT (default 127.0.0.1:9153) serves /healthz, /readyz, /metrics.
        given = [a.split("=", 1)[1] for a in argv if a.startswith("--metrics-bind=")]
        host, port = parse_bind(given[-1] if given else "127.0.0.1:9153")
        return {(host, port, "TCP")}
    if program in ("redis-server", "redis-sentinel") or argv[:2] == ["sh", "/scripts/start-redis.sh"]:
        port = int(argv[argv.index("--port") + 1])
        binds = argv[argv.index("--bind") + 1:argv.index("--bind") + 2] if "--bind" in argv else ["0.0.0.0"]
        return {(binds[0], port, "TCP")}
    raise AssertionError(f"{c.name}: no rule for what {program} binds")


def _probe_ports(c) -> list[tuple[str, int | str, str]]:
    """(kind, port, probe) for every probe: network probes by port, exec probes by the
    port they name on localhost."""
    found = []
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.spec.get(probe_name)
        if not probe:
            continue
        if "httpGet" in probe or "tcpSocket" in probe:
            found.append(("network", (probe.get("httpGet") or probe.get("tcpSocket"))["port"], probe_name))
        else:
            command = " ".join(probe["exec"]["command"])
            ports = re.findall(r"127\.0\.0\.1:(\d+)|-p,? (\d+)", command) or []
            assert ports, f"{c.name}: {probe_name} names no port"
            found += [("local", int(a or b), probe_name) for a, b in ports]
    return found


@pytest.mark.integration
@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_probe_and_service_port_is_one_the_process_binds(overlay, tmp_path):
    docs = render(overlay)
    bound = {}
    for c in containers(docs, init=False):
        bound[c.name] = _binds(c, docs, tmp_path)
        named = c.ports()
        for port in c.spec.get("ports", []):
            proto = port.get("protocol", "TCP")
            assert any(p == port["containerPort"] and pr == proto and a not in ("127.0.0.1", "::1")
                       for a, p, pr in bound[c.name]), \
                f"{c.name}: declares {port['containerPort']}/{proto}, binds {sorted(bound[c.name])}"
        for kind, port, probe_name in _probe_ports(c):
            if kind == "network":
                number = named[port]["containerPort"] if isinstance(port, str) else port
                assert any(p == number and a in ANY_ADDRESS for a, p, _ in bound[c.name]), \
                    f"{c.name}: {probe_name} on {port}, the kubelet cannot reach {sorted(bound[c.name])}"
            else:
                assert any(p == port for _, p, _ in bound[c.name]), \
                    f"{c.name}: {probe_name} asks port {port}, binds {sorted(bound[c.name])}"
    for service in of_kind(docs, "Service"):
        backends = [c for c in containers(docs, init=False) if selects({"matchLabels": service["spec"]["selector"]},
                                                                       c.labels)]
        assert backends, f"Service/{service['metadata']['name']} selects no pod"
        for sp in service["spec"]["ports"]:
            target, proto = sp.get("targetPort", sp["port"]), sp.get("protocol", "TCP")
            serving = [c for c in backends if (isinstance(target, str) and target in c.ports()
                                               and c.ports()[target].get("protocol", "TCP") == proto)
                       or target in [p["containerPort"] for p in c.spec.get("ports", [])]]
            assert len(serving) == 1, f"Service/{service['metadata']['name']} port {sp}"
            number = serving[0].ports()[target]["containerPort"] if isinstance(target, str) else target
            assert any(p == number and pr == proto and a in ANY_ADDRESS for a, p, pr in bound[serving[0].name]), \
                f"Service/{service['metadata']['name']} -> {serving[0].name}:{number}/{proto}"


def test_nothing_but_pdns_and_metrics_leaves_the_dns_pod(tmp_path):
    docs = render("base")
    replica = container(docs, "mountdns-dns", "redis-replica")
    assert {a for a, _, _ in _binds(replica, docs, tmp_path)} == {"127.0.0.1"}
    assert not replica.spec.get("ports")
    backend = container(docs, "mountdns-dns", "backend")
    lookups = parse_bind(_parse(backend.argv(backend.env(docs, SECRETS, FIELDS))[1:], backend_parser()).bind)
    assert lookups[0] == "127.0.0.1", "lookups only from PowerDNS in the pod"
    outside = {(a, p) for a, p, _ in _binds(backend, docs, tmp_path) if a != "127.0.0.1"}
    assert outside == {("0.0.0.0", 9154)} and list(backend.ports()) == ["metrics"], "only /metrics leaves"


def test_prometheus_is_told_of_the_backends_and_powerdns_metrics():
    docs = render("base")
    backend = container(docs, "mountdns-dns", "backend")
    annotations = backend.pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == backend.ports()["metrics"]["containerPort"]
    service = find(docs, "Service", "mountdns-dns-pdns-metrics")
    pdns = container(docs, "mountdns-dns", "pdns")
    assert selects({"matchLabels": service["spec"]["selector"]}, pdns.labels)
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert service["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert int(service["metadata"]["annotations"]["prometheus.io/port"]) == pdns.ports()["pdns-http"]["containerPort"]


def test_pdns_api_is_keyed_from_the_secret_and_only_fenced_addresses_may_ask(tmp_path):
    settings = _pdns_settings(render("base"), tmp_path)
    assert settings["api"] == "yes" and settings["api-key"] == SECRETS["pdns-api-key"]
    allowed = [a.strip() for a in settings["webserver-allow-from"].split(",")]
    assert "0.0.0.0/0" not in allowed and "::/0" not in allowed


# Settings that 4.9 and later no longer accept (docs/pdns-versions.md, from the upstream
# upgrade notes): pdns_server refuses to start with an unknown setting.
REMOVED_AFTER_4_7 = {"allow-unsigned-supermaster", "master", "slave", "slave-cycle-interval", "slave-renotify",
                     "superslave"}
# Values that changed meaning or are refused since: name -> refused values.
REFUSED_VALUES_AFTER_4_7 = {"lmdb-sync-mode": {"mapasync"}}


def test_pdns_conf_uses_no_setting_that_4_9_or_later_removed():
    conf = dict(line.split("=", 1) for line in (REPO / "pdns" / "pdns.conf").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    assert not set(conf) & REMOVED_AFTER_4_7
    for name, refused in REFUSED_VALUES_AFTER_4_7.items():
        assert conf.get(name) not in refused
    # The 4.5+ names of the replaced ones are what this file says instead.
    assert conf["primary"] == "no" and conf["secondary"] == "no"
