"""Page views written together in one batch (`dni.page_views.write_page_views`) end as they
would one after another: one number per visitor, the address cap counted across the batch,
free numbers in their order of use, and one first visit kept per visitor."""

from __future__ import annotations

from dni_kit import KEY, PAGE, POOL, count, make_pool, visitor_id
from phonewagon_server.db import Database
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.pools import Site
from phonewagon_server.dni.fields import read_page_view
from phonewagon_server.dni.page_views import PageViewWrite, visit_of, write_page_views
from phonewagon_server.dni.pools import HoldAsk, Swap
from server_testkit import NOW_MS, Tenant

HOLD_MS = 15 * 60_000
WINDOW_MS = 30 * 86_400_000


def site_of(database: Database, tenant: Tenant, numbers: tuple[str, ...] = POOL) -> Site:
    make_pool(database, tenant, numbers)
    with database.transaction() as tx:
        site = pool_rows.site_of_key(tx, KEY)
    assert site is not None
    return site


def ask(site: Site, visitor: str, *, address: str = "203.0.113.7", now: int = NOW_MS) -> HoldAsk:
    return HoldAsk(site.company_id, site.pools, visitor, address, now, now + HOLD_MS, 3)


def view(
    site: Site, visitor: str, *, referrer: str = "", address: str = "203.0.113.7"
) -> PageViewWrite:
    page = read_page_view({"key": KEY, "visitor": visitor, "page": PAGE, "referrer": referrer})
    visit = visit_of(site, visitor, page, now=NOW_MS, window_ms=WINDOW_MS)
    return PageViewWrite(ask(site, visitor, address=address), visit)


def write(database: Database, writes: list[PageViewWrite]) -> list[list[str]]:
    with database.transaction(write=True) as tx:
        answers = write_page_views(tx, writes)
    return [[swap.number for swap in swaps] for swaps in answers]


def test_two_tabs_of_one_new_visitor_in_a_batch_share_one_number_and_one_hold(
    database: Database, tenant: Tenant
) -> None:
    site = site_of(database, tenant)
    one, other = visitor_id(1), visitor_id(2)
    assert write(database, [view(site, one), view(site, one), view(site, other)]) == [
        [POOL[0]],
        [POOL[0]],
        [POOL[1]],
    ]
    assert count(database, "dni_holds") == 2
    assert count(database, "dni_visits") == 2  # the first visit of each, not the second tab's


def test_a_returning_visitor_keeps_theirs_beside_new_ones_in_a_batch(
    database: Database, tenant: Tenant
) -> None:
    site = site_of(database, tenant)
    assert write(database, [view(site, visitor_id(1))]) == [[POOL[0]]]
    batch = [view(site, visitor_id(n), address=f"198.51.100.{n}") for n in (2, 1, 3)]
    assert write(database, batch) == [[POOL[1]], [POOL[0]], [POOL[2]]]
    with database.transaction() as tx:
        rows = tx.fetchall("SELECT number, visitor FROM number_holds ORDER BY number")
    assert rows == [(POOL[0], visitor_id(1)), (POOL[1], visitor_id(2)), (POOL[2], visitor_id(3))]


def test_the_address_cap_counts_the_visitors_given_numbers_earlier_in_the_batch(
    database: Database, tenant: Tenant
) -> None:
    numbers = (*POOL, "+18445550114", "+18445550115")  # enough for all five
    site = site_of(database, tenant, numbers)
    batch = [view(site, visitor_id(n)) for n in range(5)]  # one address, three holders at most
    assert write(database, batch) == [[POOL[0]], [POOL[1]], [POOL[2]], [], []]


def test_more_new_visitors_than_free_numbers_leave_the_rest_with_the_business_number(
    database: Database, tenant: Tenant
) -> None:
    site = site_of(database, tenant)
    batch = [view(site, visitor_id(n), address=f"198.51.100.{n}") for n in range(5)]
    answers = write(database, batch)
    assert answers == [[POOL[0]], [POOL[1]], [POOL[2]], [], []]
    with database.transaction() as tx:
        held = tx.fetchall("SELECT COUNT(DISTINCT visitor) FROM number_holds WHERE visitor <> ''")
    assert held == [(3,)]


def test_a_heartbeat_in_a_batch_extends_the_hold_a_page_view_took_in_it(
    database: Database, tenant: Tenant
) -> None:
    site = site_of(database, tenant)
    later = NOW_MS + 60_000
    beat = PageViewWrite(ask(site, visitor_id(1), now=later))
    assert write(database, [view(site, visitor_id(1)), beat]) == [[POOL[0]], [POOL[0]]]
    with database.transaction() as tx:
        rows = tx.fetchall("SELECT started_at, held_until FROM dni_holds")
    assert rows == [(NOW_MS, later + HOLD_MS)]


def test_a_touch_is_kept_beside_a_first_visit_and_internal_navigation_is_not(
    database: Database, tenant: Tenant
) -> None:
    site = site_of(database, tenant)
    visitor = visitor_id(1)
    google = "https://www.google.com/"
    write(
        database, [view(site, visitor), view(site, visitor, referrer=google), view(site, visitor)]
    )
    with database.transaction() as tx:
        rows = tx.fetchall("SELECT fields FROM dni_visits ORDER BY id")
    assert len(rows) == 2  # the first visit, then the touch from Google; not the third view
    assert "Google organic" in rows[1][0]


def test_a_swap_names_the_number_it_replaces(database: Database, tenant: Tenant) -> None:
    site = site_of(database, tenant)
    with database.transaction(write=True) as tx:
        answers = write_page_views(tx, [view(site, visitor_id(1))])
    assert answers == [[Swap(site.pools[0].swap_target, POOL[0])]]
