"""The web app's Calls page of a large account, over HTTP, signed in (issue 13).

    uv run python bench/app_pages.py                  # an account of 2,000,000 calls a backend
    uv run python bench/app_pages.py --calls 300000   # a smaller account
    uv run python bench/app_pages.py --quick          # 100,000 calls, fewer rounds
    uv run python bench/app_pages.py --write          # also update docs/benchmarks.md

On each backend (a SQLite file; PostgreSQL in a fresh schema, dropped afterwards) one account's
calls are imported as `bench/import_calls.py` makes them (180 days), a person of the account is
given a session, and `phonewagon-server serve` answers `GET /app/calls` over loopback with that
session's cookie: the first page, a page half the account deep (its `before` cursor), a page of
the busiest source, a page of the rarest source (each reading at most 20,000 calls), and a
company's first page. Each is asked ROUNDS times in turns over one keep-alive connection; p50
and p95. The chart is cached for a minute, so these pages reuse it: its own cost, counting the
last 30 days by source, is measured apart (in process, "chart, counted").
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from import_calls import generate_calls, plan_campaigns, prepare
from load_test import serve
from testbed import measured_on, postgres_schema, postgres_version, write_section

from phonewagon_server.db import Database, open_database
from phonewagon_server.db.call_browsing import count_calls_by_day_and_source, distinct_sources
from phonewagon_server.db.users import create_user, insert_session
from phonewagon_server.imports import import_calls
from phonewagon_server.web.sessions import SESSION_MS, hash_token, new_session_id

SECTION = "## Web app pages"
PAGES = ("first page", "deep page", "busiest source", "rarest source", "one company")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(url: str, calls: int) -> tuple[Database, int, str]:
    """The account, its calls, and a live session's cookie value."""
    campaigns = plan_campaigns()
    account_id = prepare(url, campaigns)
    database = open_database(url)
    now_ms = int(time.time() * 1000) - 60_000
    started = time.perf_counter()
    records = generate_calls(calls, campaigns, account_id=account_id, now_ms=now_ms)
    report = import_calls(database, account_id, enumerate(records, start=1))
    if report.inserted != calls:
        sys.exit(f"the import said {report.as_json()}")
    log(f"imported {calls:,} calls in {time.perf_counter() - started:.0f} s")
    session = new_session_id()
    with database.transaction(write=True) as tx:
        for table in ("companies", "campaigns", "calls"):
            tx.execute(f"ANALYZE {table}")
        user = create_user(
            tx, account_id=account_id, email="bench@example.com", password_hash="", now=now_ms
        )
        assert user is not None  # noqa: S101 - a fresh database
        insert_session(
            tx, id_hash=hash_token(session), user_id=user.id, now=now_ms,
            expires_at=now_ms + SESSION_MS,
        )  # fmt: skip
    return database, account_id, session


def paths(database: Database, account_id: int, calls: int) -> dict[str, str]:
    with database.transaction() as tx:
        deep = tx.fetchone(
            "SELECT start_time, id FROM calls WHERE account_id = ?"
            " ORDER BY start_time DESC, id DESC LIMIT 1 OFFSET ?",
            (account_id, calls // 2),
        )
        daily = count_calls_by_day_and_source(
            tx, account_id, days=30, now_ms=int(time.time() * 1000)
        )
    assert deep is not None  # noqa: S101
    sources = [source for source in distinct_sources(daily) if source]
    return {
        "first page": "/app/calls",
        "deep page": f"/app/calls?before={deep[0]}.{deep[1]}",
        "busiest source": "/app/calls?" + urlencode({"source": sources[0]}),
        "rarest source": "/app/calls?" + urlencode({"source": sources[-1]}),
        "one company": "/app/calls?company=2",
    }


def chart_seconds(database: Database, account_id: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        with database.transaction() as tx:
            count_calls_by_day_and_source(tx, account_id, days=30, now_ms=int(time.time() * 1000))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def getter(url: str, path: str, session: str) -> Callable[[], float]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Cookie": f"pw_session={session}"}

    def once() -> float:
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or b"<table" not in body:
            sys.exit(f"GET {path}: {response.status} {body[:300]!r}")
        return elapsed

    return once


def percentile(samples: list[float], q: int) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(backend: str, url: str, calls: int, rounds: int) -> dict[str, tuple[float, float]]:
    database, account_id, session = build(url, calls)
    results: dict[str, tuple[float, float]] = {}
    try:
        asked = paths(database, account_id, calls)
        chart = chart_seconds(database, account_id, max(3, rounds // 10))
        results["chart, counted"] = (chart, chart)
        env = {"PHONEWAGON_DATABASE_URL": url}
        with serve(env, workers=1) as served:
            gets = {name: getter(served.url, path, session) for name, path in asked.items()}
            samples: dict[str, list[float]] = {name: [] for name in gets}
            for round_ in range(rounds + 2):  # two rounds to warm connections and caches
                for name, get in gets.items():
                    elapsed = get()
                    if round_ >= 2:
                        samples[name].append(elapsed)
        for name in PAGES:
            results[name] = (percentile(samples[name], 50), percentile(samples[name], 95))
            log(f"{backend} {name}: p50 {results[name][0] * 1000:.1f} ms,"
                f" p95 {results[name][1] * 1000:.1f} ms")  # fmt: skip
    finally:
        database.close()
    return results


def section(results: dict[str, dict[str, tuple[float, float]]], calls: int, command: str) -> str:
    lines = [
        SECTION,
        "",
        f"`{command}`: `GET /app/calls` (50 calls a page, the chart from its one-minute cache)"
        f" of a signed-in person of an account of {calls:,} calls (180 days), over loopback HTTP"
        " against `phonewagon-server serve`, one keep-alive connection; milliseconds. A source"
        ' page reads at most 20,000 calls; "chart, counted" is the chart\'s count of the last 30'
        " days by source, done once a minute per account and process (median, in process).",
        "",
        "| Page | SQLite p50 | SQLite p95 | PostgreSQL p50 | PostgreSQL p95 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in (*PAGES, "chart, counted"):
        cells = []
        for backend in ("SQLite", "PostgreSQL"):
            p50, p95 = results[backend][name]
            cells += [f"{p50 * 1000:.1f}", f"{p95 * 1000:.1f}" if name in PAGES else ""]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", measured_on(f"PostgreSQL {postgres_version()}"), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="100,000 calls, 30 rounds")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    calls, rounds = (100_000, 30) if args.quick else (args.calls, args.rounds)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'app-pages.db'}"
        results["SQLite"] = measure("SQLite", url, calls, rounds)
    with postgres_schema() as url:
        results["PostgreSQL"] = measure("PostgreSQL", url, calls, rounds)
    command = "uv run python bench/app_pages.py" + (
        " --quick" if args.quick else f" --calls {calls}" if calls != 2_000_000 else ""
    )
    text = section(results, calls, command)
    print(text)
    if args.write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
