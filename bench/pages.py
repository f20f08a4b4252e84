"""Pages of 1000 calls against the engine floor and a conventional stack, side by side (issue 5).

    uv run python bench/pages.py            # an account of 2,000,000 calls on each backend
    uv run python bench/pages.py --quick    # 100,000 calls, fewer repeats: under 2 minutes
    uv run python bench/pages.py --write    # also update docs/benchmarks.md

On each backend (SQLite file; PostgreSQL in a fresh schema, dropped afterwards) one account's calls
are imported with the server's own import, and the same calls are loaded into the conventional
stack's table (bench/conventional.py). Then, in one run:

- floor: the engine alone producing a page's rows (SQLite: the page query stepped to its end in
  C, every column read; PostgreSQL: EXPLAIN ANALYZE's execution time plus a loopback transfer of
  the page's bytes);
- end to end: `GET /calls?page_size=1000` over loopback HTTP against `phonewagon-server serve`,
  first page and a page after 1,000,000 newer calls (half the account with --quick), for the
  account, a company and a campaign; the same against the conventional stack;
- encodings: the same first page with Accept-Encoding gzip and zstd;
- workers (PostgreSQL): pages per second with --workers 1 and --workers 2, 4 client processes;
- memory: the server's RSS while one client follows `next` through the whole account, and the
  client's own export of it to a file (bench/client_export.py);
- small requests: bench/small_requests.py.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import http.client
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import client_export
import conventional
import fastapi
import orjson
import psutil
import psycopg
import pydantic
import small_requests
import sqlalchemy
from import_calls import generate_calls, plan_campaigns
from load_test import REDIS_URL, create_account, free_port, redis_prefix, serve
from testbed import BENCHMARKS, measured_on, postgres_schema, postgres_version, write_section

from phonewagon_server.db import open_database
from phonewagon_server.db.calls import DOCUMENT, page_query
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.imports import import_calls
from phonewagon_server.models import MAX_EPOCH_MS, CallQuery

SECTION = "## Pages"
RESULTS = Path(tempfile.gettempdir()) / "phonewagon-bench-pages.json"  # the last run's raw figures
PAGE = 1000


@dataclass(frozen=True)
class Dataset:
    """One backend's account: where it lives, how to ask for it, and where its depth lies."""

    backend: str
    url: str
    conventional_url: str
    account_id: int
    auth: tuple[str, str]
    calls: int
    depth: tuple[int, int]  # (start_time, id) of the call `depth` newer calls down
    conventional_depth: tuple[int, int]
    company_id: int
    campaign_id: str


def build(backend: str, url: str, conventional_url: str, calls: int, depth: int) -> Dataset:
    database = open_database(url)
    upgrade(database)
    account_id, client_id, secret = create_account(database, "Pages Agency", number=0)
    campaigns = [replace(c, id=f"a0-{c.id}") for c in plan_campaigns()]
    now_ms = int(time.time() * 1000) - 60_000

    def generated() -> Iterator[dict[str, Any]]:
        return generate_calls(calls, campaigns, account_id=account_id, now_ms=now_ms)

    started = time.perf_counter()
    report = import_calls(database, account_id, enumerate(generated(), start=1))
    if report.inserted != calls:
        sys.exit(f"{backend}: the import said {report.as_json()}")
    log(f"{backend}: imported {calls:,} calls in {time.perf_counter() - started:.0f} s")
    conventional.load(conventional_url, generated())
    log(f"{backend}: loaded the conventional table")
    with database.transaction(write=True) as tx:
        for table in ("companies", "campaigns", "calls", "conventional_calls"):
            tx.execute(f"ANALYZE {table}")  # bare ANALYZE would take every schema's tables
        cursor = "SELECT start_time, id FROM {} WHERE account_id = ?"
        cursor += " ORDER BY start_time DESC, id DESC LIMIT 1 OFFSET ?"
        ours = tx.fetchone(cursor.format("calls"), (account_id, depth - 1))
        theirs = tx.fetchone(cursor.format("conventional_calls"), (account_id, depth - 1))
    database.close()
    if ours is None or theirs is None:
        sys.exit(f"{backend}: the account has fewer than {depth:,} calls")
    return Dataset(
        backend, url, conventional_url, account_id, (client_id, secret), calls,
        (ours[0], ours[1]), (theirs[0], theirs[1]), company_id=2, campaign_id=campaigns[7].id,
    )  # fmt: skip


# --- measuring --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def basic(auth: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


class Get:
    """One path fetched again and again over a keep-alive connection of its own."""

    def __init__(
        self, url: str, path: str, auth: tuple[str, str], encoding: str = "identity"
    ) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=120)
        self.path = path
        self.headers = {"Authorization": basic(auth), "Accept-Encoding": encoding}
        self.size = 0

    def __call__(self) -> float:
        started = time.perf_counter()
        self.connection.request("GET", self.path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            sys.exit(f"GET {self.path}: {response.status} {body[:300]!r}")
        self.size = len(body)
        return elapsed


def interleaved(measures: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """The median of each measure's seconds, taken in turns, one of each per round: whatever
    else the shared machine does meanwhile weighs on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for round_ in range(repeats + 2):  # two rounds to warm connections and caches
        for name, measure in measures.items():
            elapsed = measure()
            if round_ >= 2:
                samples[name].append(elapsed)
    return {name: statistics.median(times) for name, times in samples.items()}


def floor_query(query: CallQuery) -> tuple[str, list[Any]]:
    """The page's rows in one query, every column of them: keys and the document."""
    sql, params = page_query(query, PAGE + 1, documents=True)
    return sql.replace(DOCUMENT, f"{DOCUMENT} AS document", 1), params


def sqlite_floor(connection: sqlite3.Connection, query: CallQuery) -> Callable[[], float]:
    """The page's rows stepped to the end inside SQLite, every column read, one row out."""
    sql, params = floor_query(query)
    whole = "sum(length(CAST(document AS BLOB)))"  # a blob's length, without counting characters
    wrapped = f"SELECT count(*), max(start_time), max(id), {whole} FROM ({sql})"

    def once() -> float:
        started = time.perf_counter()
        connection.execute(wrapped, params).fetchone()
        return time.perf_counter() - started

    return once


def postgres_floor(
    connection: psycopg.Connection[Any], query: CallQuery, transfer: float
) -> Callable[[], float]:
    """EXPLAIN ANALYZE's execution time of the page's rows, plus `transfer` for their bytes."""
    sql, params = floor_query(query)
    explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + sql.replace("?", "%s")

    def once() -> float:
        plan = connection.execute(explain, params).fetchone()
        assert plan is not None  # noqa: S101 - EXPLAIN always answers
        return float(plan[0][0]["Execution Time"]) / 1000 + transfer

    return once


def loopback_transfer(size: int, repeats: int) -> float:
    """Median seconds to move `size` bytes from one thread to another over 127.0.0.1."""
    payload = b"x" * size
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname())
        receiver, _ = listener.accept()
        times = []
        for _ in range(repeats + 2):
            thread = threading.Thread(target=sender.sendall, args=(payload,))
            started = time.perf_counter()
            thread.start()
            left = size
            while left:
                left -= len(receiver.recv(min(left, 1 << 20)))
            times.append(time.perf_counter() - started)
            thread.join()
        sender.close()
        receiver.close()
    return statistics.median(times[2:])


def hammer(url: str, path: str, auth: tuple[str, str], seconds: float) -> int:
    """Pages fetched back to back by one client process for `seconds`."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Authorization": basic(auth), "Accept-Encoding": "identity"}
    pages, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        pages += response.status == 200
    return pages


def throughput(url: str, path: str, auth: tuple[str, str], seconds: float) -> tuple[float, float]:
    """Pages per second of 4 client processes together, and how busy the machine's CPUs were
    meanwhile (100: every core, server, database and clients together)."""
    with concurrent.futures.ProcessPoolExecutor(4) as pool:
        hammer(url, path, auth, 1.0)  # warm the server
        psutil.cpu_percent()
        counts = pool.map(hammer, *zip(*[(url, path, auth, seconds)] * 4, strict=True))
        total = sum(counts)
        return total / seconds, psutil.cpu_percent()


def page_through(url: str, auth: tuple[str, str], pid: int) -> dict[str, float]:
    """Follow `next` through the account, sampling the serving process's RSS after each page."""
    process = psutil.Process(pid)
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Authorization": basic(auth), "Accept-Encoding": "identity"}
    path: str | None = f"/calls?page_size={PAGE}"
    rss: list[float] = []
    calls = 0
    started = time.perf_counter()
    while path:
        connection.request("GET", path, headers=headers)
        page = orjson.loads(connection.getresponse().read())
        calls += len(page["calls"])
        rss.append(process.memory_info().rss / 2**20)
        path = page.get("next", "").removeprefix(url) or None
    elapsed = time.perf_counter() - started
    return {
        "calls": calls, "seconds": elapsed, "rss_first": rss[min(9, len(rss) - 1)],
        "rss_peak": max(rss), "rss_last": rss[-1],
    }  # fmt: skip


# --- one backend --------------------------------------------------------------------------------


@contextlib.contextmanager
def conventional_server(data: Dataset) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, str(Path(__file__).with_name("conventional.py")), "serve",
        "--database-url", data.conventional_url, "--port", str(port),
        "--account-id", str(data.account_id),
        "--client-id", data.auth[0], "--client-secret", data.auth[1],
    ]  # fmt: skip
    process = subprocess.Popen(command)  # noqa: S603 - our own benchmark
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(data: Dataset, *, repeats: int, seconds: float) -> dict[str, Any]:
    # The server as deployed (JSON logs, metrics on), its rate limit raised out of the way.
    env = {"PHONEWAGON_DATABASE_URL": data.url, "PHONEWAGON_RATE_LIMIT": "100000000/minute"}
    first = f"/calls?page_size={PAGE}"
    end, before = data.depth
    c_end, c_before = data.conventional_depth
    shapes = {
        "account": "", "company": f"&company_id={data.company_id}",
        "campaign": f"&campaign_id={data.campaign_id}",
    }  # fmt: skip
    query = CallQuery(data.account_id, start_time=0, end_time=MAX_EPOCH_MS, page_size=PAGE)
    deep_query = replace(query, end_time=end, before_id=before)
    result: dict[str, Any] = {"backend": data.backend, "calls": data.calls}
    with (
        serve(env, workers=1) as served,
        conventional_server(data) as conventional_url,
        contextlib.ExitStack() as stack,
    ):
        gets: dict[str, Get] = {
            f"{shape}_{depth}": Get(served.url, f"{first}{filters}{cursor}", data.auth)
            for shape, filters in shapes.items()
            for depth, cursor in (("first", ""), ("deep", f"&end_time={end}&before_id={before}"))
        }
        gets |= {coding: Get(served.url, first, data.auth, coding) for coding in ("gzip", "zstd")}
        gets["conventional"] = Get(conventional_url, first, data.auth)
        deep_path = f"{first}&end_time={c_end}&before_id={c_before}"
        gets["conventional_deep"] = Get(conventional_url, deep_path, data.auth)
        gets["account_first"]()
        result["page_bytes"] = gets["account_first"].size
        floors: dict[str, Callable[[], float]]
        if data.backend == "SQLite":
            connection = sqlite3.connect(data.url.removeprefix("sqlite:///"))
            stack.callback(connection.close)
            floors = {"floor": sqlite_floor(connection, query)}
            floors["floor_deep"] = sqlite_floor(connection, deep_query)
        else:
            transfer = loopback_transfer(result["page_bytes"], repeats)
            pg = stack.enter_context(psycopg.connect(data.url, autocommit=True))
            floors = {"floor": postgres_floor(pg, query, transfer)}
            floors["floor_deep"] = postgres_floor(pg, deep_query, transfer)
        result |= interleaved({**floors, **gets}, repeats)
        # The same two again, each back to back with itself: caches as warm as they get.
        result["floor_warm"] = interleaved({"f": floors["floor"]}, repeats)["f"]
        result["account_first_warm"] = interleaved({"g": gets["account_first"]}, repeats)["g"]
        result |= {f"{coding}_bytes": gets[coding].size for coding in ("gzip", "zstd")}
        if data.backend == "PostgreSQL":
            result["workers_1"], result["cpu_1"] = throughput(served.url, first, data.auth, seconds)
        result["memory"] = page_through(served.url, data.auth, served.process.pid)
        log(f"{data.backend}: paged through {result['memory']['calls']:,} calls")
    if data.backend == "PostgreSQL":
        with redis_prefix() as prefix:
            shared = {"PHONEWAGON_REDIS_URL": REDIS_URL, "PHONEWAGON_REDIS_PREFIX": prefix}
            with serve(env | shared, workers=2) as served:
                result["workers_2"], result["cpu_2"] = throughput(
                    served.url, first, data.auth, seconds
                )
    return result


def export_whole_account(data: Dataset, folder: Path, *, quick: bool) -> list[dict[str, Any]]:
    """The client CLI exporting every call of the account to a file, per format."""
    env = {"PHONEWAGON_DATABASE_URL": data.url, "PHONEWAGON_RATE_LIMIT": "100000000/minute"}
    formats = ("jsonl", "parquet") if quick else ("jsonl", "csv", "parquet")
    with serve(env, workers=1) as served:
        return client_export.measure_export(served.url, *data.auth, folder, formats)


# --- the report ---------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def rows_for(results: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """(figure, target, one cell per backend) for the summary table."""

    def each(cell: Any) -> list[str]:
        return [cell(r) for r in results]

    def deep_ratio(r: dict[str, Any], shape: str) -> str:
        first, deep = r[f"{shape}_first"], r[f"{shape}_deep"]
        return f"{deep / first:.2f}x ({ms(deep)} / {ms(first)})"

    table = [
        ("engine floor, first page", "", each(lambda r: ms(r["floor"]))),
        ("engine floor, deep page", "", each(lambda r: ms(r["floor_deep"]))),
        ("`GET /calls`, first page (median)", "", each(lambda r: ms(r["account_first"]))),
        (
            "1. end to end ÷ floor",
            "≤ 3x",
            each(lambda r: f"{r['account_first'] / r['floor']:.1f}x"),
        ),
        (
            "1. the same, each measured back to back with itself (warm)",
            "≤ 3x",
            each(
                lambda r: (
                    f"{r['account_first_warm'] / r['floor_warm']:.1f}x"
                    f" ({ms(r['account_first_warm'])} / {ms(r['floor_warm'])})"
                )
            ),
        ),
        ("conventional stack, first page", "", each(lambda r: ms(r["conventional"]))),
        ("conventional stack, deep page", "", each(lambda r: ms(r["conventional_deep"]))),
        (
            "2. pages/s ÷ conventional",
            "≥ 5x",
            each(lambda r: f"{r['conventional'] / r['account_first']:.1f}x"),
        ),
    ]
    for shape in ("account", "company", "campaign"):
        table.append(
            (
                f"3. deep ÷ first page, {shape} (deep / first)",
                "≤ 1.2x",
                each(lambda r, s=shape: deep_ratio(r, s)),
            )
        )
    table += [
        (
            "4. pages/s, `--workers 2` ÷ `--workers 1`",
            "≥ 1.5x",
            each(
                lambda r: (
                    f"{r['workers_2'] / r['workers_1']:.2f}x"
                    f" ({r['workers_2']:.0f} / {r['workers_1']:.0f} pages/s;"
                    f" CPUs {r['cpu_2']:.0f}% / {r['cpu_1']:.0f}% busy)"
                    if "workers_2" in r
                    else "n/a"
                )
            ),
        ),
        (
            "6. server RSS over the whole account (10th page → peak → last)",
            "flat",
            each(
                lambda r: "{rss_first:.0f} → {rss_peak:.0f} → {rss_last:.0f} MB".format(
                    **r["memory"]
                )
            ),
        ),
        (
            "8. gzip: page bytes, time ÷ identity",
            "measured",
            each(lambda r: f"{r['gzip_bytes']:,} B, {r['gzip'] / r['account_first']:.2f}x"),
        ),
        (
            "8. zstd: page bytes, time ÷ identity",
            "measured",
            each(lambda r: f"{r['zstd_bytes']:,} B, {r['zstd'] / r['account_first']:.2f}x"),
        ),
        ("identity page bytes", "", each(lambda r: f"{r['page_bytes']:,} B")),
    ]
    return table


def report(
    results: list[dict[str, Any]],
    exports: list[dict[str, Any]],
    small: dict[str, Any],
    *,
    seconds: float,
    quick: bool,
) -> str:
    backends = [r["backend"] for r in results]
    lines = [
        SECTION,
        "",
        f"One account of {results[0]['calls']:,} calls on each backend, pages of {PAGE} calls"
        f" ({results[0]['page_bytes'] / 2**20:.1f} MB of JSON), `phonewagon-server serve` with one"
        " worker unless said, the client on the same machine over loopback HTTP, a keep-alive"
        " connection per request kind. Every kind of request and both floors are taken in turns,"
        " one of each per round, and their medians compared. Deep pages start after"
        f" {'half the account' if quick else '1,000,000 newer calls'}.",
        "",
        f"| figure | target | {' | '.join(backends)} |",
        f"|---|---|{'---:|' * len(backends)}",
    ]
    for figure, target, cells in rows_for(results):
        lines.append(f"| {figure} | {target} | {' | '.join(cells)} |")
    lines += [
        "",
        "7\\. Small requests, `GET /companies` with authentication and rate limiting, against a"
        " bare ASGI app returning the same bytes on the same uvicorn configuration, 8 keep-alive"
        f" connections, {small['rounds']} interleaved rounds of {small['seconds']} s"
        " (bench/small_requests.py); target: at least 0.5x the bare app's requests per second.",
        "",
        "| server | requests/s (median round) | p50 | server CPU per request |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {small[f'{key}_rps']:,} | {small[f'{key}_p50_ms']:.2f} ms"
            f" | {small[f'{key}_cpu_us_per_request']:.0f} µs |"
            for name, key in (("phonewagon-server", "ours"), ("bare ASGI app", "bare"))
        ),
        "",
        f"Ours ÷ bare: **{small['ratio']:.2f}x**.",
        "",
        "The client's export of the whole account (6), `phonewagon calls` to a file, peak RSS of"
        " the process (bench/client_export.py):",
        "",
        "| format | calls | wall time | peak RSS | file |",
        "|---|---:|---:|---:|---:|",
    ]
    for e in exports:
        lines.append(
            f"| {e['format']} | {e['calls']:,} | {e['seconds']:.0f} s | {e['peak_rss_mb']:.0f} MB"
            f" | {e['file_mb']:.0f} MB |"
        )
    lines += [
        "",
        measured_on(
            f"SQLite {sqlite3.sqlite_version}",
            f"PostgreSQL {postgres_version()}; FastAPI {fastapi.__version__}",
            f"SQLAlchemy {sqlalchemy.__version__}",
            f"Pydantic {pydantic.VERSION} for the conventional stack",
        )
        + f" The whole run took {seconds / 60:.0f} min.",
        "",
        f"Rerun: `uv run python bench/pages.py --write`{' --quick' if quick else ''}"
        " (`make bench` runs every benchmark).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 calls, fewer repeats")
    parser.add_argument("--rows", type=int, help="calls in the account (default 2,000,000)")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    calls = args.rows or (100_000 if args.quick else 2_000_000)
    depth = calls // 2 if args.quick else 1_000_000
    repeats, seconds = (15, 4.0) if args.quick else (40, 10.0)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="phonewagon-pages-") as folder:
        url = f"sqlite:///{Path(folder) / 'pages.db'}"
        sqlite_data = build("SQLite", url, url, calls, depth)
        results.append(measure(sqlite_data, repeats=repeats, seconds=seconds))
        with postgres_schema() as pg_url:
            pg_data = build("PostgreSQL", pg_url, pg_url, calls, depth)
            results.append(measure(pg_data, repeats=repeats, seconds=seconds))
        exports = export_whole_account(sqlite_data, Path(folder), quick=args.quick)
    small = small_requests.measure(quick=args.quick)
    RESULTS.write_bytes(orjson.dumps({"pages": results, "exports": exports, "small": small}))
    text = report(results, exports, small, seconds=time.perf_counter() - started, quick=args.quick)
    print(text)
    if args.write:
        write_section(text, SECTION)
        print(f"written to {BENCHMARKS}")


if __name__ == "__main__":
    main()
