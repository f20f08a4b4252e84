"""Website visits: how many page views `POST /dni/visits` records a second, against a bare app,
and what a second worker adds.

    uv run python bench/dni_visits.py            # 3 rounds of 5 s per server
    uv run python bench/dni_visits.py --quick    # 3 rounds of 2 s
    uv run python bench/dni_visits.py --write    # also update docs/benchmarks.md

The traffic is the script's: page views of 100 companies' sites, each company with a pool of 50
numbers, half of them first visits (`visitor: null`) and half returning visitors, a third of them
with an ad click in the landing page, the rest from search, social or direct; each from a client
address of its own (the server trusts the loopback proxy's `X-Forwarded-For`, as behind a real
proxy), with a browser's user agent and the site's Origin. Every request is built before any
clock starts, and none is sent twice.

1. One worker (`serve`, SQLite, then PostgreSQL) against a bare ASGI app served by the same
   `run_uvicorn` that reads the same JSON body with orjson and answers ours' bytes for it.
2. `serve --workers 2` against `serve --workers 1`, both on PostgreSQL with Redis, rounds
   alternating. Every answer of the run is kept: no pool number may be handed to two visitors
   (the holds last 15 minutes, longer than the bench).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
import uvloop
from load_test import REDIS_URL, free_port, redis_prefix, redis_version, server_command
from testbed import (
    measured_on,
    postgres_schema,
    postgres_version,
    serve_replaying,
    write_section,
)
from webhooks import HOST, Load, Server, clean_env, closed_loop, running

from phonewagon_server.db import accounts as account_rows
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db import numbers as number_rows
from phonewagon_server.db import open_database
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.db.numbers import TrackingNumber

SECTION = "## Website visits"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BOTS = "SQLite, a crawler's (nothing written)"
COMPANIES = 100
POOL_SIZE = 50
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0 Safari/537.36"
)
ARRIVALS = (
    "?gclid={click}&utm_source=google&utm_medium=cpc&utm_campaign=brand&keyword=plumber",
    "?msclkid={click}&utm_source=bing&utm_medium=cpc",
    "?utm_source=facebook&utm_medium=paid_social&fbclid={click}",
)
REFERRERS = (
    "https://www.google.com/",
    "https://search.yahoo.com/",
    "https://www.facebook.com/",
    "",
)


@dataclass(frozen=True)
class Site:
    key: str
    origin: str


def set_up(database_url: str) -> list[Site]:
    """COMPANIES companies of one account, each with a pool of POOL_SIZE numbers and a site key."""
    database = open_database(database_url)
    now = int(time.time() * 1000)
    sites = []
    try:
        upgrade(database)
        with database.transaction(write=True) as tx:
            account = account_rows.create_account(tx, "Visits Agency", now=now)
            for n in range(COMPANIES):
                company = company_rows.create_company(
                    tx, account_id=account.id, name=f"Site {n}", now=now
                )
                campaign = company_rows.create_campaign(
                    tx, company=company, name="Website", campaign_id=f"w{n}", now=now
                )
                target = f"+1503555{n:04d}"
                pool_rows.set_swap_target(tx, campaign.id, target)
                for line in range(POOL_SIZE):
                    number = TrackingNumber(
                        number=f"+1844{n:03d}{line:04d}",
                        account_id=account.id,
                        company_id=company.id,
                        campaign_id=campaign.id,
                        forward_to=target,
                        source="",
                    )
                    number_rows.add_number(tx, number, now=now)
                site = pool_rows.ensure_site(tx, company.id, now=now)
                sites.append(Site(site.key, f"https://www.site-{n}.example"))
    finally:
        database.close()
    return sites


class Traffic:
    """Page views built ahead, taken in order; returning visitors come back to their site.
    With `agent`, each says it is that user agent instead of a browser."""

    def __init__(self, sites: list[Site], *, seed: int, agent: str = BROWSER) -> None:
        self.sites = sites
        self.agent = agent
        self.rng = random.Random(seed)  # noqa: S311 - test traffic, deterministic on purpose
        self.returning: list[tuple[Site, str]] = []
        self.requests: list[bytes] = []
        self.position = 0

    def add(self, count: int) -> None:
        for _ in range(count):
            if self.returning and self.rng.random() < 0.5:
                site, visitor = self.rng.choice(self.returning)
            else:
                site, visitor = self.rng.choice(self.sites), None
                self.returning.append((site, uuid.uuid4().hex))  # the id it keeps next time
            self.requests.append(self._request(site, visitor))

    def _request(self, site: Site, visitor: str | None) -> bytes:
        query = referrer = ""
        if self.rng.random() < 1 / 3:
            query = self.rng.choice(ARRIVALS).format(click=uuid.uuid4().hex[:24])
        else:
            referrer = self.rng.choice(REFERRERS)
        body = orjson.dumps(
            {
                "key": site.key,
                "visitor": visitor,
                "page": f"{site.origin}/landing{query}",
                "referrer": referrer,
                "device": self.rng.choice(("desktop", "mobile", "tablet")),
            }
        )
        address = (
            f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        )
        head = (
            f"POST /dni/visits HTTP/1.1\r\nHost: {HOST}\r\n"
            "Content-Type: text/plain;charset=UTF-8\r\n"
            f"Origin: {site.origin}\r\nUser-Agent: {self.agent}\r\nX-Forwarded-For: {address}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def take(self) -> bytes:
        if self.position >= len(self.requests):
            self.add(10_000)
        self.position += 1
        return self.requests[self.position - 1]


def serve_bare(port: int, answer: str) -> None:
    """Read the JSON body as ours does and answer ours' bytes."""
    serve_replaying(port, {"/dni/visits": json.loads(answer)}, orjson.loads)


def serve_ours(database_url: str, workdir: Path, *, workers: int = 1, **extra: str) -> Any:
    port = free_port()
    env = clean_env(
        PHONEWAGON_DATABASE_URL=database_url,
        PHONEWAGON_PUBLIC_URL=f"http://{HOST}:{port}",
        PHONEWAGON_TRUSTED_PROXIES="127.0.0.1",
        PHONEWAGON_DNI_COMPANY_LIMIT="1000000/minute",
        PHONEWAGON_LOG_FORMAT="json",
        **extra,
    )
    args = [*server_command(), "serve", "--port", str(port), "--workers", str(workers)]
    return running(args, env=env, log=workdir / f"serve-{port}.log", port=port)


def record_answer(port: int, request: bytes) -> str:
    """Ours' answer to one page view: the bare app repeats its headers and body."""

    async def ask() -> tuple[bytes, bytes]:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = head.lower().split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0]
        body = await reader.readexactly(int(length))
        writer.close()
        return head, body

    head, body = uvloop.run(ask())
    if not head.startswith(b"HTTP/1.1 200 "):
        sys.exit(f"the server refused a sample page view: {head!r} {body!r}")
    headers = [
        line.decode().split(": ", 1)
        for line in head.split(b"\r\n")[1:]
        if line and not line.lower().startswith((b"date:", b"x-request-id:"))
    ]
    return json.dumps({"headers": headers, "body": body.decode()})


@dataclass
class Versus:
    name: str
    names: tuple[str, str]
    rounds: dict[str, list[float]] = field(default_factory=dict)
    loads: dict[str, Load] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def rps(self, name: str) -> float:
        return statistics.median(self.rounds[name]) if self.rounds.get(name) else 0.0

    @property
    def ratio(self) -> float:
        first, second = self.names
        return self.rps(first) / self.rps(second) if self.rps(second) else 0.0


def alternate(
    result: Versus,
    ports: dict[str, int],
    pids: dict[str, int],
    take: Callable[[], bytes],
    *,
    rounds: int,
    seconds: float,
    keep: bool,
) -> None:
    for name in result.names:  # warm-up: connections, caches, pool rows
        closed_loop(ports[name], take, 0.5, keep=keep)
    for number in range(rounds):
        for name in result.names if number % 2 == 0 else reversed(result.names):
            tree = [psutil.Process(pids[name]), *psutil.Process(pids[name]).children(True)]
            before = sum(sum(p.cpu_times()[:2]) for p in tree)
            load = closed_loop(ports[name], take, seconds, keep=keep)
            after = sum(sum(p.cpu_times()[:2]) for p in tree if p.is_running())
            result.cpu.setdefault(name, []).append((after - before) / seconds)
            total = result.loads.setdefault(name, Load())
            total.latencies += load.latencies
            total.failures += load.failures
            total.answers += load.answers
            if not load.failures:
                result.rounds.setdefault(name, []).append(len(load.latencies) / seconds)


def against_bare(
    name: str, database_url: str, workdir: Path, *, agent: str = BROWSER, **kwargs: Any
) -> Versus:
    print(f"{name}: ours against bare …", file=sys.stderr, flush=True)
    traffic = Traffic(set_up(database_url), seed=1, agent=agent)
    traffic.add(60_000)
    result = Versus(name, ("ours", "bare"))
    with serve_ours(database_url, workdir) as ours:
        race_bare(result, ours, traffic.take, __file__, **kwargs)
    return result


def race_bare(
    result: Versus, ours: Server, take: Callable[[], bytes], script: str, **kwargs: Any
) -> None:
    """`ours` against `script --bare`, a bare app answering what ours answers to `take()`'s
    first request, in alternating rounds."""
    answer = record_answer(ours.port, take())
    bare_port = free_port()
    bare_args = [sys.executable, str(Path(script).resolve()), "--bare", answer, str(bare_port)]
    with running(bare_args, env=clean_env(), log=None, port=bare_port) as bare:
        ports = {"ours": ours.port, "bare": bare.port}
        pids = {"ours": ours.process.pid, "bare": bare.process.pid}
        alternate(result, ports, pids, take, keep=False, **kwargs)


def two_workers(workdir: Path, **kwargs: Any) -> tuple[Versus, dict[str, int]]:
    print("PostgreSQL + Redis: --workers 2 against --workers 1 …", file=sys.stderr, flush=True)
    with postgres_schema() as url, redis_prefix() as prefix:
        traffic = Traffic(set_up(url), seed=2)
        traffic.add(120_000)
        result = Versus("PostgreSQL + Redis", ("2 workers", "1 worker"))
        redis = {"PHONEWAGON_REDIS_URL": REDIS_URL, "PHONEWAGON_REDIS_PREFIX": prefix}
        with (
            serve_ours(url, workdir, workers=2, **redis) as two,
            serve_ours(url, workdir, workers=1, **redis) as one,
        ):
            ports = {"2 workers": two.port, "1 worker": one.port}
            pids = {"2 workers": two.process.pid, "1 worker": one.process.pid}
            alternate(result, ports, pids, traffic.take, keep=True, **kwargs)
    return result, exclusive(result)


def exclusive(result: Versus) -> dict[str, int]:
    """How the numbers handed out in the run were shared: each must have one visitor."""
    holders: dict[str, set[str]] = {}
    answered = given = 0
    for load in result.loads.values():
        for body in load.answers:
            answer = orjson.loads(body)
            answered += 1
            for swap in answer["swaps"]:
                given += 1
                holders.setdefault(swap["number"], set()).add(answer["visitor"])
    shared = sum(1 for visitors in holders.values() if len(visitors) > 1)
    return {"answers": answered, "numbers given": given, "numbers": len(holders), "shared": shared}


def table(results: list[Versus], *, unit: str = "page views/s") -> list[str]:
    lines = [
        f"| backend | server | {unit} (median) | p50 | p99 | ratio | CPU, share of a core"
        f" | rounds ({unit}) | failures |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for result in results:
        for name in result.names:
            load = result.loads[name]
            ratio = f"**{result.ratio:.2f}x**" if name == result.names[0] else ""
            lines.append(
                f"| {result.name} | {name} | {result.rps(name):,.0f} | {load.percentile(50):.1f} ms"
                f" | {load.percentile(99):.1f} ms | {ratio}"
                f" | {statistics.median(result.cpu[name]):.0%}"
                f" | {', '.join(f'{r:,.0f}' for r in result.rounds.get(name, []))}"
                f" | {load.failures} |"
            )
    return lines


def section(
    bare: list[Versus],
    ceiling: Versus,
    pair: Versus,
    shared: dict[str, int],
    rounds: int,
    seconds: float,
) -> str:
    ratios = ", ".join(f"{r.name} {r.ratio:.2f}x" for r in bare)
    met_bare = all(r.ratio >= 0.3 for r in bare)
    met_pair = pair.ratio >= 1.5
    return "\n".join(
        [
            SECTION,
            "",
            f"`POST /dni/visits` as the script sends it: page views of {COMPANIES} companies' sites"
            f" (a pool of {POOL_SIZE} numbers each), half first visits and half returning"
            " visitors, a third with an ad click in the landing page, each from a client address"
            " of its own through the loopback proxy, with a browser's user agent and the site's"
            f" Origin. {rounds} rounds of {seconds:.0f} s per server, alternating, 8"
            " keep-alive connections from one uvloop client; a round with a failure is not"
            " counted. CPU counts the server's processes, its `work` process included.",
            "",
            "*bare* is a raw ASGI app served by the same `run_uvicorn` that reads the same body"
            " with orjson and answers ours' bytes. Target: one worker at least 0.3x the bare app:"
            f" {ratios}, {'met' if met_bare else 'NOT met'}. Two workers at least 1.5x one, on"
            f" PostgreSQL with Redis: {pair.ratio:.2f}x, {'met' if met_pair else 'NOT met'}.",
            "",
            *table([*bare, ceiling, pair]),
            "",
            f"*{BOTS}*: the same page views said to come from a crawler, which ours answers"
            " `swaps: []` after every check (the address's rate, the body, the site key, the"
            " company's rate, the origin, the user agent) and writes nothing: the request path"
            f" alone, without the database, reaches {ceiling.ratio:.2f}x the bare app.",
            "",
            f"Every answer of the two-worker comparison kept: {shared['answers']:,} page views"
            f" answered, {shared['numbers given']:,} numbers handed out ({shared['numbers']:,}"
            f" distinct), **{shared['shared']} handed to two visitors** (target 0).",
            "",
            measured_on(f"PostgreSQL {postgres_version()}", f"Redis {redis_version()}"),
            "",
            "Rerun: `uv run python bench/dni_visits.py --write`.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="rounds of 2 s")
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}'")
    parser.add_argument("--bare", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(int(args.bare[1]), args.bare[0])
        return
    rounds, seconds = 3, (2.0 if args.quick else 5.0)
    with tempfile.TemporaryDirectory(prefix="pw-bench-dni-") as work:
        workdir = Path(work)
        bare = [
            against_bare(
                "SQLite", f"sqlite:///{workdir}/visits.db", workdir, rounds=rounds, seconds=seconds
            )
        ]
        with postgres_schema() as url:
            bare.append(against_bare("PostgreSQL", url, workdir, rounds=rounds, seconds=seconds))
        # The request path alone: a bot's page view is answered after every check, unwritten.
        bots = f"sqlite:///{workdir}/bots.db"
        ceiling = against_bare(BOTS, bots, workdir, agent=CRAWLER, rounds=rounds, seconds=seconds)
        pair, shared = two_workers(workdir, rounds=rounds, seconds=seconds)
    text = section(bare, ceiling, pair, shared, rounds, seconds)
    print(text)
    if args.write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
