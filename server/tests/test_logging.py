"""Log lines are JSON with a request id and no secret, `Authorization` value or phone number."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.logs import JsonFormatter, format_exception, redact
from server_testkit import FakeClock, Tenant, World
from test_e2e_serve import Server, cli

PHONE = "+19295550123"
Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def logged() -> Iterator[Lines]:
    """The JSON lines written while the test runs, each parsed (so each must be JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root, ours = logging.getLogger(), logging.getLogger("phonewagon_server")
    previous = ours.level
    root.addHandler(handler)
    ours.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    ours.setLevel(previous)
    root.removeHandler(handler)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def assert_nothing_secret(text: str, tenant: Tenant) -> None:
    for secret in (tenant.secret, basic(*tenant.auth), basic(tenant.client_id, "pwsk_wrong")):
        assert secret not in text
    assert "pwsk_wrong" not in text
    assert PHONE.removeprefix("+") not in text
    assert "SELECT" not in text


class BrokenDatabase:
    """Every query is a bug whose message quotes SQL and a phone number."""

    def __init__(self, database: Database) -> None:
        self.dialect = database.dialect
        self.url = database.url

    def transaction(self, *, write: bool = False) -> Any:
        raise sqlite3.ProgrammingError(f"SELECT * FROM calls WHERE from_number = '{PHONE}'")

    def ping(self) -> None:
        raise RuntimeError(f"boom for {PHONE}")

    def close(self) -> None:
        pass


def test_each_request_is_one_access_line_with_its_id(
    api: TestClient, tenant: Tenant, logged: Lines
) -> None:
    ok = api.get("/companies?", auth=tenant.auth, headers={"X-Request-ID": "trace-42.a_b"})
    refused = api.get("/calls", auth=(tenant.client_id, "pwsk_wrong"))
    access = [line for line in logged() if line["logger"] == "phonewagon_server.access"]
    assert ok.headers["x-request-id"] == "trace-42.a_b"
    assert [line["request_id"] for line in access] == [
        "trace-42.a_b",
        refused.headers["x-request-id"],
    ]
    first, second = access
    assert first | {"duration_ms": 0, "time": ""} == first | {
        "duration_ms": 0,
        "time": "",
        "level": "info",
        "method": "GET",
        "path": "/companies",
        "route": "/companies",
        "status": 200,
        "client": "testclient",
        "account_id": tenant.account_id,
    }
    assert first["duration_ms"] >= 0
    assert (second["status"], second["account_id"]) == (401, None)


@pytest.mark.parametrize(
    "incoming", [b"has spaces", b"x" * 65, b"", "\u00fcmlaut".encode(), b"a;b", b"a\tb"]
)
def test_an_unusable_request_id_is_replaced(api: TestClient, incoming: bytes) -> None:
    response = api.get("/healthz", headers={"X-Request-ID": incoming})
    request_id = response.headers["x-request-id"]
    assert request_id.encode() != incoming
    assert len(request_id) == 32


def test_every_line_of_a_troubled_run_is_json_with_a_request_id_and_no_secret(
    database: Database,
    settings: Settings,
    tenant: Tenant,
    world: World,
    clock: FakeClock,
    logged: Lines,
) -> None:
    world.calls(tenant, [1000], from_number=PHONE)
    good = create_app(settings, database, wall_clock=clock, monotonic=clock)
    broken = create_app(settings, BrokenDatabase(database), wall_clock=clock)  # type: ignore[arg-type]
    with TestClient(good) as api, TestClient(broken, raise_server_exceptions=False) as bug:
        assert api.get("/calls", auth=tenant.auth).status_code == 200
        assert api.get(f"/calls?from_number={PHONE}", auth=tenant.auth).status_code == 400
        assert api.get("/calls?from_number=%2B19295550123", auth=tenant.auth).status_code == 400
        assert api.get(f"/calls/{tenant.secret}", auth=tenant.auth).status_code == 404
        headers = {"Authorization": basic(tenant.client_id, "pwsk_wrong")}
        assert api.get("/companies", headers=headers).status_code == 401
        assert bug.get("/companies", auth=tenant.auth).status_code == 500
        assert bug.get("/readyz").status_code == 500
    lines = logged()
    assert len(lines) >= 9  # seven access lines and two errors, at least
    assert all(line["request_id"] for line in lines)
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 2
    assert all("exception" in line for line in errors)
    assert "withheld" in errors[0]["exception"]
    assert "***23" in json.dumps(lines)  # the phone numbers' last two digits
    assert_nothing_secret(json.dumps(lines), tenant)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("secret pwsk_Q66psfmmd9YmIJRS8A1l-_x", "secret pwsk_***"),
        ("Authorization: Basic cHdpZF94eXo6cHdza19hYmM=", "Authorization: Basic ***"),
        ("authorization: bearer abcdefghijklmnop.qrs", "authorization: bearer ***"),
        ("postgresql://pw:hunter2@db:5432/x", "postgresql://pw:***@db:5432/x"),
        ('"from_number":"+19295550123"', '"from_number":"+***23"'),
        ("from_number=%2B442071838750&x=1", "from_number=%2B***50&x=1"),
        ("end_time=1573072575990&before_id=12345678", "end_time=1573072575990&before_id=12345678"),
        ("2026-11-27T08:00:05.379+00:00", "2026-11-27T08:00:05.379+00:00"),
        ('Basic realm="phonewagon"', 'Basic realm="phonewagon"'),
    ],
)
def test_redaction_masks_secrets_and_phone_numbers_only(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_a_database_error_is_logged_without_its_message() -> None:
    try:
        try:
            raise sqlite3.OperationalError("near SELECT: syntax error")
        except sqlite3.OperationalError as exc:
            raise RuntimeError("while listing calls") from exc
    except RuntimeError as exc:
        text = format_exception(exc)
    assert "builtins.RuntimeError: while listing calls" in text
    assert "sqlite3.OperationalError: (message withheld" in text
    assert "SELECT" not in text


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("PHONEWAGON_")}
    return variables | {"PHONEWAGON_DATABASE_URL": f"sqlite:///{tmp_path / 'phonewagon.db'}"}


def test_serve_writes_only_json_lines_on_stderr(env: dict[str, str]) -> None:
    account = cli("accounts", "create", "Logged", env=env)
    auth = (account["client_id"], account["client_secret"])
    server = Server(["serve"], env)
    try:
        with httpx.Client(base_url=server.url) as client:
            client.get("/companies", auth=auth)
            client.get("/companies", auth=(account["client_id"], "pwsk_wrong"))
            client.get(f"/calls?from_number={PHONE}", auth=auth)
            client.get("/healthz", headers={"X-Request-ID": "from-the-proxy"})
    finally:
        _, _, stderr = server.stop()
    lines = [json.loads(line) for line in stderr.splitlines()]
    access = [line for line in lines if line["logger"] == "phonewagon_server.access"]
    assert [line["status"] for line in access][-4:] == [200, 401, 400, 200]  # after health checks
    assert access[-1]["request_id"] == "from-the-proxy"
    assert all(line["request_id"] for line in access)
    assert any(line["message"] == "Application shutdown complete." for line in lines)
    for text in (account["client_secret"], basic(*auth), "pwsk_wrong", PHONE.removeprefix("+")):
        assert text not in stderr


def test_the_demo_logs_text_for_people(tmp_path: Path, env: dict[str, str]) -> None:
    server = Server(["demo", "--database-url", f"sqlite:///{tmp_path / 'demo.db'}"], env)
    try:
        httpx.get(f"{server.url}/healthz")
    finally:
        _, _, stderr = server.stop()
    assert " INFO phonewagon_server.access GET /healthz 200 " in stderr
    assert not stderr.lstrip().startswith("{")


def test_an_unknown_log_format_is_refused() -> None:
    assert Settings.from_env({"PHONEWAGON_LOG_FORMAT": "text"}).log_format == "text"
    with pytest.raises(ConfigurationError, match="log format 'xml'"):
        Settings.from_env({"PHONEWAGON_LOG_FORMAT": "xml"})
