"""Errors are problem+json (RFC 9457), name each bad parameter, and never leak internals."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database, open_database
from phonewagon_server.db.migrations import upgrade
from server_testkit import PUBLIC_URL, FakeClock, Tenant, World

LEAKS = ("Traceback", "SELECT ", "sqlite", "psycopg", ".py", "/work/", 'File "')


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert body["type"].startswith("https://api.phonewagon.test/docs#problem-")
    for leak in LEAKS:
        assert leak not in response.text
    return body


def bad_names(body: dict[str, Any]) -> list[str]:
    return [error["name"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("compnay_id=1", ["compnay_id"]),
        ("company_id=abc", ["company_id"]),
        ("company_id=-1", ["company_id"]),
        ("company_id=1.5", ["company_id"]),
        ("company_id=", ["company_id"]),
        ("company_id=%201", ["company_id"]),
        ("company_id=1_000", ["company_id"]),
        ("start_time=-5", ["start_time"]),
        ("start_time=1e3", ["start_time"]),
        ("end_time=soon", ["end_time"]),
        ("end_time=99999999999999999999999", ["end_time"]),
        ("page_size=0", ["page_size"]),
        ("page_size=-10", ["page_size"]),
        ("page_size=ten", ["page_size"]),
        ("campaign_id=", ["campaign_id"]),
        ("before_id=x", ["before_id"]),
        ("start_time=2000&end_time=1000", ["start_time"]),
        ("page_size=5&page_size=6", ["page_size"]),
        ("start_time=x&page_size=0&bogus=1", ["bogus", "start_time", "page_size"]),
    ],
)
def test_bad_calls_parameters_are_refused_and_named(
    api: TestClient, tenant: Tenant, query: str, names: list[str]
) -> None:
    body = assert_problem(api.get(f"/calls?{query}", auth=tenant.auth), 400)
    assert sorted(bad_names(body)) == sorted(names)
    assert all(error["in"] == "query" and error["detail"] for error in body["errors"])


def test_a_typo_in_a_parameter_name_is_refused_with_a_suggestion(
    api: TestClient, tenant: Tenant
) -> None:
    body = assert_problem(api.get("/calls?compnay_id=1", auth=tenant.auth), 400)
    assert "did you mean company_id" in body["errors"][0]["detail"]


def test_identical_repeats_of_a_parameter_are_accepted(api: TestClient, tenant: Tenant) -> None:
    assert api.get("/calls?page_size=5&page_size=5", auth=tenant.auth).status_code == 200


def test_start_time_after_the_default_end_time_is_refused(
    api: TestClient, tenant: Tenant, clock: FakeClock
) -> None:
    future = int(clock() * 1000) + 1
    body = assert_problem(api.get(f"/calls?start_time={future}", auth=tenant.auth), 400)
    assert "now" in body["errors"][0]["detail"]


@pytest.mark.parametrize(("path", "name"), [("/companies?x=1", "x"), ("/campaigns?id=1", "id")])
def test_unknown_parameters_are_refused_everywhere(
    api: TestClient, tenant: Tenant, path: str, name: str
) -> None:
    assert bad_names(assert_problem(api.get(path, auth=tenant.auth), 400)) == [name]


def test_campaigns_refuse_a_malformed_company_id(api: TestClient, tenant: Tenant) -> None:
    body = assert_problem(api.get("/campaigns?company_id=x", auth=tenant.auth), 400)
    assert bad_names(body) == ["company_id"]


@pytest.mark.parametrize("path", ["/nothing-here", "/calls/", "/companies/1"])
def test_unknown_paths_are_404_problems(api: TestClient, tenant: Tenant, path: str) -> None:
    response = api.get(path, auth=tenant.auth, headers={"Host": "evil.example"})
    assert_problem(response, 404)
    assert "location" not in response.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/companies", "/campaigns", "/calls"])
def test_other_methods_are_405_with_allow(
    api: TestClient, tenant: Tenant, method: str, path: str
) -> None:
    response = api.request(method, path, auth=tenant.auth)
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


def test_head_is_answered_like_get_without_a_body(api: TestClient, tenant: Tenant) -> None:
    response = api.head("/companies", auth=tenant.auth)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("path", ["/companies", "/calls", "/healthz", "/openapi.json", "/docs"])
def test_every_answer_forbids_caching(api: TestClient, tenant: Tenant, path: str) -> None:
    assert api.get(path, auth=tenant.auth).headers["cache-control"] == "no-store"


def test_bad_input_leaves_the_service_up(api: TestClient, tenant: Tenant, world: World) -> None:
    world.calls(tenant, [1000])
    for query in ["page_size=%00", "campaign_id=%FF%FE", "start_time=" + "9" * 5000, "a=%"]:
        assert api.get(f"/calls?{query}", auth=tenant.auth).status_code in (400, 404)
    assert len(api.get("/calls", auth=tenant.auth).json()["calls"]) == 1


def test_a_missing_database_is_a_503_with_retry_after(
    tmp_path: Any, settings: Settings, clock: FakeClock
) -> None:
    directory = tmp_path / "gone"
    directory.mkdir()
    database = open_database(f"sqlite:///{directory}/phonewagon.db")
    directory.rmdir()  # the file can no longer be created: every query fails
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as client:
        for path in ["/companies", "/readyz"]:
            response = client.get(path, auth=("pwid_x", "pwsk_y"))
            assert_problem(response, 503)
            assert int(response.headers["retry-after"]) > 0
        assert client.get("/healthz").status_code == 200


def test_the_service_recovers_when_the_database_comes_back(
    tmp_path: Any, settings: Settings, clock: FakeClock
) -> None:
    from phonewagon_server.db.migrations import upgrade

    directory = tmp_path / "later"
    database = open_database(f"sqlite:///{directory}/phonewagon.db")
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as client:
        assert_problem(client.get("/readyz"), 503)
        directory.mkdir()
        upgrade(database)
        assert client.get("/readyz").status_code == 200


def test_an_unexpected_error_is_a_500_that_tells_nothing(
    database: Database, settings: Settings, tenant: Tenant, clock: FakeClock
) -> None:
    class Broken:
        dialect = database.dialect
        url = database.url

        def transaction(self, *, write: bool = False) -> Any:
            raise sqlite3.ProgrammingError("SELECT secret FROM /work/main/db.py")

        def ping(self) -> None:
            raise RuntimeError("boom at /srv/app.py line 3")

        def close(self) -> None:
            pass

    app = create_app(settings, Broken(), wall_clock=clock, monotonic=clock)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_problem(client.get("/companies", auth=tenant.auth), 500)
        assert_problem(client.get("/readyz"), 500)


@pytest.mark.parametrize("query", ["page_size=5%0A", "start_time=0%0A", "company_id=%0A1"])
def test_numbers_with_a_line_break_are_refused(api: TestClient, tenant: Tenant, query: str) -> None:
    body = assert_problem(api.get(f"/calls?{query}", auth=tenant.auth), 400)
    assert len(body["errors"]) == 1


def test_a_query_bug_on_sqlite_is_a_500_not_an_outage(sqlite_url: str, clock: FakeClock) -> None:
    """Only "the file cannot be used now" errors mean 503; a broken query is a bug."""
    database = open_database(sqlite_url)
    upgrade(database)
    tenant = World(database).tenant()
    with database.transaction(write=True) as tx:
        tx.execute("ALTER TABLE campaigns RENAME COLUMN name TO title")  # the code no longer fits
    settings = Settings(database_url=sqlite_url, public_url=PUBLIC_URL)
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_problem(client.get("/campaigns", auth=tenant.auth), 500)
    database.close()
