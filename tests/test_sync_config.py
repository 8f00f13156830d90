"""The sync daemon's configuration: every flag also from MOUNTDNS_*, the command line
winning over the environment, the documented defaults, and one ConfigError per bad
setting whose message starts with the flag at fault (what an operator reads on exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mountdns.settings import ENV_PREFIX, ConfigError, env_name
from mountdns.records import Zone
from sync.config import SyncSettings, build_parser, settings_from_args


def parse(argv: list[str]) -> SyncSettings:
    """Settings from flags, as `mountdns-sync` builds them."""
    return settings_from_args(build_parser().parse_args(argv))


BIN = Path(sys.executable).parent
ZONE_ARGS = ["--zone", "example.com"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No MOUNTDNS_* variable from the developer's shell may leak into a test."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def kubeconfig(tmp_path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    return str(path)


def _zone(name, nameservers=("ns1.example.com",), hostmaster=None, ttl=30) -> Zone:
    return Zone(name=name, nameservers=nameservers, hostmaster=hostmaster or f"hostmaster.{name}",
                ttl=ttl, minimum=ttl)


# (environment, how to read the setting, the value expected); every flag of the parser
# appears here (test_every_flag_has_an_environment_case checks it).
ENV_CASES = [
    ({"MOUNTDNS_ZONE": "Example.COM., other.org"}, lambda s: [z.name for z in s.zones],
     ["example.com", "other.org"]),
    ({"MOUNTDNS_NAMESERVER": "ns1.example.com,ns2.example.com"}, lambda s: s.zones[0].nameservers,
     ("ns1.example.com", "ns2.example.com")),
    ({"MOUNTDNS_HOSTMASTER": "admin@example.com"}, lambda s: s.zones[0].hostmaster, "admin.example.com"),
    ({"MOUNTDNS_TTL": "60"}, lambda s: (s.zones[0].ttl, s.zones[0].minimum), (60, 60)),
    ({"MOUNTDNS_REDIS_URL": "redis://redis:6380/2"}, lambda s: s.redis_url, "redis://redis:6380/2"),
    ({"MOUNTDNS_KEY_PREFIX": "dns:"}, lambda s: s.key_prefix, "dns:"),
    ({"MOUNTDNS_OWNER_ID": "cluster-east"}, lambda s: s.owner_id, "cluster-east"),
    ({"MOUNTDNS_KUBECONFIG": "<kubeconfig>"}, lambda s: s.kubeconfig, "<kubeconfig>"),
    ({"MOUNTDNS_NAMESPACE": "prod"}, lambda s: s.namespace, "prod"),
    ({"MOUNTDNS_MANIFESTS": "<dir>"}, lambda s: s.manifests, "<dir>"),
    ({"MOUNTDNS_RESYNC_INTERVAL": "12.5"}, lambda s: s.resync_interval, 12.5),
    ({"MOUNTDNS_MOUNTED_STATUS": "READY"}, lambda s: s.mounted_status, "READY"),
    ({"MOUNTDNS_MOUNT_TYPES": "odl,netconf"}, lambda s: s.mount_types, frozenset({"odl", "netconf"})),
    ({"MOUNTDNS_NODE_ADDRESS_TYPE": "InternalIP,ExternalIP"}, lambda s: s.node_address_types,
     ("InternalIP", "ExternalIP")),
    ({"MOUNTDNS_REDIS_SENTINEL": "s1:26379,s2:26379", "MOUNTDNS_REDIS_SENTINEL_MASTER": "dns"},
     lambda s: (s.redis_target.sentinels, s.redis_target.master), ((("s1", 26379), ("s2", 26379)), "dns")),
    ({"MOUNTDNS_COALESCE_SECONDS": "0.5"}, lambda s: s.coalesce_seconds, 0.5),
    ({"MOUNTDNS_WRITE_CHUNK_KEYS": "20000"}, lambda s: s.write_chunk_keys, 20000),
    ({"MOUNTDNS_GC_ROUND_NAMES": "5000"}, lambda s: s.gc_round_names, 5000),
    ({"MOUNTDNS_WATCH_IDLE_TIMEOUT": "30"}, lambda s: s.watch_idle_timeout, 30.0),
    ({"MOUNTDNS_LOG_LEVEL": "DEBUG"}, lambda s: s.log_level, "debug"),
    ({"MOUNTDNS_STATUS_QPS": "2.5"}, lambda s: s.status_qps, 2.5),
    ({"MOUNTDNS_ONCE": "true"}, lambda s: s.once, True),
    ({"MOUNTDNS_DRY_RUN": "1"}, lambda s: s.dry_run, True),
    ({"MOUNTDNS_LEADER_ELECT": "true"}, lambda s: s.leader_elect, True),
    ({"MOUNTDNS_LEADER_ELECT_LEASE_NAME": "dns-sync.a"}, lambda s: s.lease_name, "dns-sync.a"),
    ({"MOUNTDNS_LEADER_ELECT_NAMESPACE": "infra"}, lambda s: s.lease_namespace, "infra"),
    ({"MOUNTDNS_LEADER_ELECT_IDENTITY": "pod-1"}, lambda s: s.identity, "pod-1"),
    ({"MOUNTDNS_LEADER_ELECT_LEASE_DURATION": "30"}, lambda s: s.lease_duration, 30.0),
    ({"MOUNTDNS_LEADER_ELECT_RENEW_DEADLINE": "2.5"}, lambda s: s.renew_deadline, 2.5),
    ({"MOUNTDNS_LEADER_ELECT_RETRY_PERIOD": "0.5"}, lambda s: s.retry_period, 0.5),
    ({"MOUNTDNS_METRICS_BIND": "0.0.0.0:9200"}, lambda s: s.metrics_bind, ("0.0.0.0", 9200)),
    ({"MOUNTDNS_ALLOW_SPECIAL_ADDRESSES": "yes"}, lambda s: s.allow_special_addresses, True),
    ({"MOUNTDNS_PUBLISH_UNREADY_PODS": "true"}, lambda s: s.publish_unready_pods, True),
    ({"MOUNTDNS_SOURCE": "pod,container"}, lambda s: s.sources, ("pod", "container")),
]


def _placeholders(value, tmp_path, kubeconfig):
    return value.replace("<kubeconfig>", kubeconfig).replace("<dir>", str(tmp_path)) \
        if isinstance(value, str) else value


def test_every_flag_has_an_environment_case():
    flags = {a.option_strings[-1] for a in build_parser()._actions if a.option_strings[-1] != "--help"}
    covered = {name for env, _, _ in ENV_CASES for name in env}
    assert {env_name(f) for f in flags} == covered


@pytest.mark.parametrize("env, read, expected", ENV_CASES, ids=[next(iter(c[0])) for c in ENV_CASES])
def test_flag_is_read_from_its_environment_variable(monkeypatch, tmp_path, kubeconfig, env, read, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, _placeholders(value, tmp_path, kubeconfig))
    settings = parse([] if "MOUNTDNS_ZONE" in env else ZONE_ARGS)
    assert read(settings) == _placeholders(expected, tmp_path, kubeconfig)


def test_command_line_wins_over_environment(monkeypatch):
    monkeypatch.setenv("MOUNTDNS_ZONE", "a.com,b.com")
    monkeypatch.setenv("MOUNTDNS_TTL", "60")
    monkeypatch.setenv("MOUNTDNS_REDIS_URL", "redis://from-env:6379/0")
    monkeypatch.setenv("MOUNTDNS_NODE_ADDRESS_TYPE", "ExternalIP")
    settings = parse(["--zone", "c.com", "--ttl", "90", "--redis-url", "redis://from-cli:6379/1",
                      "--node-address-type", "InternalIP"])
    assert [z.name for z in settings.zones] == ["c.com"]
    assert settings.zones[0].ttl == 90
    assert settings.redis_url == "redis://from-cli:6379/1"
    assert settings.node_address_types == ("InternalIP",)


def test_environment_fills_what_the_command_line_leaves_out(monkeypatch):
    monkeypatch.setenv("MOUNTDNS_TTL", "45")
    settings = parse(["--zone", "c.com"])
    assert (settings.zones[0].name, settings.zones[0].ttl) == ("c.com", 45)


def test_defaults_make_the_first_zone_the_default_with_ns1_and_hostmaster():
    settings = parse(["--zone", "Example.COM.", "--zone", "other.org"])
    assert settings == SyncSettings(zones=(
        _zone("example.com"),
        # The help promises ns1.<first zone> for every zone when --nameserver is not given.
        _zone("other.org", nameservers=("ns1.example.com",)),
    ))
    assert (settings.redis_url, settings.key_prefix, settings.resync_interval) == \
        ("redis://127.0.0.1:6379/0", "mountdns:", 300.0)
    assert (settings.node_address_types, settings.mount_types, settings.mounted_status) == \
        (("InternalIP",), frozenset(), "MOUNTED")
    assert (settings.once, settings.dry_run, settings.redis_target.sentinels, settings.log_level) == \
        (False, False, (), "info")


def test_metrics_are_served_on_localhost_9153_by_default_and_off_or_empty_disables_them(monkeypatch):
    assert parse(ZONE_ARGS).metrics_bind == ("127.0.0.1", 9153)
    assert parse(ZONE_ARGS + ["--metrics-bind", "[::1]:9300"]).metrics_bind == ("[::1]", 9300)
    assert parse(ZONE_ARGS + ["--metrics-bind", "off"]).metrics_bind is None
    assert parse(ZONE_ARGS + ["--metrics-bind", ""]).metrics_bind is None
    monkeypatch.setenv("MOUNTDNS_METRICS_BIND", "OFF")
    assert parse(ZONE_ARGS).metrics_bind is None
    assert parse(ZONE_ARGS).allow_special_addresses is False


def test_repeated_flags_keep_their_order():
    settings = parse(["--zone", "b.org", "--zone", "a.com", "--nameserver", "ns2.a.com", "--nameserver", "ns1.a.com"])
    assert settings.zones == (_zone("b.org", nameservers=("ns2.a.com", "ns1.a.com")),
                              _zone("a.com", nameservers=("ns2.a.com", "ns1.a.com")))


BAD_CONFIGURATIONS = {
    "no zone": ([], "--zone"),
    "unknown source": (ZONE_ARGS + ["--source", "service"], "--source"),
    "duplicate zone": (["--zone", "a.com", "--zone", "A.com."], "--zone"),
    "zone with an empty label": (["--zone", "a..com"], "--zone"),
    "bad nameserver": (ZONE_ARGS + ["--nameserver", ".."], "--nameserver"),
    "ttl 0": (ZONE_ARGS + ["--ttl", "0"], "--ttl"),
    "ttl too large": (ZONE_ARGS + ["--ttl", str(2**31)], "--ttl"),
    "negative resync interval": (ZONE_ARGS + ["--resync-interval", "-1"], "--resync-interval"),
    "zero resync interval": (ZONE_ARGS + ["--resync-interval", "0"], "--resync-interval"),
    "coalesce too long": (ZONE_ARGS + ["--coalesce-seconds", "11"], "--coalesce-seconds"),
    "write chunks too small": (ZONE_ARGS + ["--write-chunk-keys", "10"], "--write-chunk-keys"),
    "garbage rounds too small": (ZONE_ARGS + ["--gc-round-names", "10"], "--gc-round-names"),
    "zero watch idle timeout": (ZONE_ARGS + ["--watch-idle-timeout", "0"], "--watch-idle-timeout"),
    "watch idle timeout over an hour": (ZONE_ARGS + ["--watch-idle-timeout", "3601"], "--watch-idle-timeout"),
    "negative status rate": (ZONE_ARGS + ["--status-qps", "-1"], "--status-qps"),
    "empty mounted status": (ZONE_ARGS + ["--mounted-status", ""], "--mounted-status"),
    "unknown node address type": (ZONE_ARGS + ["--node-address-type", "PublicIP"], "--node-address-type"),
    "manifests not a directory": (ZONE_ARGS + ["--manifests", "<file>"], "--manifests"),
    "kubeconfig missing": (ZONE_ARGS + ["--kubeconfig", "<missing>"], "--kubeconfig"),
    "sentinel without a master name": (ZONE_ARGS + ["--redis-sentinel", "s1:26379"], "--redis-sentinel-master"),
    "sentinel master without sentinels": (ZONE_ARGS + ["--redis-sentinel-master", "dns"], "--redis-sentinel"),
    "sentinel without a port": (ZONE_ARGS + ["--redis-sentinel", "s1", "--redis-sentinel-master", "dns"],
                                "--redis-sentinel"),
    "redis url with a wrong scheme": (ZONE_ARGS + ["--redis-url", "http://redis:6379"], "--redis-url"),
    "key prefix with a space": (ZONE_ARGS + ["--key-prefix", "a b"], "--key-prefix"),
    "key prefix with a glob": (ZONE_ARGS + ["--key-prefix", "dns*"], "--key-prefix"),
    "unknown log level": (ZONE_ARGS + ["--log-level", "loud"], "--log-level"),
    "renew deadline not below the lease duration": (
        ZONE_ARGS + ["--leader-elect-lease-duration", "10", "--leader-elect-renew-deadline", "10"],
        "--leader-elect-renew-deadline"),
    "retry period not below the renew deadline": (
        ZONE_ARGS + ["--leader-elect-renew-deadline", "2", "--leader-elect-retry-period", "2"],
        "--leader-elect-retry-period"),
    "zero retry period": (ZONE_ARGS + ["--leader-elect-retry-period", "0"], "--leader-elect-retry-period"),
    "negative lease duration": (ZONE_ARGS + ["--leader-elect-lease-duration", "-15"], "--leader-elect-lease-duration"),
    "infinite lease duration": (ZONE_ARGS + ["--leader-elect-lease-duration", "inf"], "--leader-elect-lease-duration"),
    "lease name with upper case": (ZONE_ARGS + ["--leader-elect-lease-name", "MountDNS"], "--leader-elect-lease-name"),
    "lease namespace with a dot": (ZONE_ARGS + ["--leader-elect-namespace", "a.b"], "--leader-elect-namespace"),
    "empty identity": (ZONE_ARGS + ["--leader-elect-identity", " "], "--leader-elect-identity"),
    "leader election with --once": (ZONE_ARGS + ["--leader-elect", "--once"], "--leader-elect"),
    "metrics bind without port": (ZONE_ARGS + ["--metrics-bind", "127.0.0.1"], "--metrics-bind"),
    "metrics bind port out of range": (ZONE_ARGS + ["--metrics-bind", "127.0.0.1:70000"], "--metrics-bind"),
    "owner id with a slash": (ZONE_ARGS + ["--owner-id", "east/1"], "--owner-id"),
    "owner id in upper case": (ZONE_ARGS + ["--owner-id", "East"], "--owner-id"),
    "empty owner id": (ZONE_ARGS + ["--owner-id", ""], "--owner-id"),
    "owner id over 63 characters": (ZONE_ARGS + ["--owner-id", "a" * 64], "--owner-id"),
}


@pytest.mark.parametrize("argv, flag", BAD_CONFIGURATIONS.values(), ids=BAD_CONFIGURATIONS.keys())
def test_bad_configuration_raises_config_error_naming_the_flag(tmp_path, argv, flag):
    (tmp_path / "file").write_text("")
    argv = [a.replace("<file>", str(tmp_path / "file")).replace("<missing>", str(tmp_path / "missing"))
            for a in argv]
    with pytest.raises(ConfigError) as caught:
        parse(argv)
    assert str(caught.value).startswith(flag + ": ")


def test_the_sync_no_longer_takes_a_pdns_api_url(capsys):
    # Backends purge their own PowerDNS now (they follow the sync's announcements).
    with pytest.raises(SystemExit) as caught:
        parse(ZONE_ARGS + ["--pdns-api-url", "http://pdns:8081"])
    assert caught.value.code == 2
    assert "--pdns-api-url" in capsys.readouterr().err


def test_unreadable_environment_value_names_variable_and_flag(monkeypatch):
    monkeypatch.setenv("MOUNTDNS_TTL", "thirty")
    with pytest.raises(ConfigError, match=r"^MOUNTDNS_TTL \(--ttl\): cannot read 'thirty'"):
        parse(ZONE_ARGS)


def test_bad_configuration_from_environment_names_the_flag(monkeypatch):
    monkeypatch.setenv("MOUNTDNS_NODE_ADDRESS_TYPE", "InternalIP,Bogus")
    with pytest.raises(ConfigError, match=r"^--node-address-type: 'Bogus' is not one of"):
        parse(ZONE_ARGS)


def test_describe_masks_redis_password():
    settings = parse(ZONE_ARGS + ["--redis-url", "redis://user:hunter2@redis:6379/0"])
    line = settings.describe()
    assert "redis=redis://user:****@redis:6379/0 " in line
    assert "hunter2" not in line


def test_describe_names_the_sentinels_and_hides_the_password():
    settings = parse(ZONE_ARGS + ["--redis-url", "redis://:hunter2@ignored/3", "--redis-sentinel", "s1:26379",
                                  "--redis-sentinel", "s2:26380", "--redis-sentinel-master", "dns"])
    assert settings.redis_target.password == "hunter2"
    line = settings.describe()
    assert "redis=sentinel s1:26379,s2:26380 master 'dns' db 3 " in line
    assert "hunter2" not in line


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, timeout=30, env=env)


def test_sync_console_script_exits_2_naming_the_bad_flag():
    result = _run_script("mountdns-sync", "--zone", "example.com", "--ttl", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("mountdns-sync: --ttl: ")
    assert result.stdout == ""


def test_sync_console_script_exits_2_on_a_bad_key_prefix_instead_of_a_traceback():
    result = _run_script("mountdns-sync", "--zone", "example.com", "--key-prefix", "a b")
    assert result.returncode == 2
    assert result.stderr.startswith("mountdns-sync: --key-prefix: ")
    assert "Traceback" not in result.stderr


def test_sync_console_script_exits_2_on_a_bad_owner_id():
    result = _run_script("mountdns-sync", "--zone", "example.com", "--owner-id", "East:1")
    assert result.returncode == 2
    assert result.stderr.startswith("mountdns-sync: --owner-id: ")


def test_owner_id_defaults_to_default_and_is_in_the_startup_line():
    settings = parse(ZONE_ARGS)
    assert settings.owner_id == "default"
    assert " owner=default " in settings.describe()


def test_backend_console_script_exits_2_naming_bind():
    result = _run_script("mountdns-backend", "--bind", "nonsense")
    assert result.returncode == 2
    assert "--bind: expected HOST:PORT, got 'nonsense'" in result.stderr


def test_leader_election_is_off_by_default_with_client_go_timings(monkeypatch, tmp_path):
    monkeypatch.setattr("sync.leader.SERVICE_ACCOUNT_NAMESPACE", str(tmp_path / "absent"))
    settings = parse(ZONE_ARGS)
    assert (settings.leader_elect, settings.lease_name, settings.lease_namespace) == (False, "mountdns-sync", "default")
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (15.0, 10.0, 2.0)
    assert "leader_elect=off" in settings.describe()


def test_lease_namespace_defaults_to_the_pods_service_account_namespace(monkeypatch, tmp_path):
    (tmp_path / "namespace").write_text("mountdns-system\n")
    monkeypatch.setattr("sync.leader.SERVICE_ACCOUNT_NAMESPACE", str(tmp_path / "namespace"))
    assert parse(ZONE_ARGS).lease_namespace == "mountdns-system"


def test_default_identity_is_the_hostname_and_unique_per_process():
    import socket
    first, second = parse(ZONE_ARGS).identity, parse(ZONE_ARGS).identity
    assert first.startswith(socket.gethostname() + "_") and second.startswith(socket.gethostname() + "_")
    assert first != second


def test_short_fractional_election_timings_are_accepted_and_described():
    settings = parse(ZONE_ARGS + ["--leader-elect", "--leader-elect-lease-duration", "3",
                                  "--leader-elect-renew-deadline", "2", "--leader-elect-retry-period", "0.5",
                                  "--leader-elect-identity", "sync-a"])
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (3.0, 2.0, 0.5)
    assert "identity=sync-a lease_duration=3.0s renew_deadline=2.0s retry_period=0.5s" in settings.describe()


def test_sync_console_script_exits_2_naming_a_bad_metrics_bind():
    result = _run_script("mountdns-sync", "--zone", "example.com", "--metrics-bind", "9153")
    assert result.returncode == 2
    assert result.stderr.startswith("mountdns-sync: --metrics-bind: expected HOST:PORT")
