"""Log lines are JSON with a request id and no secret, `Authorization` value or phone number."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from phonewagon_server import logs
from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.logs import JsonFormatter, format_exception, redact
from server_testkit import FakeClock, Tenant, World, clean_env
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
    "incoming",
    [
        *(b"has spaces", b"x" * 65, b"", "\u00fcmlaut".encode(), b"a;b", b"a\tb"),
        *(b"15551234567", b"555-123-4567", b"pwsk_Q66psfmmd9YmIJRS8A1l"),  # masked in log lines
    ],
)
def test_an_unusable_request_id_is_replaced(api: TestClient, incoming: bytes) -> None:
    response = api.get("/healthz", headers={"X-Request-ID": incoming})
    request_id = response.headers["x-request-id"]
    assert request_id.encode() != incoming
    assert len(request_id) == 32


def test_new_request_ids_are_distinct_and_never_look_like_a_phone_number(api: TestClient) -> None:
    """Ten digits in a row would send every log line through redaction's slow path."""
    ids = [api.get("/healthz").headers["x-request-id"] for _ in range(300)]
    assert len(set(ids)) == len(ids)
    for request_id in ids:
        assert re.fullmatch("[0-9a-f]{32}", request_id)
        assert not re.search("[0-9]{10}", request_id)
        assert redact(request_id) == request_id


@pytest.mark.parametrize(
    "incoming",
    [
        "7df053fdda6113d69e88723b4d7eb15d",
        "123e4567-e89b-12d3-a456-426614174000",
        "trace-2026-11-27-1573072575990",
        "5551234",
    ],
)
def test_a_plain_request_id_is_kept_even_with_digits(
    api: TestClient, incoming: str, logged: Lines
) -> None:
    assert api.get("/healthz", headers={"X-Request-ID": incoming}).headers["x-request-id"] == (
        incoming
    )
    assert [line["request_id"] for line in logged()] == [incoming]


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


def percent_encoded(text: str, layers: int = 1) -> str:
    for _ in range(layers):
        text = quote(text, safe="")
    return text


CREDENTIALS = "Basic cHdpZF94eXo6cHdza19hYmNkZWZnaGlqaw=="  # pwid_xyz:pwsk_abcdefghijk
SIDS = f"CA15551234567a4d69e88723b4d7eb15d0 CA{12345:032x}"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("secret pwsk_Q66psfmmd9YmIJRS8A1l-_x", "secret pwsk_***"),
        ("Authorization: Basic cHdpZF94eXo6cHdza19hYmM=", "Authorization: Basic ***"),
        ("authorization: bearer abcdefghijklmnop.qrs", "authorization: bearer ***"),
        ("postgresql://pw:hunter2@db:5432/x", "postgresql://pw:***@db:5432/x"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ('"from_number":"+19295550123"', '"from_number":"+***23"'),
        ("from_number=%2B442071838750&x=1", "from_number=%2B***50&x=1"),
        # Percent-encoded, at any depth.
        (f"GET /calls?auth={percent_encoded(CREDENTIALS)}", "GET /calls?auth=Basic%20***"),
        ("auth=Basic+cHdpZF94eXo6cHdza19hYmM=&x=1", "auth=Basic+***&x=1"),
        ("x=pwsk%5FQ66psfmmd9YmIJRS8A1l&y=1", "x=pwsk_***&y=1"),
        ("postgresql://pw:hunter%402@db/x", "postgresql://pw:***@db/x"),
        ("phone=%2B1%20555%20123%204567&x=1", "phone=%2B***67&x=1"),
        ("phone=%252B15551234567", "phone=%2B***67"),
        (f"phone={percent_encoded('+15551234567', 8)}", "phone=%2B***67"),
        (f"phone={percent_encoded('+15551234567', 9)}", "***"),
        ("x=a%26start_time%3D15551234567", "x=a%26start_time=***67"),
        ('"path":"/calls/%2B15551234567"', '"path":"/calls/%2B***67"'),
        ('"query":"x=%22%2B15551234567%0A"', '"query":"x=%22%2B***67%0A"'),  # still one JSON line
        # Without a `+`, grouped as people write them.
        ('"request_id":"15551234567"', '"request_id":"***67"'),
        ("call +1 (555) 123-4567 now", "call +***67 now"),
        ("call 1.555.123.4567 now", "call ***67 now"),
        ("call 555-123-4567 now", "call ***67 now"),
        ("call (555) 123-4567, 020 7183 8750", "call ***67, ***50"),
        ("start_time=555-123-4567", "start_time=***67"),
        ("\uff11\uff15\uff15\uff15\uff11\uff12\uff13\uff14\uff15\uff16\uff17", "***\uff16\uff17"),
        # Kept: not phone numbers, and an operator needs them.
        ("end_time=1573072575990&before_id=12345678", "end_time=1573072575990&before_id=12345678"),
        ('"query":"start_time=1573072575990"', '"query":"start_time=1573072575990"'),
        (
            "START_TIME=1573072575990&end_time=1573072576",
            "START_TIME=1573072575990&end_time=1573072576",
        ),
        ("2026-11-27T08:00:05.379+00:00", "2026-11-27T08:00:05.379+00:00"),
        ("2026-11-27 08:00:05,379 INFO [7df053fdda6113d69e88723b4d7eb15d]", None),
        ("request 123e4567-e89b-12d3-a456-426614174000 took 1234.56 ms", None),
        (f"pwid_ae2a14a71abd64ed534f2255 {SIDS} pwid_123456789012345678901234", None),
        ('"duration_ms":1234.56,"client":"192.168.100.200","status":200', None),
        ("campaign_id=summer%202026&page_size=100", None),
        ("trace-2026-11-27-1573072575990 v1.2.3 27.11.2026", None),
        ('Basic realm="phonewagon"', None),
    ],
)
def test_redaction_masks_secrets_and_phone_numbers_only(text: str, shown: str | None) -> None:
    assert redact(text) == (text if shown is None else shown)


FRAGMENTS = [
    *("start_time=", "END_TIME=", "1573072575990", "15551234567", "555", "1234", "7"),
    *("+", "%2B", "%25", "%5F", "%20", "%", " ", "-", ".", "(", ")", "_", "=", "&", "?", '"'),
    *("pwsk_", "Basic ", "bearer+", "@", "://u:", "x", "A", "\u00e9", "\uff11" * 10),
]


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_a_line_without_clues_holds_nothing_the_full_check_would_mask(text: str) -> None:
    shown_quickly = redact(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logs, "_clues", lambda _: logs._ALL_CLUES)
        assert shown_quickly == redact(text)


def test_an_access_line_masks_encoded_secrets_and_a_phone_number_as_request_id(
    api: TestClient, tenant: Tenant, logged: Lines
) -> None:
    credentials = percent_encoded(basic(*tenant.auth))
    secret = tenant.secret.replace("_", "%5F", 1)
    query = f"auth={credentials}&x={secret}&phone=%252B15551234567&start_time=1573072575990"
    response = api.get(f"/calls?{query}", headers={"X-Request-ID": "15551234567"})
    (access,) = [line for line in logged() if line["logger"] == "phonewagon_server.access"]
    text = json.dumps(access)
    assert access["request_id"] == response.headers["x-request-id"] != "15551234567"
    assert access["query"] == "auth=Basic%20***&x=pwsk_***&phone=%2B***67&start_time=1573072575990"
    for leaked in (credentials, secret, tenant.secret.removeprefix("pwsk_"), "5551234567"):
        assert leaked not in text
    assert_nothing_secret(text, tenant)


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
    variables = clean_env()
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
    server = Server(["demo", "--database-url", "sqlite:///demo.db"], env, cwd=tmp_path)
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
