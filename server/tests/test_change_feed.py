"""`/calls?updated_since=`: every change once at least, oldest first, none ever skipped, also when
writers commit concurrently and out of the order of their stamps (decision 12)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import random
import threading
import time
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from phonewagon_server.db import Database, open_database
from phonewagon_server.db.calls import change_horizon, read_call, read_changes, write_call
from phonewagon_server.models import MAX_PAGE_SIZE, Call, Campaign, ChangeQuery
from server_testkit import NOW_MS, PUBLIC_URL, Tenant, World


def let_the_clock_pass() -> None:
    """The feed withholds the millisecond it is read in (a writer may still stamp in it): a test
    reading right after it wrote lets that millisecond end first."""
    time.sleep(0.002)


def feed(api: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    """Every call of a feed query, following `next` until it is absent."""
    let_the_clock_pass()
    response = api.get("/calls", params=params, auth=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    calls = body["calls"]
    while "next" in body:
        assert body["next"].startswith(f"{PUBLIC_URL}/calls?")
        response = api.get(body["next"].removeprefix(PUBLIC_URL), auth=tenant.auth)
        assert response.status_code == 200, response.text
        body = response.json()
        calls += body["calls"]
    return list(calls)


def change(database: Database, tenant: Tenant, sid: str, **fields: Any) -> None:
    with database.transaction(write=True, changing=tenant.account_id) as tx:
        stored = read_call(tx, tenant.account_id, sid)
        assert stored is not None
        write_call(tx, dataclasses.replace(stored, **fields), tenant.campaign)


def test_the_feed_gives_every_call_oldest_change_first(
    roomy_api: TestClient, tenant: Tenant, world: World
) -> None:
    sids = world.calls(tenant, [NOW_MS - n for n in range(7)])
    calls = feed(roomy_api, tenant, updated_since=0, page_size=3)
    assert sorted(c["sid"] for c in calls) == sorted(sids)
    order = [(c["updated_at"], c["id"]) for c in calls]
    assert order == sorted(order)


def test_a_changed_call_moves_to_the_end_and_an_unchanged_write_moves_nothing(
    roomy_api: TestClient, database: Database, tenant: Tenant, world: World
) -> None:
    first, second = world.calls(tenant, [NOW_MS - 2, NOW_MS - 1])
    before = {c["sid"]: c for c in feed(roomy_api, tenant, updated_since=0)}
    change(database, tenant, first, status="completed", duration=61)
    change(database, tenant, second)  # identical: no change
    since = max(c["updated_at"] for c in before.values())
    after = feed(roomy_api, tenant, updated_since=since + 1)
    assert [(c["sid"], c["status"], c["duration"]) for c in after] == [(first, "completed", 61)]
    assert after[0]["updated_at"] > before[first]["updated_at"]
    unchanged = {c["sid"]: c for c in feed(roomy_api, tenant, updated_since=0)}[second]
    assert unchanged == before[second]


def test_next_links_keep_the_filters_and_resume_inside_a_millisecond(
    roomy_api: TestClient, tenant: Tenant, world: World
) -> None:
    other = world.campaign(tenant.company, "Bing Ads", "bing-1")
    mine = world.calls(tenant, [NOW_MS - n for n in range(5)])  # one batch: one millisecond or so
    world.calls(tenant, [NOW_MS - n for n in range(3)], campaign=other)
    response = roomy_api.get(
        "/calls",
        params={"updated_since": 0, "campaign_id": tenant.campaign.id, "page_size": 2},
        auth=tenant.auth,
    )
    link = response.json()["next"]
    assert "campaign_id=" in link
    assert "page_size=2" in link
    assert "after_id=" in link
    calls = feed(roomy_api, tenant, updated_since=0, campaign_id=tenant.campaign.id, page_size=2)
    assert sorted(c["sid"] for c in calls) == sorted(mine)  # each once


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"after_id": 3}, "after_id"),
        ({"updated_since": 0, "before_id": 3}, "before_id"),
        ({"updated_since": -1}, "updated_since"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": 0, "start_time": 5, "end_time": 4}, "start_time"),
    ],
)
def test_a_feed_query_that_cannot_be_answered_is_a_400_naming_it(
    api: TestClient, tenant: Tenant, params: dict[str, Any], name: str
) -> None:
    response = api.get("/calls", params=params, auth=tenant.auth)
    assert response.status_code == 400
    assert [e["name"] for e in response.json()["errors"]] == [name]


def test_the_feed_of_another_accounts_company_is_a_404(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    other = world.tenant("Other Agency")
    response = api.get(
        "/calls", params={"updated_since": 0, "company_id": other.company.id}, auth=tenant.auth
    )
    assert response.status_code == 404


def test_a_change_committed_after_a_later_one_is_not_skipped(postgres_database: Database) -> None:
    """The trap: A stamps first and commits last, B stamps later and commits first. A reader
    that got B's change and went on past it would never see A's."""
    database = postgres_database
    tenant = World(database).tenant()
    stamped, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with database.transaction(write=True, changing=tenant.account_id) as tx:
            write_call(tx, a_call(tenant, "CA-slow"), tenant.campaign)
            stamped.set()
            release.wait(30)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert stamped.wait(30)
    time.sleep(0.002)
    with database.transaction(write=True, changing=tenant.account_id) as tx:
        write_call(tx, a_call(tenant, "CA-fast"), tenant.campaign)
    seen_before = changed_sids(database, tenant)
    release.set()
    writer.join(30)
    seen_after = changed_sids(database, tenant)
    assert seen_before == []  # CA-fast waits below the slow writer's lease
    assert seen_after == ["CA-slow", "CA-fast"]


def a_call(tenant: Tenant, sid: str, **fields: Any) -> Call:
    return Call(sid=sid, campaign_id=tenant.campaign.id, start_time=NOW_MS, **fields)


def changed_sids(database: Database, tenant: Tenant, since: int = 0) -> list[str]:
    let_the_clock_pass()
    with database.transaction() as tx:
        horizon = change_horizon(tx, tenant.account_id)
    query = ChangeQuery(tenant.account_id, updated_since=since, page_size=MAX_PAGE_SIZE)
    with database.transaction() as tx:
        page = read_changes(tx, query, horizon=horizon)
    return [c["sid"] for c in _documents(page.documents)]


def _documents(joined: bytes) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = orjson.loads(b"[" + joined + b"]")
    return documents


# Several writer processes change a few calls over and over, each write waiting a little
# between its stamp and its commit; a reader follows the feed all along, never going back.
WRITERS, WRITES, CALLS = 4, 60, 8


def _write_changes(url: str, account_id: int, campaign: Campaign, writer: int) -> None:
    database = open_database(url)
    rng = random.Random(writer)
    try:
        for n in range(WRITES):
            sid = f"CA-shared-{rng.randrange(CALLS)}"
            call = Call(sid=sid, campaign_id=campaign.id, start_time=NOW_MS, status=f"{writer}-{n}")
            with database.transaction(write=True, changing=account_id) as tx:
                write_call(tx, call, campaign)
                time.sleep(rng.random() * 0.01)  # stamped, not yet committed
    finally:
        database.close()


def test_a_reader_following_the_feed_sees_every_calls_last_change_under_concurrent_writers(
    postgres_url: str, postgres_database: Database
) -> None:
    database = postgres_database
    tenant = World(database).tenant()
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(
            target=_write_changes, args=(postgres_url, tenant.account_id, tenant.campaign, w)
        )
        for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    seen: dict[str, list[str]] = {}
    cursor: tuple[int, int | None] = (0, None)
    try:
        while True:
            done = not any(process.is_alive() for process in writers)
            cursor = _follow(database, tenant, cursor, seen)
            if done:
                break
            time.sleep(0.005)
        cursor = _follow(database, tenant, cursor, seen)
        with database.transaction() as tx:
            final = {
                f"CA-shared-{n}": read_call(tx, tenant.account_id, f"CA-shared-{n}")
                for n in range(CALLS)
            }
    finally:
        for process in writers:
            process.join(60)
    assert [process.exitcode for process in writers] == [0] * WRITERS
    for sid, call in final.items():
        if call is not None:
            assert seen[sid][-1] == call.status, sid  # its last change, seen last


def _follow(
    database: Database,
    tenant: Tenant,
    cursor: tuple[int, int | None],
    seen: dict[str, list[str]],
) -> tuple[int, int | None]:
    """Read the feed from `cursor` to its end, as a client following `next` does."""
    while True:
        with database.transaction() as tx:
            horizon = change_horizon(tx, tenant.account_id)
        query = ChangeQuery(
            tenant.account_id, updated_since=cursor[0], after_id=cursor[1], page_size=5
        )
        with database.transaction() as tx:
            page = read_changes(tx, query, horizon=horizon)
        calls = _documents(page.documents)
        for call in calls:
            seen.setdefault(call["sid"], []).append(call["status"])
        if calls:
            cursor = (calls[-1]["updated_at"], calls[-1]["id"])
        if page.resume_after is None:
            return cursor


def test_a_write_that_fails_holds_no_reader_back(
    roomy_api: TestClient, database: Database, tenant: Tenant
) -> None:
    """Its changes are undone and its lease dropped with them: the feed goes on at once."""

    def fail_after_writing() -> None:
        with database.transaction(write=True, changing=tenant.account_id) as tx:
            write_call(tx, a_call(tenant, "CA-undone"), tenant.campaign)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_after_writing()
    with database.transaction(write=True, changing=tenant.account_id) as tx:
        write_call(tx, a_call(tenant, "CA-next"), tenant.campaign)
    assert [c["sid"] for c in feed(roomy_api, tenant, updated_since=0)] == ["CA-next"]
    with database.transaction() as tx:
        assert tx.fetchall("SELECT id FROM change_leases") == []
