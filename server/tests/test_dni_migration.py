"""Migration 6 upgrades a database of version 5 with its data: no campaign becomes a pool."""

from __future__ import annotations

from phonewagon_server.db import open_database
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.migrations import current_version, upgrade
from server_testkit import World


def test_a_version_5_database_upgrades_with_its_campaigns_left_as_they_were(
    database_url: str,
) -> None:
    database = open_database(database_url)
    try:
        upgrade(database, to_version=5)
        tenant = World(database).tenant()
        assert [m.version for m in upgrade(database)] == [6]
        assert current_version(database) == 6
        with database.transaction() as tx:
            assert pool_rows.list_pools(tx, tenant.company.id) == []
            assert pool_rows.swap_targets(tx, tenant.account_id) == {}
            assert len(pool_rows.visit_key(tx)) == 64
    finally:
        database.close()
