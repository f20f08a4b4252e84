"""Every query shape of `/calls` reads its own index in page order: no sort, at any depth.

The data set mimics production's skew: the account under test is one of many, so PostgreSQL's
statistics see its companies and campaigns as a small part of a large table.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import psycopg
import pytest

from phonewagon_server.db import Database, open_database
from phonewagon_server.db.calls import explain_read_page, list_calls
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.models import MAX_PAGE_SIZE, CallQuery
from server_testkit import NOW_MS, POSTGRES_URL, World, postgres_schema_url

CALLS_PER_CAMPAIGN = 4_000  # the account under test: 2 companies x 2 campaigns
OTHER_ACCOUNTS = 40
CALLS_PER_OTHER_ACCOUNT = 5_000
DEEP_OFFSET = MAX_PAGE_SIZE  # a resumed ("deep") page starts after this many calls
YEAR_MS = 365 * 24 * 3600 * 1000

SHAPES = {
    "account": "calls_by_account",
    "company": "calls_by_company",
    "campaign": "calls_by_campaign",
}


@dataclass(frozen=True)
class PlannedData:
    database: Database
    queries: dict[str, CallQuery]  # first-page query of each shape


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def planned(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PlannedData]:
    """One analysed database per backend, shared by this module's tests (building it is slow)."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'phonewagon.db'}"
    else:
        schema = f"pw_plans_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        url = postgres_schema_url(schema)
    database = open_database(url)
    try:
        upgrade(database)
        yield PlannedData(database, _fill(database))
    finally:
        database.close()
        if schema is not None:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _fill(database: Database) -> dict[str, CallQuery]:
    world = World(database)
    rng = random.Random(20240501)
    tenant, (_, second), campaigns = world.spread_tenant("Planned Agency")
    for campaign in campaigns:
        times = [NOW_MS - rng.randrange(YEAR_MS // 1000) * 1000 for _ in range(CALLS_PER_CAMPAIGN)]
        world.calls(tenant, times, campaign=campaign)
    others = [world.tenant(f"Other Agency {n}").account_id for n in range(OTHER_ACCOUNTS)]
    with database.transaction(write=True) as tx:
        # Bulk filler in one statement (through `world.calls` it would take most of a minute),
        # spread over the same year: seconds = x mod year, spelled without `%` for psycopg.
        tx.execute(
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO calls"
            " (account_id, company_id, campaign_id, start_time, sid, head, middle, tail)"
            " SELECT account_id, company_id, id, ? - (x - x / ? * ?) * 1000,"
            "  'FILL' || id || '-' || i, '{\"id\":', ',\"updated_at\":', '}'"
            " FROM (SELECT k.account_id, k.company_id, k.id, i, i * 7919 + k.account_id * 13 AS x"
            "  FROM campaigns k CROSS JOIN n"
            f"  WHERE k.account_id IN ({', '.join('?' * len(others))})) AS filler",
            [CALLS_PER_OTHER_ACCOUNT, NOW_MS, YEAR_MS // 1000, YEAR_MS // 1000, *others],
        )
    with database.transaction(write=True) as tx:
        # Only this schema's tables: on PostgreSQL a bare ANALYZE takes every schema in the
        # database, and waits on the locks of other test workers' migrations.
        for table in ("companies", "campaigns", "calls"):
            tx.execute(f"ANALYZE {table}")
    first = CallQuery(
        account_id=tenant.account_id, start_time=0, end_time=NOW_MS, page_size=MAX_PAGE_SIZE
    )
    return {
        "account": first,
        "company": replace(first, company_id=second.id),
        "campaign": replace(first, campaign_id=campaigns[2].id),
    }


def _deep(database: Database, query: CallQuery) -> CallQuery:
    """The query a `next` link makes after `DEEP_OFFSET` calls of this shape."""
    with database.transaction() as tx:
        last = list_calls(tx, query, limit=DEEP_OFFSET)[-1]
    start_time, call_id = last
    return replace(query, end_time=start_time, before_id=call_id)


def _plans(data: PlannedData, shape: str, depth: str) -> list[list[str]]:
    query = data.queries[shape]
    if depth == "deep":
        query = _deep(data.database, query)
    with data.database.transaction() as tx:
        return explain_read_page(tx, query)


@pytest.mark.parametrize("depth", ["first", "deep"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_page_is_one_read_of_its_index_without_a_sort(
    planned: PlannedData, shape: str, depth: str
) -> None:
    """Each shape, first page or resumed deep, walks its own index in page order, in every read
    of the page (SQLite: its keys, then its documents)."""
    plans = _plans(planned, shape, depth)
    assert len(plans) == (2 if planned.database.dialect == "sqlite" else 1)
    index = SHAPES[shape]
    for plan in plans:
        shown = "\n".join(plan)
        if planned.database.dialect == "sqlite":
            assert any(
                re.fullmatch(rf"SEARCH c USING (COVERING )?INDEX {index} \(account_id=\?.*\)", line)
                for line in plan
            ), shown
            assert not any("TEMP B-TREE" in line for line in plan), shown
        else:
            uses_index = rf"Index Scan using {index} on calls c\b"
            assert any(re.search(uses_index, line) for line in plan), shown
            sort = r"\s*(->\s*)?(Incremental )?Sort\b"
            assert not any(re.match(sort, line) for line in plan), shown
