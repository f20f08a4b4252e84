"""Visits and holds past the attribution window go, in short batches; recent ones, with the
holds and the attribution they give, stay."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from dni_kit import KEY, POOL, app_client, count, make_pool, page_view, post, swapped, visitor_id
from phonewagon_server.background import run_work
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.db import visits as visit_rows
from phonewagon_server.dni.purge import purge_visits
from server_testkit import NOW_MS, FakeClock, Tenant

DAY_MS = 86_400_000


def old_visits(database: Database, tenant: Tenant, *, count: int, age_days: int, now: int) -> None:
    with database.transaction(write=True) as tx:
        for n in range(count):
            visit_rows.insert_visit(
                tx, company_id=tenant.company.id, visitor=f"old-{age_days}-{n}",
                now=now - age_days * DAY_MS - n, paid=False, fields={"user_source": "Direct"},
            )  # fmt: skip


def test_old_visits_go_in_batches_and_recent_visits_and_holds_stay(
    database: Database, settings: Settings, clock: FakeClock, tenant: Tenant
) -> None:
    make_pool(database, tenant)
    old_visits(database, tenant, count=25, age_days=31, now=NOW_MS)
    client = app_client(database, settings, clock)
    view = page_view(client, visitor=visitor_id(1), referrer="https://www.google.com/")
    assert swapped(view) == [POOL[0]]
    purged = purge_visits(database, now=NOW_MS, attribution_days=30, batch=4)
    assert (purged.visits, purged.holds) == (25, 0)
    assert count(database, "dni_visits") == 1
    beat = {"key": KEY, "visitor": visitor_id(1), "visit": view.json()["visit"]}
    assert swapped(post(client, "/dni/heartbeat", beat)) == [POOL[0]]  # the hold survived
    with database.transaction() as tx:
        touch = visit_rows.first_touch(
            tx, tenant.company.id, visitor_id(1), since=NOW_MS - 30 * DAY_MS, until=NOW_MS
        )
    assert touch is not None
    assert touch.fields["user_source"] == "Google organic"


def test_holds_over_before_the_window_go_too(
    database: Database, settings: Settings, clock: FakeClock, tenant: Tenant
) -> None:
    make_pool(database, tenant)
    client = app_client(database, settings, clock)
    swapped(page_view(client, visitor=visitor_id(1)))
    clock.advance(31 * 86400)
    swapped(page_view(client, visitor=visitor_id(2)))
    now = int(clock() * 1000)
    purged = purge_visits(database, now=now, attribution_days=30, batch=1)
    assert (purged.visits, purged.holds) == (1, 1)
    assert count(database, "dni_holds") == 1


def test_the_background_work_purges_when_it_starts_even_without_twilio(
    database: Database, settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    old_visits(database, tenant, count=3, age_days=40, now=int(time.time() * 1000))
    old_visits(database, tenant, count=2, age_days=2, now=int(time.time() * 1000))
    stop = threading.Event()
    work = threading.Thread(
        target=run_work, args=(replace(settings, twilio_auth_tokens=()), database, stop)
    )
    work.start()
    try:
        deadline = time.monotonic() + 30
        while count(database, "dni_visits") != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        work.join(timeout=60)
    assert count(database, "dni_visits") == 2
    assert not work.is_alive()
