"""X-Forwarded-For names the client only when a configured proxy sent it (real servers)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from phonewagon_server.config import Settings
from phonewagon_server.errors import ConfigurationError
from server_testkit import clean_env
from test_e2e_serve import COMMAND, Server

WRONG = ("pwid_nosuchclient", "pwsk_wrong")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    variables = clean_env()
    return variables | {
        "PHONEWAGON_DATABASE_URL": f"sqlite:///{tmp_path / 'phonewagon.db'}",
        "PHONEWAGON_AUTH_FAILURE_LIMIT": "3/minute",
    }


@pytest.fixture
def untrusting(env: dict[str, str]) -> Iterator[Server]:
    server = Server(["serve"], env)
    yield server
    server.stop()


@pytest.fixture
def behind_proxy(env: dict[str, str]) -> Iterator[Server]:
    server = Server(["serve", "--trusted-proxies", "127.0.0.1, 10.0.0.0/8"], env)
    yield server
    server.stop()


def failed_logins(server: Server, forwarded_for: list[str]) -> list[int]:
    with httpx.Client(base_url=server.url, auth=WRONG) as client:
        return [
            client.get("/companies", headers={"X-Forwarded-For": address}).status_code
            for address in forwarded_for
        ]


def test_a_forged_forwarded_for_does_not_escape_the_auth_failure_throttle(
    untrusting: Server,
) -> None:
    forged = [f"203.0.113.{n}" for n in range(6)]
    assert failed_logins(untrusting, forged) == [401, 401, 401, 429, 429, 429]


def test_a_trusted_proxy_names_each_client_to_the_throttle(behind_proxy: Server) -> None:
    clients = [f"203.0.113.{n}" for n in range(6)]
    assert failed_logins(behind_proxy, clients) == [401] * 6
    assert failed_logins(behind_proxy, ["198.51.100.7"] * 4) == [401, 401, 401, 429]


def test_behind_a_trusted_proxy_the_client_cannot_forge_its_own_hop(behind_proxy: Server) -> None:
    """The proxy appends the address it saw: only the rightmost untrusted entry counts."""
    chain = [f"192.0.2.{n}, 198.51.100.9" for n in range(4)]
    assert failed_logins(behind_proxy, chain) == [401, 401, 401, 429]


def test_the_access_log_names_the_forwarded_client_only_behind_a_trusted_proxy(
    env: dict[str, str],
) -> None:
    for args, expected in (
        (["serve"], "127.0.0.1"),
        (["serve", "--trusted-proxies", "127.0.0.1"], "203.0.113.5"),
    ):
        server = Server(args, env)
        try:
            httpx.get(f"{server.url}/healthz", headers={"X-Forwarded-For": "203.0.113.5"})
        finally:
            _, _, stderr = server.stop()
        assert f'"client":"{expected}"' in stderr


@pytest.mark.parametrize("value", ["nonsense", "10.0.0.1/8", "127.0.0.1, example.com"])
def test_a_trusted_proxy_that_is_not_an_address_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="PHONEWAGON_TRUSTED_PROXIES"):
        Settings.from_env({"PHONEWAGON_TRUSTED_PROXIES": value})


def test_trusted_proxies_are_read_from_the_environment() -> None:
    env = {"PHONEWAGON_TRUSTED_PROXIES": " 10.0.0.0/8 ,::1,"}
    assert Settings.from_env(env).trusted_proxies == ("10.0.0.0/8", "::1")
    assert Settings.from_env({}).trusted_proxies == ()


def test_serve_refuses_bad_settings_before_it_starts(env: dict[str, str]) -> None:
    for flag, value in (("--trusted-proxies", "proxy.internal"), ("--cors-origins", "*.x")):
        done = subprocess.run(
            [COMMAND, "serve", flag, value, "--port", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert value in done.stderr
        assert "Traceback" not in done.stderr
