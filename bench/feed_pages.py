"""A page of the change feed (`/calls?updated_since=`) against a page of `/calls`, side by side.

    uv run python bench/feed_pages.py            # 1,000,000 calls a backend
    uv run python bench/feed_pages.py --quick    # 100,000 calls
    uv run python bench/feed_pages.py --write    # also update docs/benchmarks.md

One account's calls are imported (as `bench/import_calls.py` makes them), then each page is read
the way its endpoint reads it, in turns, many times: the first page and one 90% deep, 1000
calls each. A `/calls` page is `db.calls.read_page`; a feed page is `change_horizon` (the first
reads of its transaction: the clock, then the writers' leases) and `read_changes`. Medians, and
their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from import_calls import generate_calls, plan_campaigns, prepare
from testbed import measured_on, postgres_schema, postgres_version, write_section

from phonewagon_server.db import Database, open_database
from phonewagon_server.db.calls import change_horizon, read_changes, read_page
from phonewagon_server.imports import import_calls
from phonewagon_server.models import MAX_PAGE_SIZE, CallQuery, ChangeQuery

SECTION = "## Change feed pages"
ROUNDS = 30


def build(url: str, calls: int) -> tuple[Database, int]:
    campaigns = plan_campaigns()
    account_id = prepare(url, campaigns)
    database = open_database(url)
    now_ms = int(time.time() * 1000) - 60_000
    records = generate_calls(calls, campaigns, account_id=account_id, now_ms=now_ms)
    report = import_calls(database, account_id, enumerate(records, start=1))
    if report.inserted != calls:
        sys.exit(f"the import said {report.as_json()}")
    with database.transaction(write=True) as tx:
        for table in ("companies", "campaigns", "calls"):
            tx.execute(f"ANALYZE {table}")
    return database, account_id


def measures(database: Database, account_id: int, depth: int) -> dict[str, Callable[[], None]]:
    """Each page read, keyed by its name: first and deep, newest-first and feed."""
    with database.transaction() as tx:
        newest = tx.fetchone(
            "SELECT start_time, id FROM calls WHERE account_id = ?"
            " ORDER BY start_time DESC, id DESC LIMIT 1 OFFSET ?",
            (account_id, depth),
        )
        oldest_change = tx.fetchone(
            "SELECT updated_at, id FROM calls WHERE account_id = ?"
            " ORDER BY updated_at, id LIMIT 1 OFFSET ?",
            (account_id, depth),
        )
    if newest is None or oldest_change is None:
        sys.exit(f"the account has fewer than {depth:,} calls")
    first = CallQuery(account_id, start_time=0, end_time=2**62, page_size=MAX_PAGE_SIZE)
    deep = replace(first, end_time=newest[0], before_id=newest[1])
    feed = ChangeQuery(account_id, updated_since=0, page_size=MAX_PAGE_SIZE)
    deep_feed = replace(feed, updated_since=oldest_change[0], after_id=oldest_change[1])

    def calls_page(query: CallQuery) -> Callable[[], None]:
        def once() -> None:
            with database.transaction() as tx:
                assert read_page(tx, query).count == MAX_PAGE_SIZE  # noqa: S101

        return once

    def feed_page(query: ChangeQuery) -> Callable[[], None]:
        def once() -> None:
            with database.transaction() as tx:
                horizon = change_horizon(tx, account_id)
                assert read_changes(tx, query, horizon=horizon).count == MAX_PAGE_SIZE  # noqa: S101

        return once

    return {
        "calls, first page": calls_page(first),
        "feed, first page": feed_page(feed),
        "calls, 90% deep": calls_page(deep),
        "feed, 90% deep": feed_page(deep_feed),
    }


def timed(pages: dict[str, Callable[[], None]]) -> dict[str, float]:
    """Median milliseconds of each, measured in turns so that noise falls on all alike."""
    samples: dict[str, list[float]] = {name: [] for name in pages}
    for round_ in range(ROUNDS + 2):  # two rounds to warm connections and caches
        for name, read in pages.items():
            started = time.perf_counter()
            read()
            if round_ >= 2:
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(times) for name, times in samples.items()}


def rows_of(backend: str, medians: dict[str, float]) -> list[str]:
    rows = []
    for depth in ("first page", "90% deep"):
        calls, feed = medians[f"calls, {depth}"], medians[f"feed, {depth}"]
        rows.append(
            f"| {backend} | {depth} | {calls:.1f} ms | {feed:.1f} ms | {feed / calls:.2f}x |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls a backend")
    parser.add_argument("--quick", action="store_true", help="100,000 calls")
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r}")
    args = parser.parse_args()
    calls = 100_000 if args.quick else args.calls
    depth = calls * 9 // 10
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{Path(workdir) / 'feed.db'}"
        database, account_id = build(url, calls)
        rows += rows_of("SQLite", timed(measures(database, account_id, depth)))
        database.close()
    with postgres_schema() as url:
        database, account_id = build(url, calls)
        rows += rows_of("PostgreSQL", timed(measures(database, account_id, depth)))
        database.close()
    text = "\n".join(
        [
            SECTION,
            "",
            f"A page of 1000 calls of one account of {calls:,}, read as its endpoint reads it"
            " (in process, without HTTP), medians of "
            f"{ROUNDS} reads taken in turns: `/calls` newest first against the change feed"
            " (`updated_since`), whose page also reads the horizon below which every change is"
            " committed (decision 12). Target: the feed within 1.2x of `/calls` at any depth.",
            "",
            "| backend | page | `/calls` | feed | feed / `/calls` |",
            "|---|---|---:|---:|---:|",
            *rows,
            "",
            measured_on(f"PostgreSQL {postgres_version()}"),
            "",
            "Rerun: `uv run python bench/feed_pages.py --write` (`--quick` for 100,000 calls).",
        ]
    )
    print(text)
    if args.write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
