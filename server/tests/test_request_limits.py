"""Requests too large to be honest are refused as problems before any work is done for them."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.api.security import MAX_URL_BYTES
from phonewagon_server.config import Settings
from phonewagon_server.db import open_database
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.transport import MAX_HEAD_BYTES, URL_TOO_LONG, BoundedHttpToolsProtocol
from server_testkit import Tenant
from test_e2e_serve import free_port


def assert_refused(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def test_a_url_over_8_kib_is_refused_414(api: TestClient, tenant: Tenant) -> None:
    body = assert_refused(api.get("/calls?campaign_id=" + "x" * 8200, auth=tenant.auth), 414)
    assert body["title"] == "URI Too Long"


def test_a_url_under_8_kib_reaches_the_endpoint(api: TestClient, tenant: Tenant) -> None:
    response = api.get("/calls?campaign_id=" + "x" * 8000, auth=tenant.auth)
    assert response.status_code == 400  # longer than a campaign id may be: named, not refused
    assert response.json()["errors"][0]["name"] == "campaign_id"


def test_headers_over_16_kib_are_refused_431(api: TestClient, tenant: Tenant) -> None:
    headers = {f"X-Filler-{n}": "y" * 1000 for n in range(17)}
    assert_refused(api.get("/companies", auth=tenant.auth, headers=headers), 431)


def test_more_than_100_header_fields_are_refused_431(api: TestClient, tenant: Tenant) -> None:
    headers = {f"X-Field-{n}": "1" for n in range(101)}
    assert_refused(api.get("/companies", auth=tenant.auth, headers=headers), 431)


@pytest.mark.parametrize(
    "request_body",
    [
        {"content": b'{"company_id": 1}'},
        {"headers": {"Content-Length": "5"}},
        {"headers": {"Transfer-Encoding": "chunked"}},
    ],
    ids=["body", "content-length", "chunked"],
)
def test_a_get_with_a_body_is_refused_413(
    api: TestClient, tenant: Tenant, request_body: dict[str, Any]
) -> None:
    response = api.request("GET", "/calls", auth=tenant.auth, **request_body)
    body = assert_refused(response, 413)
    assert "query string" in body["detail"]


def test_a_get_with_an_empty_body_is_served(api: TestClient, tenant: Tenant) -> None:
    response = api.get("/companies", auth=tenant.auth, headers={"Content-Length": "0"})
    assert response.status_code == 200


@pytest.fixture
def served(sqlite_url: str) -> Iterator[tuple[str, int]]:
    """The app behind uvicorn with `serve`'s protocol, its head timeout shortened to 0.5 s."""

    class Impatient(BoundedHttpToolsProtocol):
        head_timeout = 0.5

    database = open_database(sqlite_url)
    upgrade(database)
    app = create_app(Settings(database_url=sqlite_url), database)
    port = free_port()
    config = uvicorn.Config(app, port=port, http=Impatient, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)
    database.close()


def exchange(address: tuple[str, int], request: bytes, *, timeout: float = 5) -> bytes:
    """Send `request`, return everything answered until the server closes the connection."""
    with socket.create_connection(address, timeout=timeout) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused mid-send
            connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize("size", [300_000, 5_000_000])  # more than one read (256 KiB)
def test_a_request_head_over_64_kib_is_cut_off_with_a_431(
    served: tuple[str, int], size: int
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    try:
        answer = exchange(served, request)
    except ConnectionResetError:  # closed while we were still sending: refused all the same
        return
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"content-type: application/problem+json" in answer
    assert b'"type":"about:blank"' in answer
    assert b"The request line and headers exceed 65536 bytes." in answer  # not the app's 431


def test_a_request_head_that_trickles_in_is_cut_off(served: tuple[str, int]) -> None:
    started = time.monotonic()
    with socket.create_connection(served, timeout=5) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert connection.recv(1024) == b""  # closed, never answered
    assert time.monotonic() - started < 3


def test_an_idle_connection_is_closed(served: tuple[str, int]) -> None:
    with socket.create_connection(served, timeout=5) as connection:
        assert connection.recv(1024) == b""


def test_a_kept_alive_connection_serves_request_after_request(served: tuple[str, int]) -> None:
    host, port = served
    with httpx.Client(base_url=f"http://{host}:{port}") as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            time.sleep(0.3)  # idle between requests is the keep-alive timeout's business
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    pipelined = exchange(
        served, request * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert pipelined.count(b"HTTP/1.1 200 OK") == 3


def test_a_large_but_bounded_head_reaches_the_app_limits(served: tuple[str, int]) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    answer = exchange(served, request)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b'"detail":"The request\'s headers exceed 16384 bytes' in answer


SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def get(url_bytes: int, *, close: bool = False) -> bytes:
    """A GET of a URL `url_bytes` long, its path and query (as the app counts it) one byte less."""
    url = b"/healthz?x=" + b"a" * (url_bytes - len(b"/healthz?x="))
    connection = b"Connection: close\r\n" if close else b""
    return b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n" + connection + b"\r\n"


def answer_to(address: tuple[str, int], request: bytes) -> bytes:
    """`exchange`, keeping what was answered before a reset (a refusal, the request half read)."""
    with socket.create_connection(address, timeout=5) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(request)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := connection.recv(65536):
                answer += chunk
        return answer


def parse_answer(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of one response, which must be all of `answer`."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, _, value in (ln.partition(": ") for ln in lines)}
    assert len(body) == int(headers["content-length"]), "nothing may follow the answer"
    return int(status_line.split()[1]), headers, body


def assert_refused_by_the_server(answer: bytes, status: int) -> dict[str, Any]:
    code, headers, body = parse_answer(answer)
    assert code == status, answer[:200]
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert SECURITY_HEADERS.items() <= headers.items()
    assert "x-request-id" not in headers  # the app never saw it
    problem: dict[str, Any] = orjson.loads(body)
    assert problem["type"] == "about:blank"
    assert problem["status"] == status
    return problem


@pytest.mark.parametrize(
    ("url_bytes", "status"),
    [(9_000, 414), (40_000, 414), (65_000, 414), (70_000, 431), (100_000, 431), (130_000, 431)],
)
def test_a_url_over_8_kib_is_refused_as_a_problem_whatever_its_size(
    served: tuple[str, int], url_bytes: int, status: int
) -> None:
    assert_refused_by_the_server(answer_to(served, get(url_bytes)), status)
    assert answer_to(served, HEALTHZ).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_url_too_long_for_any_head_is_refused_as_the_head_is(served: tuple[str, int]) -> None:
    problem = assert_refused_by_the_server(answer_to(served, get(MAX_HEAD_BYTES)), 431)
    assert problem["detail"] == "The request line and headers exceed 65536 bytes."


def test_the_protocol_refuses_a_long_url_in_the_apps_words(api: TestClient) -> None:
    url = get(9_000).split()[1].decode()
    _, _, body = URL_TOO_LONG.answer.partition(b"\r\n\r\n")
    assert orjson.loads(body) == api.get(url).json()


@pytest.mark.parametrize(
    ("url_bytes", "status"), [(MAX_URL_BYTES + 1, 200), (MAX_URL_BYTES + 2, 414)]
)
def test_the_server_counts_a_url_as_the_app_does(
    served: tuple[str, int], url_bytes: int, status: int
) -> None:
    answer = answer_to(served, get(url_bytes, close=True))  # "?": not the path, not the query
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())


def test_a_request_that_is_not_http_is_refused_as_a_problem(served: tuple[str, int]) -> None:
    problem = assert_refused_by_the_server(answer_to(served, b"GARBAGE\r\n\r\n"), 400)
    assert problem["detail"] == "The request is not valid HTTP/1.1."


@pytest.mark.parametrize(
    "refused",
    [get(9_000), get(70_000), b"GARBAGE\r\n\r\n"],
    ids=["url-414", "url-431", "not-http-400"],
)
def test_nothing_pipelined_after_a_refused_request_is_answered(
    served: tuple[str, int], refused: bytes
) -> None:
    answer = answer_to(served, refused + HEALTHZ)
    assert answer.count(b"HTTP/1.1 ") == 1
    parse_answer(answer)  # the refusal, and nothing after it


def test_each_refusal_is_logged_once(
    served: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        answer_to(served, get(9_000) + HEALTHZ)
        answer_to(served, b"GARBAGE\r\n\r\n")
        answer_to(served, HEALTHZ)  # served after both: their lines are in
    refusals = [r.getMessage() for r in caplog.records if r.name == "phonewagon_server.transport"]
    assert refusals == [
        "URL over 8192 bytes from 127.0.0.1: 414",
        "invalid HTTP request from 127.0.0.1: 400",
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
