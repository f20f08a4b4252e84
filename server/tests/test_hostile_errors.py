"""Every error path is problem+json that reveals nothing inside; garbage never breaks the service.

In process on SQLite and PostgreSQL: each kind of 400, 401, 404 (path, company, campaign), 405,
429 (account and failed authentication), 503 (database down) and 500 (a broken database object).
Then garbage — huge query strings, bad percent-encoding, NUL bytes, non-UTF-8 `Authorization`,
10,000 repeated parameters — in process and as raw bytes on the socket of a real `serve` process:
a clean 4xx every time, and the service still answers afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database, open_database
from server_testkit import PUBLIC_URL, FakeClock, Tenant, World, clean_env
from test_e2e_serve import Server, cli

PROBLEM_JSON = "application/problem+json"
# What must never reach a client: tracebacks, source paths, SQL, driver and exception names.
LEAK = re.compile(
    r"Traceback|File \"|\.py\b|line \d+|site-packages|/usr/|/root/|/work/|/tmp/"
    r"|\bSELECT\b|\bINSERT\b|\bWHERE\b|\bFROM \w+ WHERE|sqlite|psycopg|postgres|OperationalError"
    r"|ProgrammingError|RuntimeError|ValueError|Exception|errno",
)


def assert_clean_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 shape, the status in the body, and nothing of the server's insides."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert all(isinstance(body[key], str) and body[key] for key in ("type", "title", "detail"))
    assert body["type"] == "about:blank" or body["type"].startswith(f"{PUBLIC_URL}/docs#problem-")
    assert_no_leak(response)
    return body


def assert_no_leak(response: httpx.Response) -> None:
    assert not LEAK.search(response.text), response.text
    for name, value in response.headers.items():
        assert not LEAK.search(value), (name, value)


BAD_PARAMETERS = [
    ("/calls?company_id=abc", ["company_id"]),  # not an integer
    ("/calls?company_id=1.5", ["company_id"]),
    ("/calls?start_time=-5", ["start_time"]),  # negative
    ("/calls?end_time=99999999999999999999999", ["end_time"]),  # out of range
    ("/calls?page_size=0", ["page_size"]),  # below 1
    ("/calls?start_time=2000&end_time=1000", ["start_time"]),  # start after end
    ("/calls?compnay_id=1", ["compnay_id"]),  # unknown parameter
    ("/calls?page_size=5&page_size=6", ["page_size"]),  # conflicting repeats
    ("/calls?campaign_id=", ["campaign_id"]),  # empty
    ("/calls?campaign_id=" + "c" * 201, ["campaign_id"]),  # too long
    ("/calls?before_id=-1", ["before_id"]),
    ("/campaigns?company_id=x", ["company_id"]),
    ("/campaigns?id=1", ["id"]),
    ("/companies?limit=10", ["limit"]),
    ("/calls?start_time=x&page_size=0&bogus=1", ["bogus", "start_time", "page_size"]),
]


@pytest.mark.parametrize(("path", "names"), BAD_PARAMETERS)
def test_every_kind_of_bad_parameter_is_a_clean_400_naming_it(
    api: TestClient, tenant: Tenant, path: str, names: list[str]
) -> None:
    body = assert_clean_problem(api.get(path, auth=tenant.auth), 400)
    assert sorted(error["name"] for error in body["errors"]) == sorted(names)
    assert all(error["in"] == "query" and error["detail"] for error in body["errors"])


def basic(raw: bytes) -> dict[str, bytes]:
    return {"Authorization": b"Basic " + base64.b64encode(raw)}


UNAUTHENTICATED: list[Any] = [
    {},
    {"Authorization": "Bearer x"},
    {"Authorization": "Basic !!!"},
    basic(b"pwid_nosuch:pwsk_nosuch"),
    basic(b"\xff\xfe:\xff"),  # valid base64 of bytes that are not UTF-8
    basic(b"pwid_x\x00:pwsk_\x00"),
    {"Authorization": b"Basic \xff\xfe\x80"},  # not ASCII
    {"Authorization": "Basic cHdpZA==é".encode("latin-1")},
]


@pytest.mark.parametrize("headers", UNAUTHENTICATED)
def test_missing_wrong_and_malformed_credentials_are_a_clean_401(
    api: TestClient, headers: dict[str, Any]
) -> None:
    response = api.get("/calls", headers=headers)
    assert_clean_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Basic realm="phonewagon"'


@pytest.mark.parametrize(
    ("path", "word"),
    [
        ("/nothing-here", "resource"),
        ("/calls/", "resource"),
        ("/companies/1", "resource"),
        ("/calls?company_id=987654", "company"),
        ("/campaigns?company_id=987654", "company"),
        ("/calls?campaign_id=s987654", "campaign"),
    ],
)
def test_unknown_paths_companies_and_campaigns_are_a_clean_404(
    api: TestClient, tenant: Tenant, path: str, word: str
) -> None:
    body = assert_clean_problem(api.get(path, auth=tenant.auth), 404)
    assert word in body["detail"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/companies", "/campaigns", "/calls", "/healthz", "/readyz"])
def test_other_methods_are_a_clean_405_with_allow(
    api: TestClient, tenant: Tenant, method: str, path: str
) -> None:
    response = api.request(method, path, auth=tenant.auth)
    assert_clean_problem(response, 405)
    assert "GET" in response.headers["allow"]


def test_an_account_over_its_limit_is_a_clean_429_with_retry_after(
    api: TestClient, tenant: Tenant
) -> None:
    for _ in range(50):
        assert api.get("/companies", auth=tenant.auth).status_code == 200
    response = api.get("/calls", auth=tenant.auth)
    assert_clean_problem(response, 429)
    assert int(response.headers["retry-after"]) == 60


def test_an_address_failing_authentication_too_often_is_a_clean_429(
    api: TestClient, tenant: Tenant
) -> None:
    for _ in range(20):
        assert api.get("/calls", auth=(tenant.client_id, "wrong")).status_code == 401
    response = api.get("/calls", auth=(tenant.client_id, "wrong"))
    assert_clean_problem(response, 429)
    assert int(response.headers["retry-after"]) == 60


@pytest.fixture
def down_database(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """SQLite: a file whose directory is gone; PostgreSQL: a port where nothing listens."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'gone' / 'phonewagon.db'}"
    else:
        url = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1"
    database = open_database(url)
    yield database
    database.close()


def test_a_database_that_is_down_is_a_clean_503_with_retry_after(
    down_database: Database, settings: Settings, clock: FakeClock
) -> None:
    app = create_app(settings, down_database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as client:
        secret = "pwsk_" + "z" * 43
        for path in ["/calls?page_size=1", "/readyz"]:  # each waits out the pool's timeout
            response = client.get(path, auth=("pwid_someone", secret))
            assert_clean_problem(response, 503)
            assert int(response.headers["retry-after"]) > 0
        assert client.get("/healthz").status_code == 200


class BrokenDatabase:
    """Fails every way a bug might, with messages full of what must not leak."""

    def __init__(self, real: Database, error: Callable[[], Exception]) -> None:
        self.dialect = real.dialect
        self.url = real.url
        self.error = error

    def transaction(self, *, write: bool = False) -> Any:
        raise self.error()

    def ping(self) -> None:
        raise self.error()

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "error",
    [
        lambda: sqlite3.ProgrammingError("SELECT secret_hash FROM credentials WHERE 1 -- db.py"),
        lambda: RuntimeError('File "/work/main/server/src/app.py", line 3, in boom'),
        lambda: KeyError("/usr/lib/python3/site-packages/psycopg/errors.py"),
        lambda: ZeroDivisionError(),
    ],
)
def test_a_bug_is_a_clean_500_that_tells_nothing(
    database: Database,
    settings: Settings,
    tenant: Tenant,
    clock: FakeClock,
    error: Callable[[], Exception],
) -> None:
    broken = BrokenDatabase(database, error)
    app = create_app(settings, broken, wall_clock=clock, monotonic=clock)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ["/companies", "/campaigns", "/calls", "/readyz"]:
            body = assert_clean_problem(client.get(path, auth=tenant.auth), 500)
            assert body["title"] == "Internal Server Error"
        assert client.get("/healthz").status_code == 200


# Garbage sent straight into the app as ASGI, whatever an HTTP client library would refuse to
# send: what the app itself does with it, behind any server or proxy that lets it through.
GARBAGE_QUERIES = [
    b"campaign_id=" + b"a" * 1_000_000,  # a huge query string
    b"start_time=" + b"9" * 50_000,
    b"&".join([b"page_size=5"] * 10_000),  # 10,000 repeated parameters
    b"&".join(b"p%d=1" % n for n in range(10_000)),
    b"&".join([b"company_id=1", b"company_id=2"] * 5_000),
    b"campaign_id=%ZZ",  # invalid percent-encoding
    b"campaign_id=%",
    b"campaign_id=%E0%A4%A",
    b"%ZZ=1",
    b"campaign_id=%FF%FE%FD",  # percent-encoded bytes that are not UTF-8
    b"campaign_id=\xff\xfe",  # raw bytes that are not UTF-8
    b"page_size=%00",  # NUL bytes
    b"page_size=5\x00",
    b"campaign_id=s1%00",
    b"campaign_id=s1\x00",
    b"%00=1",
    b"company_id=%EF%BC%91",  # a full-width digit
    b"start_time=%D9%A1",  # an Arabic-Indic digit
    b"company_id=1e3",
    b"company_id=0x10",
    b"company_id=1&company_id=01&company_id=2",
]


def asgi_get(app: Any, query: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """GET /calls?`query` handed to the app as ASGI, bytes as given; its status and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/calls",
        "raw_path": b"/calls",
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("203.0.113.9", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    content_type = dict(start["headers"]).get(b"content-type", b"")
    assert content_type == PROBLEM_JSON.encode() or start["status"] == 200, sent
    return start["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("query", GARBAGE_QUERIES, ids=lambda q: repr(q[:24]))
def test_garbage_queries_are_a_clean_4xx_and_the_service_stays_up(
    roomy_api: TestClient,
    tenant: Tenant,
    world: World,
    query: bytes,
) -> None:
    world.calls(tenant, [1000])
    authorization = (b"authorization", b"Basic " + base64.b64encode(":".join(tenant.auth).encode()))
    status, body = asgi_get(roomy_api.app, query, [authorization])
    assert 400 <= status < 500, body[:300]
    assert not LEAK.search(body.decode("latin-1")), body[:300]
    assert roomy_api.get("/healthz").status_code == 200
    assert len(roomy_api.get("/calls", auth=tenant.auth).json()["calls"]) == 1


GARBAGE_AUTHORIZATION: list[Any] = [
    b"Basic \x00\x00",
    b"\x00",
    b"\xff\xfe \xc3\x28",
    b"Basic " + base64.b64encode(b"\xc3\x28:\xa0\xa1"),
    b"Basic " + base64.b64encode(bytes(range(256))),
    b"Basic " + b"A" * 8_000,
    b"Basic " + base64.b64encode(b"pwid_x:" + b"s" * 5_000),
    b"Basic " + base64.b64encode(b"pwid_\x00:x"),
    b"Basic \xff\xfe\x80",
    "Basic é".encode("latin-1"),
]


@pytest.mark.parametrize("value", GARBAGE_AUTHORIZATION, ids=lambda v: repr(v[:16]))
def test_garbage_authorization_headers_are_a_clean_401(api: TestClient, value: bytes) -> None:
    response = api.get("/calls", headers={"Authorization": value})
    assert_clean_problem(response, 401)
    assert api.get("/healthz").status_code == 200


# Raw bytes on the socket of a real server: what no well-behaved client library would send.
def raw_request(target: bytes, *headers: bytes) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


RAW_GARBAGE = {
    "NUL byte in the query": raw_request(b"/calls?campaign_id=s1\x00"),
    "NUL byte in the path": raw_request(b"/cal\x00ls"),
    "non-UTF-8 query": raw_request(b"/calls?campaign_id=\xff\xfe"),
    "non-UTF-8 path": raw_request(b"/calls\xc3\x28"),
    "invalid percent-encoding": raw_request(b"/calls?campaign_id=%ZZ%E0%A4%A&%=%"),
    "huge query": raw_request(b"/calls?campaign_id=" + b"a" * 1_000_000),
    "10,000 repeated parameters": raw_request(b"/calls?" + b"&".join([b"page_size=5"] * 10_000)),
    "non-UTF-8 Authorization": raw_request(b"/calls", b"Authorization: Basic \xc3\x28\xa0"),
    "NUL in a header": raw_request(b"/calls", b"Authorization: Basic \x00abc"),
    "header without a colon": raw_request(b"/calls", b"Authorization Basic abc"),
    "huge header": raw_request(b"/calls", b"X-Filler: " + b"x" * 200_000),
    "2,000 headers": raw_request(b"/calls", *[b"X-H%d: v" % n for n in range(2_000)]),
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
    "bad method": b"G\x00T /calls HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad version": b"GET /calls HTTP/9.9\r\nHost: x\r\n\r\n",
    "body on a GET": raw_request(b"/calls", b"Content-Length: 5") + b"hello",
    "chunked body": raw_request(b"/calls", b"Transfer-Encoding: chunked")
    + b"5\r\nhello\r\n0\r\n\r\n",
}


def send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        with contextlib.suppress(OSError):  # it may answer and close before reading it all
            connection.sendall(data)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


@pytest.fixture
def real_server(database_url: str) -> Iterator[tuple[Server, tuple[str, str]]]:
    env = clean_env()
    env |= {"PHONEWAGON_DATABASE_URL": database_url, "PHONEWAGON_RATE_LIMIT": "100000/minute"}
    account = cli("accounts", "create", "Garbage Target", env=env)
    server = Server(["serve"], env)
    yield server, (account["client_id"], account["client_secret"])
    server.stop()


def test_raw_garbage_on_the_socket_is_a_clean_4xx_and_the_server_stays_up(
    real_server: tuple[Server, tuple[str, str]],
) -> None:
    server, auth = real_server
    statuses = {}
    for name, data in RAW_GARBAGE.items():
        answer = send_raw(server.port, data)
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else None
        media = re.search(rb"(?im)^content-type: *([^;\r\n]*)", head)
        statuses[name] = f"{status} {media[1].decode() if media else ''}"
        assert status is not None, (name, answer[:200])
        assert 400 <= status < 500, (name, answer[:300])
        assert not LEAK.search(body.decode("latin-1")), (name, body[:300])
        with httpx.Client(base_url=server.url, auth=auth) as client:
            assert client.get("/healthz").status_code == 200, name
            assert client.get("/calls?page_size=1").status_code == 200, name
    print("raw garbage answers:", statuses)
    _, _, stderr = server.stop()
    assert "Traceback" not in stderr
