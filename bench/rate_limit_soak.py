"""Minutes at twice the rate limit against the real server: never more than the limit in 60 s.

    uv run python bench/rate_limit_soak.py               # 3 minutes
    uv run python bench/rate_limit_soak.py --minutes 10
    uv run python bench/rate_limit_soak.py --write       # also update docs/benchmarks.md

One account asks `phonewagon-server serve --workers 2` (PostgreSQL, the limit shared in Redis)
at twice its limit, at moments drawn at random (fixed seed) so that requests also come in
clusters, each over a connection of its own so that both workers answer. The server admits a
request somewhere between the moment it was sent and the moment its answer arrived; the report
places each admission at the middle of that bracket, counts the most admitted in any rolling 60 s,
and gives the bracket's bounds on the shortest time between an admission and the one `limit`
admissions later (more than 60 s means never more than `limit` in any 60 s).
"""

from __future__ import annotations

import argparse
import random
import ssl
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from load_test import REDIS_URL, create_account, machine, redis_prefix, serve, server_tracebacks
from testbed import BENCHMARKS, ROOT, postgres_schema, write_section

from phonewagon_server.db import open_database
from phonewagon_server.db.migrations import upgrade

SECTION = "## Rate limit soak"
LIMIT = 50
WINDOW = 60.0
SEED = 2212
TLS_UNUSED = ssl.create_default_context()  # plain HTTP: made once rather than per request


@dataclass(frozen=True)
class Answer:
    sent: float  # seconds since the start of the run
    answered: float
    status: int | str

    @property
    def middle(self) -> float:
        return (self.sent + self.answered) / 2


@dataclass(frozen=True)
class Soak:
    minutes: float
    workers: int
    answers: list[Answer]
    tracebacks: int

    @property
    def admitted(self) -> list[Answer]:
        return sorted((a for a in self.answers if a.status == 200), key=lambda a: a.middle)

    def most_in_any_window(self) -> int:
        """The most admissions (at the middle of their brackets) in any rolling `WINDOW` s."""
        times = [a.middle for a in self.admitted]
        most, first = 0, 0
        for last, moment in enumerate(times):
            while times[first] <= moment - WINDOW:
                first += 1
            most = max(most, last - first + 1)
        return most

    def shortest_gap(self) -> tuple[float, float, float] | None:
        """Bounds of the shortest time from an admission to the one `LIMIT` admissions later:
        (at least, at the middles, at most)."""
        admitted = self.admitted
        pairs = list(zip(admitted, admitted[LIMIT:], strict=False))
        if not pairs:
            return None
        return (
            min(later.sent - earlier.answered for earlier, later in pairs),
            min(later.middle - earlier.middle for earlier, later in pairs),
            min(later.answered - earlier.sent for earlier, later in pairs),
        )


def schedule(minutes: float) -> list[float]:
    """Twice the limit's rate, at random moments: on average 2 x LIMIT requests a minute."""
    rng = random.Random(SEED)  # noqa: S311 - a reproducible schedule, not a secret
    count = round(minutes * 2 * LIMIT)
    return sorted(rng.uniform(0, minutes * 60) for _ in range(count))


def soak(url: str, auth: tuple[str, str], moments: list[float]) -> list[Answer]:
    answers: list[Answer] = []
    lock = threading.Lock()
    origin = time.monotonic()

    def ask() -> None:
        sent = time.monotonic() - origin
        try:
            # A connection of its own, so that the kernel spreads requests over both workers.
            response = httpx.get(f"{url}/companies", auth=auth, timeout=30, verify=TLS_UNUSED)
            status: int | str = response.status_code
        except httpx.TransportError as exc:
            status = type(exc).__name__
        with lock:
            answers.append(Answer(sent, time.monotonic() - origin, status))

    with ThreadPoolExecutor(32) as pool:
        for n, moment in enumerate(moments):
            delay = moment - (time.monotonic() - origin)
            if delay > 0:
                time.sleep(delay)
            pool.submit(ask)
            if n % (2 * LIMIT) == 0:
                print(f"{moment / 60:.1f} min: {n} requests sent", file=sys.stderr, flush=True)
    return answers


def measure(*, minutes: float, workers: int) -> Soak:
    with postgres_schema() as database_url, redis_prefix() as prefix:
        database = open_database(database_url)
        try:
            upgrade(database)
            _, client_id, secret = create_account(database, "Soak Agency", number=0)
        finally:
            database.close()
        env = {
            "PHONEWAGON_DATABASE_URL": database_url,
            "PHONEWAGON_REDIS_URL": REDIS_URL,
            "PHONEWAGON_REDIS_PREFIX": prefix,
            "PHONEWAGON_RATE_LIMIT": f"{LIMIT}/minute",
        }
        with serve(env, workers=workers) as served:
            answers = soak(served.url, (client_id, secret), schedule(minutes))
        tracebacks = server_tracebacks(served)
        served.log.unlink()
    return Soak(minutes, workers, answers, tracebacks)


def section(result: Soak, *, command: str) -> str:
    statuses = Counter(a.status for a in result.answers)
    gap = result.shortest_gap()
    gap_text = (
        f"at least {gap[0]:.3f} s by the brackets, {gap[1]:.3f} s at their middles"
        f" (at most {gap[2]:.3f} s)"
        if gap
        else "not reached"
    )
    others = {k: v for k, v in statuses.items() if k not in (200, 429)}
    return "\n".join(
        [
            SECTION,
            "",
            f"One account asking at twice its limit ({2 * LIMIT} requests a minute against"
            f" {LIMIT}/minute) for {result.minutes:g} minutes, at random moments (fixed seed), each"
            f" over a connection of its own, against `phonewagon-server serve --workers"
            f" {result.workers}` with the limit shared in Redis.",
            "",
            "| requests | admitted | refused (429) | other answers |"
            " most admitted in any rolling 60 s |",
            "|---:|---:|---:|---:|---:|",
            f"| {len(result.answers):,} | {statuses[200]:,} | {statuses[429]:,}"
            f" | {sum(others.values())} | {result.most_in_any_window()} (limit {LIMIT}) |",
            "",
            f"Shortest time from an admission to the one {LIMIT} admissions later: {gap_text};"
            f" over {WINDOW:.0f} s means never more than {LIMIT} in any {WINDOW:.0f} s. The"
            f" server logged {result.tracebacks} tracebacks.",
            "",
            machine(),
            "",
            f"Rerun: `{command}`.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r} in {BENCHMARKS}")
    args = parser.parse_args()
    result = measure(minutes=args.minutes, workers=args.workers)
    command = "uv run python bench/rate_limit_soak.py --write"
    if args.minutes != 3.0 or args.workers != 2:
        command += f" --minutes {args.minutes:g} --workers {args.workers}"
    text = section(result, command=command)
    print(text)
    others = [a.status for a in result.answers if a.status not in (200, 429)]
    if result.most_in_any_window() > LIMIT or others or result.tracebacks:
        sys.exit(
            f"FAILED: most in any 60 s {result.most_in_any_window()} (limit {LIMIT}),"
            f" other answers {Counter(others)}, tracebacks {result.tracebacks}"
        )
    if args.write:
        write_section(text, SECTION)
        print(f"updated {SECTION!r} in {BENCHMARKS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
