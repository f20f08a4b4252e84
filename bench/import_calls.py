"""How fast `phonewagon-server calls import` writes a large file, on SQLite and on PostgreSQL.

    uv run python bench/import_calls.py            # 1,000,000 calls
    uv run python bench/import_calls.py --quick    # 100,000 calls
    uv run python bench/import_calls.py --write    # also update docs/benchmarks.md

It writes one account's calls as JSON Lines, in the shape `/calls` pages have (newest first, every
field, derived ones included), then runs the real command twice on each backend: the first import
inserts every row, the rerun finds every row unchanged. Times are wall times of the whole process,
start-up included, as an operator sees them. PostgreSQL runs in a fresh schema, dropped afterwards.

The engine floor beside them is the database alone storing the same rows: one
`INSERT INTO calls SELECT ... ORDER BY id` from the imported table into an empty one of the same
schema (with the same indexes), in the same database.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import psycopg
from testbed import (
    BENCHMARKS,
    ROOT,
    measured_on,
    postgres_schema,
    postgres_version,
    schema_of,
    write_section,
)

SECTION = "## Call imports"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Source:
    campaign: str
    user_source: str
    utm_source: str = ""
    utm_medium: str = ""
    click_id: str = ""  # which of gclid / fbclid / msclkid the visit carries
    referrer: str = ""
    paid: bool = False


SOURCES = (
    Source("Google Ads", "Google Ads", "google", "cpc", "gclid", "https://www.google.com/", True),
    Source("Bing Ads", "Bing Ads", "bing", "cpc", "msclkid", "https://www.bing.com/", True),
    Source(
        "Facebook Ads",
        "Facebook Ads",
        "facebook",
        "paid_social",
        "fbclid",
        "https://m.facebook.com/",
    ),
    Source("Google organic", "Google organic", referrer="https://www.google.com/"),
    Source("Yahoo organic", "Yahoo organic", referrer="https://search.yahoo.com/"),
    Source("Direct", "Direct"),
)
COMPANIES = (
    ("Brightside Dental", "brightsidedental.example", ("dentist near me", "emergency dentist")),
    ("Summit Roofing", "summitroofing.example", ("roof repair", "roof replacement cost")),
    ("Harbor Law Group", "harborlaw.example", ("injury lawyer", "car accident attorney")),
)
STATUSES = ("completed", "no-answer", "busy", "failed", "canceled")
STATUS_WEIGHTS = (85, 8, 3, 2, 2)
AREA_CODES = ("212", "305", "312", "415", "512", "617", "702", "713", "808", "929")
NAMES = ("", "", "WIRELESS CALLER", "SMITH JOHN", "GARCIA MARIA", "NGUYEN ANH", "BOSTON MA")


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    company_id: int
    company: int  # index into COMPANIES
    source: Source
    to_number: str


def plan_campaigns() -> list[Campaign]:
    """Every company runs a campaign per source, with its own tracking number (555-01XX)."""
    campaigns = []
    for company, _ in enumerate(COMPANIES):
        for index, source in enumerate(SOURCES):
            number = company * len(SOURCES) + index
            campaigns.append(
                Campaign(
                    id=f"s{2212 + number}",
                    name=source.campaign,
                    company_id=company + 1,
                    company=company,
                    source=source,
                    to_number=f"+1844555{100 + number:04d}",
                )
            )
    return campaigns


def generate_calls(
    rows: int, campaigns: list[Campaign], *, account_id: int, now_ms: int, seed: int = 2212
) -> Iterator[dict[str, Any]]:
    """`rows` calls of the last 180 days, newest first, with source fields consistent together."""
    rng = random.Random(seed)  # noqa: S311 - test data, deterministic on purpose
    start_times = sorted((now_ms - rng.randrange(180 * DAY_MS) for _ in range(rows)), reverse=True)
    callers = [f"+1{area}555{n:04d}" for area in AREA_CODES for n in range(100, 200)]
    for number, start_time in enumerate(start_times, start=1):
        campaign = rng.choice(campaigns)
        source = campaign.source
        domain = COMPANIES[campaign.company][1]
        keywords = COMPANIES[campaign.company][2]
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        sid = f"CA{rng.getrandbits(128):032x}"
        click = f"{rng.getrandbits(96):024x}" if source.click_id else ""
        paid = source.paid or bool(source.click_id)
        keyword = rng.choice(keywords) if paid else ""
        yield {
            "id": rows - number + 1,
            "account_id": account_id,
            "company_id": campaign.company_id,
            "campaign_id": campaign.id,
            "campaign_name": campaign.name,
            "sid": sid,
            "start_time": start_time,
            "duration": int(rng.expovariate(1 / 150)) + 3 if status == "completed" else 0,
            "status": status,
            "direction": "inbound",
            "from_number": rng.choice(callers),
            "to_number": campaign.to_number,
            "contact_name": rng.choice(NAMES),
            "is_first_time_caller": rng.random() < 0.55,
            "recording_url": (
                f"https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE{sid[2:]}"
                if status == "completed"
                else ""
            ),
            "user_source": source.user_source,
            "gclid": click if source.click_id == "gclid" else "",
            "fbclid": click if source.click_id == "fbclid" else "",
            "msclkid": click if source.click_id == "msclkid" else "",
            "utm_source": source.utm_source,
            "utm_medium": source.utm_medium,
            "utm_campaign": f"{campaign.id}-{source.utm_source}" if paid else "",
            "utm_content": "ad-a" if paid else "",
            "utm_term": keyword,
            "keyword": keyword,
            "match_type": rng.choice(("e", "p", "b")) if source.paid else "",
            "ad_position": rng.choice(("1t1", "1t2", "1s3")) if source.paid else "",
            "network": rng.choice(("g", "s")) if source.click_id == "gclid" else "",
            "device": rng.choice(("m", "m", "c", "t")) if paid else "",
            "landing_page": f"https://www.{domain}/" + ("lp/call-now" if paid else ""),
            "referral_value": source.referrer,
            "unbounce_page_id": "",
            "unbounce_variant_id": "",
            "unbounce_visitor_id": "",
        }


def write_file(path: Path, rows: int, campaigns: list[Campaign], *, account_id: int) -> None:
    now_ms = int(time.time() * 1000)
    with path.open("wb") as out:
        for call in generate_calls(rows, campaigns, account_id=account_id, now_ms=now_ms):
            out.write(orjson.dumps(call) + b"\n")


def command() -> list[str]:
    script = Path(sys.executable).with_name("phonewagon-server")
    return [str(script)] if script.exists() else ["uv", "run", "phonewagon-server"]


def cli(*args: str, database_url: str) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own command
        [*command(), *args, "--database-url", database_url, "--json"],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"phonewagon-server {' '.join(args)} failed:\n{done.stderr.decode()}")
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def prepare(database_url: str, campaigns: list[Campaign]) -> int:
    """An account with the campaigns the file names, created with the CLI; its id."""
    account_id = int(
        cli("accounts", "create", "Bench Agency", database_url=database_url)["account_id"]
    )
    for company_id, (name, _, _) in enumerate(COMPANIES, start=1):
        created = cli(
            "companies", "create", "--account", str(account_id), name, database_url=database_url
        )
        assert created["id"] == company_id, "the bench needs a fresh database"  # noqa: S101
    for campaign in campaigns:
        cli(
            "campaigns", "create", "--company", str(campaign.company_id), campaign.name,
            "--id", campaign.id, database_url=database_url,
        )  # fmt: skip
    return account_id


@dataclass(frozen=True)
class Timing:
    backend: str
    rows: int
    first: float
    rerun: float
    floor: float


def time_import(path: Path, account_id: int, database_url: str, *, expect: str) -> float:
    started = time.perf_counter()
    summary = cli(
        "calls", "import", str(path), "--account", str(account_id), database_url=database_url
    )
    elapsed = time.perf_counter() - started
    if summary["rejected"] or summary[expect] != sum(
        summary[k] for k in ("inserted", "updated", "unchanged")
    ):
        sys.exit(f"unexpected import summary (wanted all {expect}): {summary}")
    return elapsed


def bench_backend(
    backend: str, database_url: str, path: Path, rows: int, account_id: int
) -> Timing:
    print(f"{backend}: importing {rows:,} calls …", file=sys.stderr, flush=True)
    first = time_import(path, account_id, database_url, expect="inserted")
    print(f"{backend}: rerunning …", file=sys.stderr, flush=True)
    rerun = time_import(path, account_id, database_url, expect="unchanged")
    print(f"{backend}: {first:.1f} s, rerun {rerun:.1f} s", file=sys.stderr, flush=True)
    return Timing(backend, rows, first, rerun, floor=0.0)


# The stored columns but `id`, which the empty table assigns again in the same order.
_STORED = "account_id, company_id, campaign_id, start_time, sid, head, middle, tail, updated_at"


def run_sqlite(workdir: Path, path: Path, rows: int, campaigns: list[Campaign]) -> Timing:
    imported = workdir / "bench.db"
    url = f"sqlite:///{imported}"
    timing = bench_backend("SQLite", url, path, rows, prepare(url, campaigns))
    empty = workdir / "floor.db"
    prepare(f"sqlite:///{empty}", campaigns)
    with contextlib.closing(sqlite3.connect(empty, isolation_level=None)) as connection:
        # As the server's own connections, with the large cache an import gets (db.calls).
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -131072"):
            connection.execute(f"PRAGMA {pragma}")
        connection.execute("ATTACH DATABASE ? AS imported", (str(imported),))
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            f"INSERT INTO main.calls ({_STORED}) SELECT {_STORED} FROM imported.calls ORDER BY id"
        )
        connection.execute("COMMIT")
        floor = time.perf_counter() - started
    return replace(timing, floor=floor)


def run_postgres(path: Path, rows: int, campaigns: list[Campaign]) -> Timing:
    with postgres_schema() as url, postgres_schema() as empty_url:
        timing = bench_backend("PostgreSQL", url, path, rows, prepare(url, campaigns))
        prepare(empty_url, campaigns)
        with psycopg.connect(empty_url) as connection:
            started = time.perf_counter()
            connection.execute(
                f"INSERT INTO calls ({_STORED})"
                f" SELECT {_STORED} FROM {schema_of(url)}.calls ORDER BY id"
            )
            connection.commit()
            floor = time.perf_counter() - started
    return replace(timing, floor=floor)


def table(timings: list[Timing]) -> str:
    lines = [
        "| backend | calls | first import (all inserted) | rerun (all unchanged)"
        " | engine floor | first import / floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in timings:
        lines.append(
            f"| {t.backend} | {t.rows:,} | {t.first:.1f} s, {t.rows / t.first:,.0f} calls/s"
            f" | {t.rerun:.1f} s, {t.rows / t.rerun:,.0f} calls/s"
            f" | {t.floor:.1f} s, {t.rows / t.floor:,.0f} calls/s | {t.first / t.floor:.1f}x |"
        )
    return "\n".join(lines)


def section(timings: list[Timing], file_size: int) -> str:
    rows = timings[0].rows
    return "\n".join(
        [
            SECTION,
            "",
            f"`phonewagon-server calls import` of {rows:,} calls of one account"
            f" ({file_size / 1e6:,.0f} MB of JSON Lines, in the shape of `/calls` pages),"
            " wall time of the whole command as an operator runs it,"
            " then a rerun of the same file. The engine floor is the database alone storing"
            " the same rows: `INSERT INTO calls SELECT ... ORDER BY id` from the imported table"
            " into an empty one of the same schema and indexes, in the same database.",
            "",
            table(timings),
            "",
            measured_on(
                f"SQLite {sqlite_version()}",
                *(
                    [f"PostgreSQL {postgres_version()} on the same machine"]
                    if any(t.backend == "PostgreSQL" for t in timings)
                    else []
                ),
            ),
            "",
            "Rerun: `uv run python bench/import_calls.py --write`"
            " (`--quick` for 100,000 calls, `--rows N` for any size).",
            "",
        ]
    )


def sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="calls in the file")
    parser.add_argument("--quick", action="store_true", help="100,000 calls")
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r} in {BENCHMARKS}")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], action="append", help="default: both"
    )
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    backends = args.backend or ["sqlite", "postgresql"]
    campaigns = plan_campaigns()
    workdir = Path(tempfile.mkdtemp(prefix="phonewagon-bench-"))
    try:
        path = workdir / "calls.jsonl"
        print(f"writing {rows:,} calls to {path} …", file=sys.stderr, flush=True)
        write_file(path, rows, campaigns, account_id=1)
        timings = []
        if "sqlite" in backends:
            timings.append(run_sqlite(workdir, path, rows, campaigns))
        if "postgresql" in backends:
            timings.append(run_postgres(path, rows, campaigns))
        text = section(timings, path.stat().st_size)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(text)
    if args.write:
        write_section(text, SECTION)
        print(f"updated {BENCHMARKS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
