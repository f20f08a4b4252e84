"""Several accounts paging through all their calls at once, against the real server.

    uv run python bench/load_test.py            # 4 accounts x 50,000 calls, paged twice each
    uv run python bench/load_test.py --quick    # 2 accounts x 10,000 calls, paged once
    uv run python bench/load_test.py --write    # also update "## Load" in docs/benchmarks.md

`phonewagon-server serve --workers 2` runs on PostgreSQL (a fresh schema of the test database,
dropped afterwards) with the rate limit shared in Redis (its own key prefix, removed afterwards)
and raised out of the way. Every account's thread follows `next` links with `page_size=1000` from
the first page to the last, all accounts at once; each page's latency is the time until its whole
body has arrived. A run only counts if every account got each of its calls exactly once per pass.
The load runs on the same machine as the server and its databases.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import redis
from import_calls import COMPANIES, generate_calls, plan_campaigns
from testbed import BENCHMARKS, ROOT, measured_on, postgres_schema, postgres_version, write_section

from phonewagon_server.db import Database, open_database
from phonewagon_server.db import accounts as account_rows
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.imports import import_calls

SECTION = "## Load"
REDIS_URL = os.environ.get("PHONEWAGON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Account:
    account_id: int
    auth: tuple[str, str]
    calls: int


# --- the deployment under test ----------------------------------------------------------------


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of this run's own in the machine's Redis, its keys removed afterwards."""
    prefix = f"pw-bench-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_command() -> list[str]:
    script = Path(sys.executable).with_name("phonewagon-server")
    return [str(script)] if script.exists() else ["uv", "run", "phonewagon-server"]


@dataclass
class Served:
    url: str
    log: Path
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def serve(env: dict[str, str], *, workers: int) -> Iterator[Served]:
    """`phonewagon-server serve --workers N`, its output in a file (a pipe would fill and block)."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="phonewagon-bench-serve-", suffix=".log")[1])
    variables = {k: v for k, v in os.environ.items() if not k.startswith("PHONEWAGON_")} | env
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [*server_command(), "serve", "--workers", str(workers), "--port", str(port)],
            env=variables,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", log, process)
    try:
        wait_until_ready(served)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def wait_until_ready(served: Served) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            sys.exit(f"the server exited:\n{served.log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{served.url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    sys.exit("the server was not ready in 60 s")


def server_tracebacks(served: Served) -> int:
    return served.log.read_text(errors="replace").count("Traceback")


def create_account(database: Database, name: str, *, number: int) -> tuple[int, str, str]:
    """An account with the companies and campaigns of `import_calls`, under ids of its own."""
    now = int(time.time() * 1000)
    with database.transaction(write=True) as tx:
        account = account_rows.create_account(tx, name, now=now)
        credential, secret = account_rows.issue_credential(tx, account.id, now=now)
        companies = [
            company_rows.create_company(tx, account_id=account.id, name=company, now=now)
            for company, _, _ in COMPANIES
        ]
        for campaign in plan_campaigns():
            company_rows.create_campaign(
                tx,
                company=companies[campaign.company],
                name=campaign.name,
                campaign_id=f"a{number}-{campaign.id}",
                now=now,
            )
    return account.id, credential.client_id, secret


def seed_accounts(database_url: str, *, accounts: int, calls: int) -> list[Account]:
    """`accounts` accounts of `calls` realistic calls each (those of bench/import_calls.py)."""
    database = open_database(database_url)
    try:
        upgrade(database)
        seeded = []
        for number in range(accounts):
            account_id, client_id, secret = create_account(
                database, f"Load Agency {number}", number=number
            )
            campaigns = [
                campaign.__class__(**{**campaign.__dict__, "id": f"a{number}-{campaign.id}"})
                for campaign in plan_campaigns()
            ]
            rows = generate_calls(
                calls, campaigns, account_id=account_id, now_ms=int(time.time() * 1000) - 60_000
            )
            report = import_calls(database, account_id, enumerate(rows, start=1))
            if report.inserted != calls:
                sys.exit(f"seeding account {number}: {report.as_json()}")
            seeded.append(Account(account_id, (client_id, secret), calls))
            print(f"seeded account {number + 1}/{accounts}", file=sys.stderr, flush=True)
        return seeded
    finally:
        database.close()


# --- the load -----------------------------------------------------------------------------------


@dataclass
class Pass:
    """One account following `next` from the first page to the last."""

    pages: int = 0
    calls: int = 0
    distinct: int = 0
    bytes: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def page_through(url: str, account: Account) -> Pass:
    done = Pass()
    sids: set[str] = set()
    with httpx.Client(auth=account.auth, timeout=60) as client:
        link: str | None = f"{url}/calls?page_size={PAGE_SIZE}"
        while link:
            started = time.perf_counter()
            try:
                response = client.get(link)
            except httpx.TransportError as exc:
                done.errors.append(type(exc).__name__)
                return done
            done.latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                done.errors.append(str(response.status_code))
                return done
            body = orjson.loads(response.content)
            done.pages += 1
            done.bytes += len(response.content)
            done.calls += len(body["calls"])
            sids.update(call["sid"] for call in body["calls"])
            link = body.get("next")
    done.distinct = len(sids)
    if done.calls != account.calls or done.distinct != account.calls:
        done.errors.append(f"got {done.calls} calls ({done.distinct} distinct) of {account.calls}")
    return done


@dataclass(frozen=True)
class Result:
    accounts: int
    calls: int
    passes: int
    workers: int
    seconds: float
    pages: int
    bytes: int
    latencies: list[float]
    errors: list[str]
    tracebacks: int

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


def run_load(url: str, accounts: list[Account], *, passes: int) -> tuple[float, list[Pass]]:
    """Every account pages through all its calls `passes` times, all accounts at once."""
    results: list[Pass] = []
    lock = threading.Lock()
    start = threading.Barrier(len(accounts))

    def work(account: Account) -> None:
        start.wait()
        for _ in range(passes):
            done = page_through(url, account)
            with lock:
                results.append(done)

    threads = [threading.Thread(target=work, args=(account,)) for account in accounts]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, results


def measure(*, accounts: int, calls: int, passes: int, workers: int) -> Result:
    with postgres_schema() as database_url, redis_prefix() as prefix:
        seeded = seed_accounts(database_url, accounts=accounts, calls=calls)
        env = {
            "PHONEWAGON_DATABASE_URL": database_url,
            "PHONEWAGON_REDIS_URL": REDIS_URL,
            "PHONEWAGON_REDIS_PREFIX": prefix,
            "PHONEWAGON_RATE_LIMIT": "1000000/minute",
            "PHONEWAGON_LOG_FORMAT": "json",
        }
        with serve(env, workers=workers) as served:
            page_through(served.url, seeded[0])  # warm up: connections, caches
            print(f"paging: {accounts} accounts x {passes} passes …", file=sys.stderr, flush=True)
            seconds, done = run_load(served.url, seeded, passes=passes)
        tracebacks = server_tracebacks(served)
        served.log.unlink()
    return Result(
        accounts=accounts,
        calls=calls,
        passes=passes,
        workers=workers,
        seconds=seconds,
        pages=sum(p.pages for p in done),
        bytes=sum(p.bytes for p in done),
        latencies=[latency for p in done for latency in p.latencies],
        errors=[error for p in done for error in p.errors],
        tracebacks=tracebacks,
    )


# --- the report ---------------------------------------------------------------------------------


def redis_version() -> str:
    try:
        client = redis.Redis.from_url(REDIS_URL)
        version = str(client.info("server")["redis_version"])
        client.close()
    except redis.RedisError:
        return "unknown"
    return version


def machine() -> str:
    """The closing line of a section run against PostgreSQL and Redis."""
    return measured_on(
        f"PostgreSQL {postgres_version()} and Redis {redis_version()} on the same machine"
    )


def section(result: Result, *, command: str) -> str:
    calls_per_second = result.pages * PAGE_SIZE / result.seconds
    return "\n".join(
        [
            SECTION,
            "",
            f"{result.accounts} accounts of {result.calls:,} calls each, all at once, each"
            f" following `next` with `page_size={PAGE_SIZE}` from the first page to the last"
            f" ({result.passes} {'pass' if result.passes == 1 else 'passes'} each), against"
            f" `phonewagon-server serve --workers {result.workers}` on PostgreSQL with the rate"
            " limit shared in Redis (and raised out of the way). One client thread per account,"
            " on the same machine. Latency is until a page's whole body has arrived.",
            "",
            "| pages | wall time | pages/s | calls/s | MB/s | p50 | p95 | p99 | max | errors |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {result.pages:,} | {result.seconds:.1f} s | {result.pages_per_second:.1f}"
            f" | {calls_per_second:,.0f} | {result.bytes / result.seconds / 1e6:.1f}"
            f" | {result.percentile(50):.0f} ms | {result.percentile(95):.0f} ms"
            f" | {result.percentile(99):.0f} ms | {max(result.latencies) * 1000:.0f} ms"
            f" | {len(result.errors)} |",
            "",
            f"Every account got each of its calls exactly once in every pass; the server logged"
            f" {result.tracebacks} tracebacks.",
            "",
            machine(),
            "",
            f"Rerun: `{command}`.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--calls", type=int, default=50_000, help="calls per account")
    parser.add_argument("--passes", type=int, default=2, help="times each account pages through")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 accounts x 10,000 calls, 1 pass")
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r} in {BENCHMARKS}")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.calls, args.passes = 2, 10_000, 1
    result = measure(
        accounts=args.accounts, calls=args.calls, passes=args.passes, workers=args.workers
    )
    command = "uv run python bench/load_test.py --write"
    if (args.accounts, args.calls, args.passes, args.workers) != (4, 50_000, 2, 2):
        command += (
            f" --accounts {args.accounts} --calls {args.calls} --passes {args.passes}"
            f" --workers {args.workers}"
        )
    text = section(result, command=command)
    print(text)
    if result.errors or result.tracebacks:
        sys.exit(f"errors: {result.errors[:10]}; tracebacks in the server log: {result.tracebacks}")
    if args.write:
        write_section(text, SECTION)
        print(f"updated {SECTION!r} in {BENCHMARKS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
