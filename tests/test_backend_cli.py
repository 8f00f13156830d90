"""mountdns-backend's command line: flags, their validation, and the gunicorn settings
they become."""

import pytest

from mountdns.settings import mask_url
from pdns_backend.cli import _Gunicorn, build_parser, gunicorn_options, main
from pdns_backend.worker import EventLoopWorker


def test_gunicorn_gets_our_worker_class_by_import_with_the_timeouts():
    args = build_parser().parse_args(["--request-timeout", "2.5", "--idle-timeout", "60"])
    options = gunicorn_options(args, "127.0.0.1", 8053)
    worker = options["worker_class"]
    assert issubclass(worker, EventLoopWorker)
    assert (worker.request_timeout, worker.idle_timeout) == (2.5, 60.0)


def test_gunicorn_runs_without_a_control_socket():
    options = gunicorn_options(build_parser().parse_args([]), "127.0.0.1", 8053)
    app = _Gunicorn(lambda: None, options)
    assert app.cfg.control_socket_disable is True
    assert app.cfg.worker_class is options["worker_class"]


def test_timeouts_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MOUNTDNS_REQUEST_TIMEOUT", "1.5")
    assert build_parser().parse_args([]).request_timeout == 1.5


@pytest.mark.parametrize("flag, value", [("--request-timeout", "0"), ("--idle-timeout", "-1")])
def test_bad_timeouts_exit_2_naming_the_flag(capsys, flag, value):
    assert main([flag, value]) == 2
    assert flag in capsys.readouterr().err


def test_a_bad_redis_url_is_reported_with_its_password_masked(capsys):
    assert main(["--redis-url", "http://user:hunter2@redis:6379/0?password=hunter3"]) == 2
    err = capsys.readouterr().err
    assert "--redis-url" in err and "hunter2" not in err and "hunter3" not in err


@pytest.mark.parametrize("url, masked", [
    ("redis://:s3cret@redis:6379/0", "redis://:****@redis:6379/0"),
    ("redis://user:s3cret@redis/0", "redis://user:****@redis/0"),
    ("redis://redis:6379/0?password=s3cret&db=1", "redis://redis:6379/0?password=****&db=1"),
    ("unix:///run/redis.sock?db=0&password=s3cret", "unix:///run/redis.sock?db=0&password=****"),
    ("redis://redis:6379/0", "redis://redis:6379/0"),
])
def test_passwords_in_urls_are_masked_in_either_place(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize("flag, value", [("--zone-table-max-age", "-0.1"), ("--zone-table-max-age", "nan"),
                                         ("--zone-table-max-age", "61"), ("--pdns-socket", "/tmp/" + "x" * 120)])
def test_a_bad_zone_table_age_or_socket_path_exits_2_naming_the_flag(capsys, flag, value):
    assert main([flag, value]) == 2
    assert flag in capsys.readouterr().err


def test_the_unix_socket_is_one_more_gunicorn_address_and_the_zone_table_age_comes_from_the_environment(
        monkeypatch):
    monkeypatch.setenv("MOUNTDNS_ZONE_TABLE_MAX_AGE", "0.5")
    args = build_parser().parse_args(["--pdns-socket", "/run/mountdns/backend.sock"])
    assert args.zone_table_max_age == 0.5
    assert gunicorn_options(args, "127.0.0.1", 8053)["bind"] == ["127.0.0.1:8053", "unix:/run/mountdns/backend.sock"]
    assert gunicorn_options(build_parser().parse_args([]), "127.0.0.1", 8053)["bind"] == ["127.0.0.1:8053"]
