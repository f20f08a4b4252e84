"""Redis and PostgreSQL killed and restarted under load, beneath a real `serve --workers 2`.

The test owns both: a private PostgreSQL cluster (initdb into a temporary directory, its own port
and socket directory) and a private redis-server, so it can kill them without touching anything
else on the machine. Phases, with a steady load of a few threads throughout:

1. all up: answers 200/429, and a 200-request burst admits exactly the limit;
2. Redis killed: never a 500, every request answered, a burst admits at most the limit;
3. Redis back: exact again within seconds;
4. PostgreSQL killed: API answers are 503 problem+json with Retry-After, `/readyz` is 503,
   `/healthz` stays 200, never a 500;
5. PostgreSQL back: ready again within seconds, without restarting the server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from phonewagon_server.db import open_database
from phonewagon_server.db.migrations import upgrade
from server_testkit import Tenant, World, clean_env
from test_e2e_serve import Server, free_port

LIMIT = 50
BURST = 200
TLS_UNUSED = ssl.create_default_context()  # plain HTTP: made once rather than per client
LOAD_THREADS = 4
WORKERS = 2
REDIS_EPHEMERAL = ("--save", "", "--appendonly", "no")
PHASES = (ALL_UP, REDIS_DOWN, REDIS_BACK, POSTGRES_DOWN, POSTGRES_BACK) = (
    "1 all up",
    "2 Redis down",
    "3 Redis back",
    "4 PostgreSQL down",
    "5 PostgreSQL back",
)


def postgres_binaries() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        pytest.fail("no initdb: install PostgreSQL (its server binaries) to run this test")
    return Path(initdb).parent


def as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` system user."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root needs a `postgres` system user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--", *command]


class PrivatePostgres:
    """A throwaway cluster: trust auth, listening on 127.0.0.1:`port` only, no fsync."""

    def __init__(self) -> None:
        self.bin = postgres_binaries()
        # Not under pytest's tmp_path: its parents are private to root, out of postgres' reach.
        self.root = Path(tempfile.mkdtemp(prefix="phonewagon-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = as_postgres_user([str(self.bin / program), *args])
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{program} failed: {done.stderr}{self._log_tail()}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def kill(self) -> None:
        """Stop at once, as a crash would: connections drop, nothing is shut down cleanly."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(AssertionError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n" + self.log.read_text()[-2000:]
        return ""


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", *REDIS_EPHEMERAL],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if redis_ping(self.port) == b"+PONG":
                    return
            time.sleep(0.05)
        raise AssertionError("redis-server did not answer PING in 10 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def hits(self, account_id: int) -> int:
        """How many requests of the account the shared moving window in Redis holds."""
        client = redis.Redis.from_url(self.url)
        try:
            keys = list(client.scan_iter(match=f"*account:{account_id}/*"))
            return sum(int(client.llen(key)) for key in keys)
        finally:
            client.close()


def redis_ping(port: int) -> bytes:
    """PING a Redis server over a plain socket; its reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
        connection.sendall(b"PING\r\n")
        return connection.recv(64).strip()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    yield cluster
    cluster.remove()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("no redis-server: install Redis to run this test")
    redis = PrivateRedis()
    yield redis
    if redis.process is not None and redis.process.poll() is None:
        redis.kill()


@dataclass(frozen=True)
class Answer:
    sent_at: float  # time.monotonic() when the request was sent
    phase: str
    outcome: str  # the status code, or the transport error's name
    seconds: float


@dataclass
class Load:
    """A few threads asking steadily; each answer is kept with the phase it was asked in."""

    url: str
    accounts: list[tuple[str, str]]
    phase: str = "starting"
    answers: list[Answer] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(LOAD_THREADS):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def counts(self, phase: str) -> Counter[str]:
        return Counter(a.outcome for a in list(self.answers) if a.phase == phase)

    def slowest(self, phase: str) -> float:
        return max((a.seconds for a in list(self.answers) if a.phase == phase), default=0.0)

    def _run(self, n: int) -> None:
        paths = ["/calls?page_size=5", "/companies", "/campaigns", "/readyz"]
        with httpx.Client(base_url=self.url, timeout=15) as client:
            i = n
            while not self._stop.is_set():
                path = paths[i % len(paths)]
                phase, sent_at = self.phase, time.monotonic()
                try:
                    response = client.get(path, auth=self.accounts[i % len(self.accounts)])
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                else:
                    outcome = str(response.status_code)
                    self._check(phase, path, response)
                self.answers.append(Answer(sent_at, phase, outcome, time.monotonic() - sent_at))
                i += 1
                time.sleep(0.02)

    def _check(self, phase: str, path: str, response: httpx.Response) -> None:
        status = response.status_code
        problem = response.headers.get("content-type") == "application/problem+json"
        if status >= 400 and not problem:
            self.bad.append(f"{phase}: {path} {status} is not problem+json")
        if status == 503 and int(response.headers.get("retry-after", "0")) < 1:
            self.bad.append(f"{phase}: {path} 503 without Retry-After")


def admitted(url: str, account: Tenant, *, sent: list[float] | None = None) -> int:
    """How many of `BURST` simultaneous requests of a fresh account were let through.

    Each request has its own connection, all made before any is sent; `sent` gets the moment
    they are let go."""
    moments = sent if sent is not None else []
    start = threading.Barrier(BURST, action=lambda: moments.append(time.monotonic()))

    def ask(_: int) -> int:
        with httpx.Client(auth=account.auth, timeout=30, verify=TLS_UNUSED) as client:
            start.wait()
            return client.get(f"{url}/companies").status_code

    with ThreadPoolExecutor(BURST) as pool:
        statuses = list(pool.map(ask, range(BURST)))
    assert set(statuses) <= {200, 429}, Counter(statuses)
    return statuses.count(200)


def wait_until(condition: Callable[[], bool], *, seconds: float) -> float:
    """Poll `condition()` until true; how long it took. Fails after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not true within {seconds} s")


def test_killing_redis_and_postgresql_under_load_never_answers_500_and_recovers(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    database = open_database(private_postgres.url)
    try:
        upgrade(database)
        world = World(database)
        loaders = [world.tenant(f"Load {n}") for n in range(6)]
        fresh = iter([world.tenant(f"Burst {n}") for n in range(12)])
        # Its own account: a loader's quota may be spent when the database goes (a 429 first).
        prober = world.tenant("Outage prober")
    finally:
        database.close()
    env = clean_env()
    env |= {
        "PHONEWAGON_DATABASE_URL": private_postgres.url,
        "PHONEWAGON_REDIS_URL": private_redis.url,
        "PHONEWAGON_RATE_LIMIT": f"{LIMIT}/minute",
    }
    server = Server(["serve", "--workers", str(WORKERS)], env)
    load = Load(server.url, [tenant.auth for tenant in loaders])
    figures: dict[str, Any] = {}
    load.start()
    try:
        load.phase = ALL_UP
        account = next(fresh)
        figures["1 burst admitted / counted in Redis"] = (
            admitted(server.url, account),
            private_redis.hits(account.account_id),
        )
        time.sleep(2)

        load.phase = REDIS_DOWN
        private_redis.kill()
        time.sleep(2)
        figures["2 burst admitted"] = admitted(server.url, next(fresh))
        time.sleep(1)

        load.phase = REDIS_BACK
        private_redis.start()
        redis_back_at = time.monotonic()
        transition: list[tuple[int, int]] = []
        sent: list[float] = []

        def exact_again() -> bool:
            """Exactly the limit admitted, and counted in Redis (the fallback admits 2 x 25)."""
            account = next(fresh)
            count = admitted(server.url, account, sent=sent)
            transition.append((count, private_redis.hits(account.account_id)))
            return transition[-1] == (LIMIT, LIMIT)

        wait_until(exact_again, seconds=20)
        figures["3 exact again for a burst sent after s"] = round(sent[-1] - redis_back_at, 1)
        figures["3 bursts admitted / counted in Redis"] = transition

        load.phase = POSTGRES_DOWN
        private_postgres.kill()
        time.sleep(1)
        down = {
            path: httpx.get(f"{server.url}{path}", auth=prober.auth, timeout=15)
            for path in ("/readyz", "/calls", "/healthz")
        }
        time.sleep(3)

        load.phase = POSTGRES_BACK
        private_postgres.start()
        back_at = time.monotonic()
        # Until every worker's pool has reconnected, some requests still get 503s.
        wait_until(lambda: load.counts(POSTGRES_BACK)["200"] >= 50, seconds=20)
        time.sleep(2)
    finally:
        load.stop()
        still_running = server.process.poll() is None
        _, _, log = server.stop()

    failing_after = [
        a.sent_at - back_at for a in load.answers if a.phase == POSTGRES_BACK and a.outcome == "503"
    ]
    figures["5 last 503 for a request sent after restart, s"] = round(max(failing_after or [0]), 1)
    for phase in PHASES:
        print(f"{phase}: {dict(sorted(load.counts(phase).items()))}", end="")
        print(f", slowest answer {load.slowest(phase):.2f} s")
    for name, value in figures.items():
        print(f"{name}: {value}")

    assert still_running, "the server must live through both outages without a restart"
    assert not load.bad, load.bad[:10]
    for phase in PHASES:
        assert set(load.counts(phase)) <= {"200", "429", "503"}, (phase, load.counts(phase))
    # 1: exact, and counted in Redis.
    assert figures["1 burst admitted / counted in Redis"] == (LIMIT, LIMIT)
    assert set(load.counts(ALL_UP)) <= {"200", "429"}
    # 2: every request answered, and a burst bounded by the workers' shares of the limit.
    assert 0 < figures["2 burst admitted"] <= LIMIT
    assert set(load.counts(REDIS_DOWN)) <= {"200", "429"}
    assert load.counts(REDIS_DOWN)["200"] > 0
    assert "Redis unreachable" in log
    # 3: exact again within seconds. A worker back on Redis first counts there what it admitted
    # alone; until the other worker does too, a burst may still pass the limit by its share.
    assert figures["3 exact again for a burst sent after s"] < 10
    assert all(count <= LIMIT + LIMIT // 2 for count, _ in transition)
    assert "Redis is back" in log
    # 4: 503 problems with Retry-After while the database is gone; the process still answers.
    assert down["/readyz"].status_code == 503
    assert down["/calls"].status_code == 503
    assert down["/calls"].headers["content-type"] == "application/problem+json"
    assert int(down["/calls"].headers["retry-after"]) >= 1
    assert down["/healthz"].status_code == 200
    assert load.counts(POSTGRES_DOWN)["503"] > 0
    # 5: back without a restart, for accounts made before the outage.
    assert figures["5 last 503 for a request sent after restart, s"] < 10
    assert load.counts(POSTGRES_BACK)["200"] >= 50
    assert "Traceback" not in log
