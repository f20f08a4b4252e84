"""Every answer carries the security headers, 500s included; CORS only for configured origins."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.errors import ConfigurationError
from server_testkit import FakeClock, Tenant

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
DOCS_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def assert_secured(response: httpx.Response, policy: str = API_POLICY) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-security-policy"] == policy
    assert response.headers["strict-transport-security"] == "max-age=31536000"


class BrokenDatabase:
    """A database whose every query is a bug."""

    def __init__(self, database: Database) -> None:
        self.dialect = database.dialect
        self.url = database.url

    def transaction(self, *, write: bool = False) -> Any:
        raise sqlite3.ProgrammingError("SELECT secret FROM somewhere")

    def ping(self) -> None:
        raise RuntimeError("boom")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/companies", 200),
        ("/calls?compnay_id=1", 400),
        ("/campaigns?company_id=999999", 404),
        ("/nowhere", 404),
        ("/healthz", 200),
        ("/openapi.json", 200),
        ("/metrics", 200),
    ],
)
def test_json_answers_carry_the_security_headers(
    api: TestClient, tenant: Tenant, path: str, status: int
) -> None:
    response = api.get(path, auth=tenant.auth)
    assert response.status_code == status
    assert_secured(response)


def test_refusals_carry_the_security_headers(api: TestClient, tenant: Tenant) -> None:
    assert_secured(api.get("/companies"))  # 401
    assert_secured(api.post("/companies", auth=tenant.auth))  # 405
    assert_secured(api.get("/calls?x=" + "1" * 9000, auth=tenant.auth))  # 414


def test_a_500_carries_the_security_headers(
    database: Database, settings: Settings, tenant: Tenant, clock: FakeClock
) -> None:
    app = create_app(settings, BrokenDatabase(database), wall_clock=clock)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/companies", auth=tenant.auth)
    assert response.status_code == 500
    assert_secured(response)
    assert response.headers["x-request-id"]


def test_the_docs_page_may_use_its_inline_styles_and_nothing_else(api: TestClient) -> None:
    response = api.get("/docs")
    assert "<style>" in response.text
    assert "<script" not in response.text
    assert_secured(response, DOCS_POLICY)


def test_strict_transport_security_only_when_the_public_url_is_https(
    database: Database, settings: Settings
) -> None:
    plain = replace(settings, public_url="http://127.0.0.1:8000")
    with TestClient(create_app(plain, database)) as client:
        response = client.get("/healthz")
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


def test_each_security_header_is_sent_once(api: TestClient, tenant: Tenant) -> None:
    for response in (api.get("/companies", auth=tenant.auth), api.get("/companies")):
        names = [name.lower() for name, _ in response.headers.multi_items()]
        assert len(names) == len(set(names)), names


def test_without_configured_origins_there_is_no_cors(api: TestClient, tenant: Tenant) -> None:
    origin = {"Origin": "https://evil.example"}
    simple = api.get("/companies", auth=tenant.auth, headers=origin)
    preflight = api.options("/companies", headers=origin | {"Access-Control-Request-Method": "GET"})
    assert simple.status_code == 200
    assert preflight.status_code == 405
    for response in (simple, preflight):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]


@pytest.fixture
def cors_api(database: Database, settings: Settings, clock: FakeClock) -> TestClient:
    cors = replace(settings, cors_origins=("https://app.example.com",))
    return TestClient(create_app(cors, database, wall_clock=clock, monotonic=clock))


def test_a_configured_origin_may_read_answers_and_their_rate_limit(
    cors_api: TestClient, tenant: Tenant
) -> None:
    response = cors_api.get(
        "/companies", auth=tenant.auth, headers={"Origin": "https://app.example.com"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    exposed = response.headers["access-control-expose-headers"].lower()
    assert {"ratelimit", "ratelimit-policy", "retry-after", "x-request-id"} <= {
        name.strip() for name in exposed.split(",")
    }


def test_a_configured_origin_may_send_authorization_in_a_preflight(
    cors_api: TestClient,
) -> None:
    response = cors_api.options(
        "/calls",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "POST" not in response.headers["access-control-allow-methods"]


def test_other_origins_get_no_cors_headers(cors_api: TestClient, tenant: Tenant) -> None:
    response = cors_api.get(
        "/companies", auth=tenant.auth, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("value", ["app.example.com", "https://app.example.com/path", "ftp://x"])
def test_a_cors_origin_that_is_not_an_origin_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="CORS origin"):
        Settings.from_env({"PHONEWAGON_CORS_ORIGINS": value})


def test_cors_origins_are_read_from_the_environment() -> None:
    env = {"PHONEWAGON_CORS_ORIGINS": "https://a.example, http://localhost:3000/"}
    assert Settings.from_env(env).cors_origins == ("https://a.example", "http://localhost:3000")
