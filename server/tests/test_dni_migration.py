"""Migrations 6 and 7 upgrade a database with its data: no campaign becomes a pool, and every
pool number a version 6 database knows gets its row of `number_holds`."""

from __future__ import annotations

from starlette.testclient import TestClient

from dni_kit import KEY, TARGET, app_client, page_view, swapped, visitor_id
from phonewagon_server.config import Settings
from phonewagon_server.db import open_database
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.migrations import current_version, upgrade
from server_testkit import NOW_MS, FakeClock, World


def test_a_version_5_database_upgrades_with_its_campaigns_left_as_they_were(
    database_url: str,
) -> None:
    database = open_database(database_url)
    try:
        upgrade(database, to_version=5)
        tenant = World(database).tenant()
        assert [m.version for m in upgrade(database, to_version=6)] == [6]
        assert current_version(database) == 6
        with database.transaction() as tx:
            assert pool_rows.list_pools(tx, tenant.company.id) == []
            assert pool_rows.swap_targets(tx, tenant.account_id) == {}
            assert len(pool_rows.visit_key(tx)) == 64
    finally:
        database.close()


def test_version_7_gives_the_pool_numbers_of_a_version_6_database_to_visitors(
    database_url: str, settings: Settings, clock: FakeClock
) -> None:
    database = open_database(database_url)
    try:
        upgrade(database, to_version=6)
        tenant = World(database).tenant()
        with database.transaction(write=True) as tx:  # as version 6 wrote a pool: no holds
            tx.execute(
                "UPDATE campaigns SET swap_target = ? WHERE id = ?", (TARGET, tenant.campaign.id)
            )
            for number in ("+18445550121", "+18445550122"):
                tx.execute(
                    "INSERT INTO tracking_numbers (number, account_id, company_id, campaign_id,"
                    " forward_to, source, created_at) VALUES (?, ?, ?, ?, ?, '', ?)",
                    (
                        number,
                        tenant.account_id,
                        tenant.company.id,
                        tenant.campaign.id,
                        TARGET,
                        NOW_MS,
                    ),
                )
            tx.execute(
                "INSERT INTO dni_sites (company_id, site_key, created_at) VALUES (?, ?, ?)",
                (tenant.company.id, KEY, NOW_MS),
            )
        assert [m.version for m in upgrade(database)] == [7]
        client: TestClient = app_client(database, settings, clock)
        given = {n for v in (1, 2) for n in swapped(page_view(client, visitor=visitor_id(v)))}
        assert given == {"+18445550121", "+18445550122"}
    finally:
        database.close()
