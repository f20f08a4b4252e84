"""POST /dni/visits and /dni/heartbeat over HTTP: numbers handed out and kept, origins, CORS."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from dni_kit import (
    KEY,
    PAGE,
    POOL,
    TARGET,
    Site,
    app_client,
    count,
    make_pool,
    page_view,
    post,
    swapped,
    visitor_id,
)
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.db import numbers as number_rows
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.numbers import TrackingNumber
from phonewagon_server.dni.visits import SITE_SECONDS
from server_testkit import NOW_MS, FakeClock, Tenant, World

ORIGIN = "https://www.acme-plumbing.example"


@pytest.fixture
def site(database: Database, tenant: Tenant) -> Site:
    return make_pool(database, tenant)


@pytest.fixture
def client(database: Database, settings: Settings, clock: FakeClock, site: Site) -> TestClient:
    return app_client(database, settings, clock)


def metric(client: TestClient, name: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match[1])


def test_a_first_page_view_gets_a_visitor_id_a_visit_token_and_a_pool_number(
    client: TestClient, database: Database
) -> None:
    response = page_view(client)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"visitor", "visit", "swaps", "heartbeat_seconds"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,64}", body["visitor"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,128}", body["visit"])
    assert body["swaps"] == [{"target": TARGET, "number": POOL[0]}]
    assert body["heartbeat_seconds"] == 60
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in response.headers["vary"]
    assert count(database, "dni_visits") == 1


def test_a_visitor_keeps_their_number_and_internal_navigation_records_no_visit(
    client: TestClient, database: Database
) -> None:
    first = page_view(client).json()
    again = page_view(client, visitor=first["visitor"], page=PAGE + "services", referrer=PAGE)
    assert swapped(again) == [POOL[0]]
    assert again.json()["visitor"] == first["visitor"]
    assert count(database, "dni_visits") == 1
    touch = page_view(client, visitor=first["visitor"], page=PAGE + "?utm_source=newsletter")
    assert swapped(touch) == [POOL[0]]
    assert count(database, "dni_visits") == 2


def test_numbers_go_to_the_least_recently_used_free_one(
    client: TestClient, clock: FakeClock
) -> None:
    a, b, c = (page_view(client, visitor=visitor_id(n)) for n in range(3))
    assert [swapped(r)[0] for r in (a, b, c)] == list(POOL)
    clock.advance(60)
    beat = {"key": KEY, "visitor": visitor_id(0), "visit": a.json()["visit"]}
    assert swapped(post(client, "/dni/heartbeat", beat)) == [POOL[0]]  # held longest now
    clock.advance(16 * 60)  # every hold over: the first number was released last
    later = [swapped(page_view(client, visitor=visitor_id(n)))[0] for n in range(10, 13)]
    assert later == [POOL[1], POOL[2], POOL[0]]


def test_a_hold_lasts_while_heartbeats_come_and_the_hold_time_after_the_last(
    database: Database, settings: Settings, clock: FakeClock, tenant: Tenant
) -> None:
    make_pool(database, tenant, POOL[:1])
    client = app_client(database, settings, clock)
    holder = page_view(client, visitor=visitor_id(1)).json()
    beat = {"key": KEY, "visitor": visitor_id(1), "visit": holder["visit"]}
    for _ in range(3):  # 30 minutes of heartbeats: longer than a hold
        clock.advance(10 * 60)
        assert swapped(post(client, "/dni/heartbeat", beat)) == [POOL[0]]
        assert swapped(page_view(client, visitor=visitor_id(2))) == []
    clock.advance(14 * 60)
    assert swapped(page_view(client, visitor=visitor_id(2))) == []
    clock.advance(2 * 60)  # 16 minutes after the last heartbeat
    assert swapped(page_view(client, visitor=visitor_id(2))) == [POOL[0]]
    lapsed = post(client, "/dni/heartbeat", beat)
    assert swapped(lapsed) == []  # the number went to someone else, and none is free


def test_a_heartbeat_after_a_lapse_takes_a_fresh_number(
    client: TestClient, clock: FakeClock
) -> None:
    holder = page_view(client, visitor=visitor_id(1)).json()
    clock.advance(20 * 60)
    beat = {"key": KEY, "visitor": visitor_id(1), "visit": holder["visit"]}
    assert swapped(post(client, "/dni/heartbeat", beat)) == [POOL[1]]  # least recently used


def test_a_heartbeat_for_a_visit_never_given_is_404(client: TestClient) -> None:
    holder = page_view(client, visitor=visitor_id(1)).json()
    forged = {"key": KEY, "visitor": visitor_id(2), "visit": holder["visit"]}
    response = post(client, "/dni/heartbeat", forged)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_an_exhausted_pool_leaves_the_page_alone_and_counts_a_fallback(
    client: TestClient, database: Database, settings: Settings, clock: FakeClock
) -> None:
    before = metric(client, "phonewagon_dni_fallbacks_total")
    for n in range(3):
        assert len(swapped(page_view(client, visitor=visitor_id(n)))) == 1
    elsewhere = app_client(database, settings, clock, address="198.51.100.9")
    assert swapped(page_view(elsewhere, visitor=visitor_id(9))) == []
    assert metric(client, "phonewagon_dni_fallbacks_total") == before + 1


def test_every_pool_of_the_company_gets_its_own_number(
    database: Database, settings: Settings, clock: FakeClock, site: Site, world: World
) -> None:
    second = world.campaign(site.tenant.company, "Second site number", "pool2")
    with database.transaction(write=True) as tx:
        pool_rows.set_swap_target(tx, second.id, "+15035550199")
        number_rows.add_number(
            tx,
            TrackingNumber(
                "+18445550199",
                site.tenant.account_id,
                site.tenant.company.id,
                second.id,
                "+15035550199",
                "",
            ),
            now=NOW_MS,
        )
    client = app_client(database, settings, clock)
    swaps = page_view(client, visitor=visitor_id(1)).json()["swaps"]
    assert sorted(swaps, key=lambda s: s["target"]) == [
        {"target": TARGET, "number": POOL[0]},
        {"target": "+15035550199", "number": "+18445550199"},
    ]


def test_a_campaign_made_a_pool_after_its_numbers_hands_them_out_within_seconds(
    client: TestClient, database: Database, clock: FakeClock, site: Site, world: World
) -> None:
    assert swapped(page_view(client, visitor=visitor_id(1))) == [POOL[0]]  # its site read now
    second = world.campaign(site.tenant.company, "Second site number", "pool2")
    with database.transaction(write=True) as tx:
        tracking = TrackingNumber(
            "+18445550199", site.tenant.account_id, site.tenant.company.id, second.id, "", ""
        )
        number_rows.add_number(tx, tracking, now=NOW_MS)
        pool_rows.set_swap_target(tx, second.id, "+15035550199")
    clock.advance(SITE_SECONDS + 1)
    assert sorted(swapped(page_view(client, visitor=visitor_id(2)))) == [POOL[1], "+18445550199"]


def test_a_company_without_pools_records_visits_and_swaps_nothing(
    database: Database, settings: Settings, clock: FakeClock, world: World
) -> None:
    other = world.tenant("Other Agency")
    with database.transaction(write=True) as tx:
        pool_rows.add_site(tx, other.company.id, "pwk_" + "o" * 24, now=NOW_MS)
    client = app_client(database, settings, clock)
    assert swapped(page_view(client, "pwk_" + "o" * 24)) == []
    assert count(database, "dni_visits") == 1


def test_an_allowed_origin_is_answered_with_its_cors_headers(
    database: Database, settings: Settings, clock: FakeClock, tenant: Tenant
) -> None:
    make_pool(database, tenant, origins=(ORIGIN, "https://shop.acme.example"))
    client = app_client(database, settings, clock)
    response = page_view(client, origin="https://shop.acme.example")
    assert swapped(response) == [POOL[0]]
    assert response.headers["access-control-allow-origin"] == "https://shop.acme.example"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
def test_an_origin_the_company_does_not_allow_is_403_and_nothing_is_recorded(
    database: Database, settings: Settings, clock: FakeClock, tenant: Tenant, origin: str | None
) -> None:
    make_pool(database, tenant, origins=(ORIGIN,))
    client = app_client(database, settings, clock)
    response = page_view(client, origin=origin)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert count(database, "dni_visits") == 0
    assert count(database, "dni_holds") == 0


def test_without_origins_set_any_origin_may_record_visits(client: TestClient) -> None:
    response = page_view(client, origin="https://anything.example")
    assert response.headers["access-control-allow-origin"] == "https://anything.example"


@pytest.mark.parametrize("path", ["/dni/visits", "/dni/heartbeat"])
def test_a_preflight_is_answered_for_any_origin(client: TestClient, path: str) -> None:
    response = client.options(
        path,
        headers={
            "Origin": "https://www.acme-plumbing.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "Content-Type"
    assert "Origin" in response.headers["vary"]


def test_the_apis_own_cors_setting_leaves_the_visit_paths_to_their_own(
    database: Database, settings: Settings, clock: FakeClock, site: Site
) -> None:
    strict = replace(settings, cors_origins=("https://app.example",))
    client = app_client(database, strict, clock)
    preflight = client.options(
        "/dni/visits", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    response = page_view(client)
    assert swapped(response) == [POOL[0]]
    assert response.headers["access-control-allow-origin"] == ORIGIN
    api = client.get("/companies", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in api.headers


def test_page_views_of_people_are_counted(client: TestClient) -> None:
    before = metric(client, "phonewagon_dni_visits_total")
    page_view(client)
    page_view(client, user_agent="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert metric(client, "phonewagon_dni_visits_total") == before + 1


def test_a_number_removed_from_the_pool_is_handed_out_no_more(
    client: TestClient, database: Database
) -> None:
    assert swapped(page_view(client, visitor=visitor_id(1))) == [POOL[0]]
    with database.transaction(write=True) as tx:
        assert number_rows.remove_number(tx, POOL[0])
    assert swapped(page_view(client, visitor=visitor_id(1))) == [POOL[1]]
    assert swapped(page_view(client, visitor=visitor_id(2))) == [POOL[2]]
    assert swapped(page_view(client, visitor=visitor_id(3))) == []
