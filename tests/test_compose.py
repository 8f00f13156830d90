"""docker-compose.yml cannot run here (no Docker engine): check that it says what the tests
run, with the same parsers, files and ports."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mountdns.settings import parse_bind
from mountdns.testing.deploy import containers, render

from pdns_backend.app import DEFAULTS as BACKEND_DEFAULTS
from pdns_backend.cli import build_parser as backend_parser
from pdns_backend.cli import purge_settings
from sync.config import build_parser as sync_parser
from sync.config import settings_from_args

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_backend_command_parses_and_listens_where_pdns_looks(monkeypatch):
    command = SERVICES["backend"]["command"]
    assert command[0] == "mountdns-backend"
    for name, value in SERVICES["backend"]["environment"].items():
        monkeypatch.setenv(name, value)
    args = backend_parser().parse_args(command[1:])
    assert purge_settings(args)[:2] == ("http://pdns:8081", "change-me")  # it purges pdns's caches
    metrics_port = parse_bind(args.metrics_bind)[1]
    assert f"{metrics_port}:{metrics_port}" in SERVICES["backend"]["ports"]
    port = args.bind.rsplit(":", 1)[1]
    connection = next(a for a in SERVICES["pdns"]["command"] if a.startswith("--remote-connection-string="))
    assert f"url=http://backend:{port}{BACKEND_DEFAULTS['URL_PREFIX']}," in connection


def test_sync_command_is_valid_configuration(monkeypatch):
    command = SERVICES["sync"]["command"]
    assert command[0] == "mountdns-sync"
    for name, value in SERVICES["sync"]["environment"].items():
        monkeypatch.setenv(name, value)
    # /manifests is the mounted examples/ directory.
    mount = next(v for v in SERVICES["sync"]["volumes"] if v.endswith(":/manifests:ro"))
    argv = [a.replace("/manifests", str(REPO / mount.split(":")[0])) if a.startswith("--manifests") else a
            for a in command[1:]]
    settings = settings_from_args(sync_parser().parse_args(argv))
    assert [z.name for z in settings.zones] == ["domain.foo.bar"]
    assert settings.owner_id == "compose"
    assert settings.metrics_bind == ("0.0.0.0", 9153) and "9153:9153" in SERVICES["sync"]["ports"]


def test_pdns_is_the_supported_release_deploy_runs():
    (deployed,) = {c.spec["image"] for c in containers(render("base")) if c.spec["name"] == "pdns"}
    assert SERVICES["pdns"]["image"] == deployed
    major, minor = (int(x) for x in deployed.rsplit(":", 1)[1].split(".")[:2])
    assert (major, minor) >= (4, 9)


@pytest.mark.integration
def test_pdns_accepts_the_compose_command_and_listens_on_the_published_port(tmp_path):
    # The installed pdns_server (4.7) judges the arguments; every one is also a 5.1 setting
    # (docs/pdns-versions.md). --config=current prints what it would run with.
    command = SERVICES["pdns"]["command"]
    (tmp_path / "pdns.conf").write_text((REPO / "pdns" / "pdns.conf").read_text())
    argv = ["pdns_server", *[f"--config-dir={tmp_path}" if a.startswith("--config-dir=") else a for a in command]]
    assert subprocess.run([*argv, "--config=check"], capture_output=True, text=True, timeout=60).returncode == 0
    current = subprocess.run([*argv, "--config=current"], capture_output=True, text=True, timeout=60).stdout
    port = re.search(r"^local-port=(\d+)$", current, re.M).group(1)
    assert {f"{port}:{port}/udp", f"{port}:{port}/tcp"} <= set(SERVICES["pdns"]["ports"])


def test_pdns_runs_the_shipped_config_with_the_api_the_backend_purges():
    volumes = SERVICES["pdns"]["volumes"]
    assert "./pdns/pdns.conf:/etc/mountdns/pdns.conf:ro" in volumes
    assert "--config-dir=/etc/mountdns" in SERVICES["pdns"]["command"]
    conf = dict(line.split("=", 1) for line in (REPO / "pdns" / "pdns.conf").read_text().splitlines()
                if line and not line.startswith("#"))
    assert conf["launch"] == "remote" and conf["api"] == "yes" and conf["webserver-port"] == "8081"
    assert conf["api-key"] == SERVICES["backend"]["environment"]["MOUNTDNS_PDNS_API_KEY"]
