"""Load stays on this machine unless a scenario allows otherwise; secrets stay out of reports."""

from __future__ import annotations

import pytest

from harness.core.errors import SafetyError
from harness.core.secrets import redact_url as redact
from harness.targets.address import check_safe, is_loopback_host
from harness.targets.redis import RedisAddress


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["192.0.2.1", "10.0.0.1", "8.8.8.8", "", "no-such-host.invalid"])
def test_not_loopback(host):
    assert not is_loopback_host(host)


def test_remote_refused_unless_allowed():
    with pytest.raises(SafetyError, match="allow_remote: true"):
        check_safe("redis://192.0.2.1:6379/0", allow_remote=False)
    check_safe("redis://192.0.2.1:6379/0", allow_remote=True)
    check_safe("http://127.0.0.1:8080", allow_remote=False)


def test_redact_drops_credentials():
    assert redact("redis://user:s3cret@127.0.0.1:6380/2") == "redis://127.0.0.1:6380/2"
    assert redact("http://127.0.0.1:80/x") == "http://127.0.0.1:80/x"


def test_redis_password_from_environment(monkeypatch):
    monkeypatch.setenv("REDISCLI_AUTH", "pw")
    a = RedisAddress.parse("redis://127.0.0.1:6390/3")
    assert (a.host, a.port, a.db, a.password) == ("127.0.0.1", 6390, 3, "pw")
    assert RedisAddress.parse("redis://:other@127.0.0.1/0").password == "other"


@pytest.mark.parametrize("host", ["*", "0.0.0.0", "::", "10.1.2.3"])
def test_the_master_port_stays_on_loopback_unless_asked(host, capsys):
    from harness.cli import main

    assert main(["run", "-s", "redis-counter", "--master", "--expect-workers", "1", "--master-bind-host", host]) == 2
    assert "--allow-remote-workers" in capsys.readouterr().err


def test_the_master_binds_loopback_by_default():
    from harness.cli import parser

    args = parser().parse_args(["run", "-s", "x", "--master", "--expect-workers", "1"])
    assert args.master_bind_host == "127.0.0.1" and not args.allow_remote_workers


@pytest.mark.parametrize("argv", [["--host", "0.0.0.0"], ["--host", "::"]])
def test_the_service_module_refuses_other_interfaces_by_itself(argv, capsys):
    from harness.service.__main__ import main

    assert main(argv) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_a_sentinel_url_names_its_sentinels_service_and_db():
    a = RedisAddress.parse("redis+sentinel://:pw@127.0.0.1:26379,127.0.0.2:26380/cache/2")
    assert a.sentinels == (("127.0.0.1", 26379), ("127.0.0.2", 26380))
    assert (a.service, a.db, a.password) == ("cache", 2, "pw")


def test_every_host_of_a_sentinel_url_must_be_loopback():
    from harness.targets.address import hosts_of

    assert hosts_of("redis+sentinel://127.0.0.1:1,10.0.0.2:2/cb/0") == ["127.0.0.1", "10.0.0.2"]
    with pytest.raises(SafetyError, match=r"10\.0\.0\.2"):
        check_safe("redis+sentinel://127.0.0.1:1,10.0.0.2:2/cb/0", allow_remote=False)


def test_a_primary_the_sentinel_names_must_be_loopback_too():
    a = RedisAddress.parse("redis+sentinel://127.0.0.1:1/cb/0")
    with pytest.raises(SafetyError, match=r"10\.1\.1\.1"):
        a._safe("10.1.1.1", 6379)
    assert RedisAddress.parse("redis+sentinel://127.0.0.1:1/cb/0", allow_remote=True)._safe("10.1.1.1", 1)
