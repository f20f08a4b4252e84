"""The public visit endpoints hold against what anyone may send: every refusal is clear, writes
nothing and leaves the service up; bots and loops get no numbers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from dni_kit import (
    KEY,
    PAGE,
    POOL,
    Site,
    app_client,
    count,
    make_pool,
    page_view,
    post,
    swapped,
    visitor_id,
)
from phonewagon_server.api.routing import MAX_JSON_BYTES
from phonewagon_server.config import Rate, Settings
from phonewagon_server.db import Database
from server_testkit import FakeClock, Tenant

GOOD: dict[str, Any] = {"key": KEY, "visitor": None, "page": PAGE, "referrer": ""}


@pytest.fixture
def site(database: Database, tenant: Tenant) -> Site:
    return make_pool(database, tenant, (*POOL, "+18445550114", "+18445550115"))


@pytest.fixture
def client(database: Database, settings: Settings, clock: FakeClock, site: Site) -> TestClient:
    return app_client(database, settings, clock)


def nothing_written(database: Database) -> bool:
    return count(database, "dni_visits") == 0 and count(database, "dni_holds") == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"page": PAGE + "x" * 2048}, "page"),
        ({"page": "javascript:alert(1)"}, "page"),
        ({"page": "ftp://files.example/"}, "page"),
        ({"page": "https:///nohost"}, "page"),
        ({"page": None}, "page"),
        ({"page": 42}, "page"),
        ({"referrer": "https://r.example/" + "x" * 2048}, "referrer"),
        ({"referrer": ["https://r.example/"]}, "referrer"),
        ({"visitor": "short"}, "visitor"),
        ({"visitor": "x" * 65}, "visitor"),
        ({"visitor": "has spaces in it, twenty-two+"}, "visitor"),
        ({"visitor": 1234567890123456789}, "visitor"),
        ({"device": "toaster"}, "device"),
        ({"device": ["mobile"]}, "device"),
        ({"unbounce": "page"}, "unbounce"),
        ({"unbounce": {"page_id": {"deeper": ["junk"]}}}, "unbounce.page_id"),
        ({"unbounce": {"variant_id": "v" * 129}}, "unbounce.variant_id"),
        ({"page": PAGE + "?q=\u0000"}, "page"),
        ({"key": 7}, "key"),
    ],
)
def test_a_malformed_field_is_400_naming_it_and_nothing_is_recorded(
    client: TestClient, database: Database, change: dict[str, Any], field: str
) -> None:
    response = post(client, "/dni/visits", GOOD | change)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert f"The field {field} " in response.json()["detail"]
    assert nothing_written(database)
    assert swapped(post(client, "/dni/visits", GOOD)) == [POOL[0]]  # still up


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"[1, 2, 3]", "text/plain", 400),
        (b'"a string"', "application/json", 400),
        (b"{not json", "text/plain", 400),
        (b'{"key": "\xff\xfe", "page": "https://a.example/"}', "text/plain", 400),
        (b'{"key": "\\ud800"}', "text/plain", 400),
        (b"", "text/plain", 400),
        (b'{"key": "pwk_x"}', "application/x-www-form-urlencoded", 415),
        (b'{"key": "pwk_x"}', "", 415),
        (b'{"a": "' + b"x" * MAX_JSON_BYTES + b'"}', "text/plain", 413),
    ],
)
def test_a_body_that_is_not_a_small_json_object_is_refused(
    client: TestClient, database: Database, body: bytes, content_type: str, status: int
) -> None:
    for path in ("/dni/visits", "/dni/heartbeat"):
        response = client.post(path, content=body, headers={"Content-Type": content_type})
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert nothing_written(database)


def test_a_large_body_sent_in_chunks_is_refused_as_it_is_read(
    client: TestClient, database: Database
) -> None:
    def chunks() -> Any:
        yield b'{"key": "' + b"x" * MAX_JSON_BYTES
        yield b'"}'

    response = client.post("/dni/visits", content=chunks(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert nothing_written(database)


def test_an_unknown_key_of_the_body_is_ignored_as_the_contract_says(
    client: TestClient, database: Database
) -> None:
    response = post(client, "/dni/visits", GOOD | {"screen": {"w": 1920}, "later": [1]})
    assert swapped(response) == [POOL[0]]
    with database.transaction() as tx:
        row = tx.fetchone("SELECT fields FROM dni_visits")
    assert row is not None
    assert "screen" not in row[0]


@pytest.mark.parametrize("key", ["pwk_" + "z" * 24, "pwk_short", "not-a-key", ""])
def test_an_unknown_site_key_is_403(client: TestClient, database: Database, key: str) -> None:
    response = post(client, "/dni/visits", GOOD | {"key": key})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert nothing_written(database)


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36",
        "python-requests/2.31.0",
        "curl/8.5.0",
        "Wget/1.21",
        "Go-http-client/1.1",
        "facebookexternalhit/1.1",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0)",
        "",
    ],
)
def test_a_bot_by_its_user_agent_gets_no_number_and_is_not_recorded(
    client: TestClient, database: Database, agent: str
) -> None:
    response = page_view(client, user_agent=agent)
    assert response.status_code == 200
    assert response.json()["swaps"] == []
    assert nothing_written(database)
    beat = {"key": KEY, "visitor": response.json()["visitor"], "visit": response.json()["visit"]}
    assert swapped(post(client, "/dni/heartbeat", beat)) == []  # not later either
    assert nothing_written(database)


def test_an_address_making_new_visitors_faster_than_people_gets_no_numbers(
    database: Database, settings: Settings, clock: FakeClock, site: Site
) -> None:
    roomy = replace(settings, dni_holds_per_address=100)
    client = app_client(database, roomy, clock)
    views = [page_view(client) for _ in range(7)]
    assert [len(swapped(view)) for view in views] == [1, 1, 1, 1, 1, 0, 0]
    assert count(database, "dni_visits") == 5
    known = page_view(client, visitor=views[0].json()["visitor"])  # a visitor already known
    assert swapped(known) == swapped(views[0])


def test_a_visitor_loading_pages_faster_than_a_person_gets_no_number(
    client: TestClient, database: Database, clock: FakeClock
) -> None:
    views = [
        page_view(client, visitor=visitor_id(1), page=f"{PAGE}?utm_source=x{n}") for n in range(12)
    ]
    assert [len(swapped(view)) for view in views] == [1] * 10 + [0, 0]
    assert count(database, "dni_visits") == 10
    clock.advance(11)
    assert swapped(page_view(client, visitor=visitor_id(1))) == [POOL[0]]


def test_a_page_reloaded_in_a_loop_with_storage_cleared_cannot_drain_the_pool(
    client: TestClient, database: Database, settings: Settings, clock: FakeClock
) -> None:
    taken = []
    for _ in range(20):  # a new visitor each time, slow enough not to look like a bot
        taken += swapped(page_view(client))
        clock.advance(13)
    assert len(taken) == settings.dni_holds_per_address == 3
    person = app_client(database, settings, clock, address="198.51.100.30")
    assert swapped(page_view(person)) == ["+18445550114"]


def test_an_address_over_its_rate_is_429_with_retry_after_and_nothing_recorded(
    database: Database, settings: Settings, clock: FakeClock, site: Site
) -> None:
    client = app_client(database, replace(settings, dni_visit_limit=Rate(3, 60)), clock)
    assert [page_view(client).status_code for _ in range(3)] == [200] * 3
    refused = page_view(client)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    refused_beat = post(client, "/dni/heartbeat", {"key": KEY})
    assert refused_beat.status_code == 429
    assert count(database, "dni_visits") == 3


def test_a_company_over_its_rate_is_429_from_every_address(
    database: Database, settings: Settings, clock: FakeClock, site: Site
) -> None:
    limited = replace(settings, dni_company_limit=Rate(4, 60))
    clients = [app_client(database, limited, clock, address=f"198.51.100.{n}") for n in range(1, 7)]
    # One app per address shares nothing in memory: give them one limiter, as Redis would.
    for other in clients[1:]:
        other.app.state.dni = clients[0].app.state.dni  # type: ignore[attr-defined]
    statuses = [page_view(c, visitor=visitor_id(n)).status_code for n, c in enumerate(clients)]
    assert statuses == [200] * 4 + [429] * 2
    assert count(database, "dni_visits") == 4
