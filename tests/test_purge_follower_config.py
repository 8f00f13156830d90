"""mountdns-backend's purge follower flags: validated before anything starts, every error
naming its flag (exit 2), also read from MOUNTDNS_* variables."""

from __future__ import annotations

import pytest

from mountdns.settings import ConfigError
from pdns_backend.cli import build_parser, main, purge_settings
from pdns_backend.purge_follower import REPEAT_AFTER


def settings(*argv):
    return purge_settings(build_parser().parse_args(list(argv)))


def test_without_an_api_url_there_is_no_follower():
    assert settings() is None


def test_api_url_and_key_with_the_default_repeats():
    assert settings("--pdns-api-url", "http://pdns:8081/", "--pdns-api-key", "k") == (
        "http://pdns:8081", "k", REPEAT_AFTER, None)


def test_flags_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MOUNTDNS_PDNS_API_URL", "http://127.0.0.1:8081")
    monkeypatch.setenv("MOUNTDNS_PDNS_API_KEY", "s3cret")
    monkeypatch.setenv("MOUNTDNS_PURGE_REPEAT_AFTER", "0.2,1.5")
    monkeypatch.setenv("MOUNTDNS_PURGE_METRICS_BIND", "0.0.0.0:9153")
    assert settings() == ("http://127.0.0.1:8081", "s3cret", (0.2, 1.5), ("0.0.0.0", 9153))


BAD = {
    "url without key": (["--pdns-api-url", "http://pdns:8081"], "--pdns-api-key"),
    "key without url": (["--pdns-api-key", "k"], "--pdns-api-url"),
    "https (pdns has no TLS)": (["--pdns-api-url", "https://pdns:8081", "--pdns-api-key", "k"], "--pdns-api-url"),
    "no scheme": (["--pdns-api-url", "pdns:8081", "--pdns-api-key", "k"], "--pdns-api-url"),
    "zero repeat": (["--pdns-api-url", "http://p:1", "--pdns-api-key", "k", "--purge-repeat-after", "0"],
                    "--purge-repeat-after"),
    "negative repeat": (["--purge-repeat-after", "-1"], "--purge-repeat-after"),
    "metrics without a follower": (["--purge-metrics-bind", "127.0.0.1:9153"], "--purge-metrics-bind"),
    "metrics bind without port": (["--pdns-api-url", "http://p:1", "--pdns-api-key", "k",
                                   "--purge-metrics-bind", "localhost"], "--purge-metrics-bind"),
}


@pytest.mark.parametrize("argv, flag", BAD.values(), ids=BAD.keys())
def test_bad_purge_configuration_names_the_flag(argv, flag):
    with pytest.raises(ConfigError) as caught:
        settings(*argv)
    assert str(caught.value).startswith(flag + ": ")


@pytest.mark.parametrize("argv, flag", [
    (["--pdns-api-url", "http://pdns:8081"], "--pdns-api-key"),
    (["--redis-sentinel", "s1:26379"], "--redis-sentinel-master"),
])
def test_the_backend_exits_2_naming_the_flag(capsys, argv, flag):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"mountdns-backend: {flag}: ")
