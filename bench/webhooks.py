"""Twilio webhooks: how many one server process accepts, how fast it answers at half that rate,
while a large import runs, and with two simulators delivering the same calls to two workers.

    uv run python bench/webhooks.py            # full rounds, an import of 1,000,000 calls
    uv run python bench/webhooks.py --quick    # short rounds, an import of 100,000 calls
    uv run python bench/webhooks.py --write    # also update "## Webhooks" in docs/benchmarks.md

The traffic is the simulator's (`phonewagon_server.twilio.simulator`): answered calls to a
tracking number set up with the CLI, 5 webhooks each (voice, 3 status callbacks, recording),
signed with the deployment's auth token before any clock starts, each request's bytes ready.
Every call is fresh: no request is sent twice. The recording URLs point at a stand-in of
Twilio's API (`simulator.recordings_app`, a process of its own), from which the server's
background workers fetch them. `phonewagon-server serve` runs on a loopback port, configured by
PHONEWAGON_* variables (public URL = that address, rate limit raised out of the way).

1. Accepted webhooks per second on one worker, SQLite and PostgreSQL, against a bare ASGI app
   run by the same `run_uvicorn` that parses the same form (`parse_qsl`) and answers ours' TwiML
   bytes and headers: keep-alive connections from one uvloop client, rounds alternating
   servers. After each round of ours the bench waits until the queue is empty, so a round
   starts with no background work left (and the bare app never runs beside it).
   Then the same race with voice webhooks of calls to a number that is not ours: every check
   (signature, fields, the number), a TwiML answer and two log lines, but nothing queued, no
   commit waited for and no background work. It shows what the request path alone allows.
   (Its 10,000 requests go round again: nothing of a declined call is kept to dedupe.)
2. p99 latency at half that rate, open loop: requests leave at fixed times, and each one's
   latency runs from its scheduled time, so a stall counts for everything queued behind it.
3. Paced webhooks during the whole of `phonewagon-server calls import` of a generated file
   (bench/import_calls.py's) into the same account; then, the queue drained, every call sent is
   read back with its final status.
4. `serve --workers 2` on PostgreSQL with Redis; two simulators deliver the same calls (every
   webhook by both, each in its own shuffled order): each call must be stored once, right.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import psutil
import uvloop
from import_calls import cli, plan_campaigns, prepare, write_file
from load_test import REDIS_URL, free_port, redis_prefix, redis_version, server_command
from testbed import (
    BENCHMARKS,
    ROOT,
    measured_on,
    postgres_schema,
    postgres_version,
    serve_replaying,
    write_section,
)

from phonewagon_server.db import Database, open_database
from phonewagon_server.db.calls import count_calls, read_call
from phonewagon_server.queue import JobQueue
from phonewagon_server.twilio.signature import signature
from phonewagon_server.twilio.simulator import (
    SimulatedCall,
    TwilioSender,
    Webhook,
    events,
    random_call,
    recordings_app,
    tone_wav,
)
from phonewagon_server.twilio.workers import CALL_EVENT

SECTION = "## Webhooks"
HOST = "127.0.0.1"
ACCOUNT_SID = "AC" + "be9c" * 8
AUTH_TOKEN = "b3nch" * 6 + "42"  # the bench's own throwaway deployment
TRACKING_NUMBER = "+18445550199"  # apart from the import's numbers (+1844555 0100..0117)
NOT_OURS = "+18445550198"  # no number of the deployment: its calls are declined
FORWARD_TO = "+15035550100"
PER_CALL = 5  # webhooks of an answered call: voice, ringing, in-progress, completed, recording
CONNECTIONS = 8  # closed loop, as bench/small_requests.py
PACED_CONNECTIONS = 64  # open loop: enough that the client never makes a request wait
TIMEOUT_SECONDS = 15.0  # how long Twilio waits for an answer
DRAIN_SECONDS = 1800.0  # a job's retries back off to 10 minutes (twilio.workers.backoff_ms)
IMPORT_RATE = 100  # webhooks/s during the import: 20 answered calls a second
SERVERS = ("ours", "bare")


# --- deployments -------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path | None = None

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback") if self.log else 0


def _wait_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    for _ in range(1200):
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, port), timeout=1).close()
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    sys.exit(f"{what} did not listen on port {port}")


@contextlib.contextmanager
def running(
    args: list[str], *, env: dict[str, str], log: Path | None, port: int
) -> Iterator[Server]:
    """The process of `args`, once it listens on `port`; stopped (SIGTERM) afterwards."""
    sink = log.open("wb") if log else contextlib.nullcontext(subprocess.DEVNULL)
    with sink as output:  # a file, not a pipe: a pipe would fill and block the process
        process = subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        _wait_listening(process, port, args[1] if len(args) > 1 else args[0])
        yield Server(f"http://{HOST}:{port}", port, process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def clean_env(**variables: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PHONEWAGON_")} | variables


@contextlib.contextmanager
def serve_ours(
    database_url: str, workdir: Path, api_base: str, *, workers: int = 1, **extra: str
) -> Iterator[Server]:
    port = free_port()
    env = clean_env(
        PHONEWAGON_DATABASE_URL=database_url,
        PHONEWAGON_PUBLIC_URL=f"http://{HOST}:{port}",
        PHONEWAGON_RATE_LIMIT="10000000/minute",
        PHONEWAGON_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        PHONEWAGON_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PHONEWAGON_TWILIO_API_BASE=api_base,
        PHONEWAGON_RECORDINGS_DIR=str(workdir / f"recordings-{port}"),
        PHONEWAGON_LOG_FORMAT="json",
        **extra,
    )
    args = [*server_command(), "serve", "--port", str(port), "--workers", str(workers)]
    with running(args, env=env, log=workdir / f"serve-{port}.log", port=port) as server:
        yield server


def run_script(mode: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), f"--{mode}", *args]


def serve_recordings(port: int) -> None:
    """Twilio's recordings API, stood in for: the same short WAV for every recording."""
    import uvicorn

    audio = tone_wav(0.5)
    app = recordings_app(ACCOUNT_SID, [AUTH_TOKEN], audio=lambda _: audio)
    uvicorn.run(app, host=HOST, port=port, log_config=None, access_log=False)


def serve_bare(port: int, answers: dict[str, Any]) -> None:
    """Read the form as ours does and answer ours' recorded bytes for the path."""
    serve_replaying(
        port,
        answers,
        lambda body: parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True),
    )


def set_up_account(database_url: str) -> tuple[int, str]:
    """An account with a company and a campaign, made with the CLI: its id, the campaign's."""
    account = cli("accounts", "create", "Webhook Agency", database_url=database_url)
    account_id = str(account["account_id"])
    company = cli("companies", "create", "--account", account_id, "Acme", database_url=database_url)
    campaign = cli(
        "campaigns", "create", "--company", str(company["id"]), "Google Ads",
        database_url=database_url,
    )  # fmt: skip
    return int(account_id), str(campaign["id"])


def add_tracking_number(database_url: str, campaign_id: str) -> None:
    """The number the traffic calls, forwarding to the business, with the CLI."""
    cli(
        "numbers", "add", TRACKING_NUMBER, "--campaign", campaign_id, "--forward-to", FORWARD_TO,
        database_url=database_url,
    )  # fmt: skip


# --- traffic -----------------------------------------------------------------------------------


def signed_request(webhook: Webhook, public_url: str) -> bytes:
    """The whole HTTP request, as Twilio would send it to `public_url`."""
    body = urlencode(webhook.params).encode()
    signed = signature(AUTH_TOKEN, public_url + webhook.path, webhook.params)
    head = (
        f"POST {webhook.path} HTTP/1.1\r\nHost: {public_url.split('://', 1)[1]}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nUser-Agent: TwilioProxy/1.1\r\n"
        f"X-Twilio-Signature: {signed}\r\n"
        f"I-Twilio-Idempotency-Token: {webhook.idempotency_token()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Traffic:
    """Pre-signed requests of fresh answered calls to one server, taken in order: call i's five
    webhooks are requests 5i..5i+4, so the calls sent whole are the first `position // 5`."""

    def __init__(self, public_url: str, api_base: str, *, seed: int) -> None:
        self.public_url = public_url
        self.api_base = api_base
        self.rng = random.Random(seed)  # noqa: S311 - test traffic, deterministic on purpose
        self.calls: list[SimulatedCall] = []
        self.requests: list[bytes] = []
        self.position = 0

    def add_calls(self, count: int) -> None:
        for _ in range(count):
            call = random_call(self.rng, to_number=TRACKING_NUMBER, final_status="completed")
            hooks = events(call, account_sid=ACCOUNT_SID, api_base=self.api_base)
            assert len(hooks) == PER_CALL  # noqa: S101 - the mix the bench reports
            self.calls.append(call)
            self.requests += [signed_request(hook, self.public_url) for hook in hooks]

    def ensure(self, requests: int) -> None:
        """At least `requests` not yet taken, signed now (never while a clock runs)."""
        missing = requests - (len(self.requests) - self.position)
        if missing > 0:
            self.add_calls(-(-missing // PER_CALL))

    def take(self) -> bytes:
        if self.position >= len(self.requests):
            raise RuntimeError("out of pre-signed requests: the bench signed too few")
        self.position += 1
        return self.requests[self.position - 1]

    def sent_whole(self) -> list[SimulatedCall]:
        return self.calls[: self.position // PER_CALL]


def declined_requests(public_url: str, api_base: str, count: int) -> list[bytes]:
    """Pre-signed voice webhooks of `count` fresh calls to a number that is not ours."""
    rng = random.Random(5)  # noqa: S311 - test traffic
    requests = []
    for _ in range(count):
        call = random_call(rng, to_number=NOT_OURS, final_status="completed")
        voice = events(call, account_sid=ACCOUNT_SID, api_base=api_base)[0]
        requests.append(signed_request(voice, public_url))
    return requests


def record_answers(
    server: Server, api_base: str, *, to_number: str = TRACKING_NUMBER
) -> dict[str, Any]:
    """Ours' answer to each webhook path (for a call of its own), as the bare app repeats it;
    for a number not ours, to the voice webhook only (that call goes no further)."""
    rng = random.Random(1)  # noqa: S311 - test traffic
    call = random_call(rng, to_number=to_number, final_status="completed")
    hooks = events(call, account_sid=ACCOUNT_SID, api_base=api_base)
    answers: dict[str, Any] = {}
    with TwilioSender(server.url, auth_token=AUTH_TOKEN) as sender:
        for hook in hooks if to_number == TRACKING_NUMBER else hooks[:1]:
            response = sender.send(hook)
            if hook.path in answers:
                continue
            headers = [[n, v] for n, v in response.headers.multi_items() if n != "date"]
            answers[hook.path] = {
                "status": response.status_code,
                "headers": headers,
                "body": response.text,
            }
    if any(answer["status"] != 200 for answer in answers.values()):
        sys.exit(f"the server refused a sample webhook: {answers}")
    return answers


# --- load --------------------------------------------------------------------------------------


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    answers: list[bytes] = field(default_factory=list)  # the bodies, when asked to keep them

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000

    @property
    def worst_ms(self) -> float:
        return max(self.latencies) * 1000


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes
) -> tuple[int, bytes]:
    """Send one request, read its whole answer (by Content-Length); its status and body."""
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    length = head.lower().split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0]
    return int(head[9:12]), await reader.readexactly(int(length))


def closed_loop(
    port: int, take: Callable[[], bytes], seconds: float, *, keep: bool = False
) -> Load:
    """CONNECTIONS connections, each sending its next request as soon as an answer is in; with
    `keep`, every answer's body is kept."""
    load = Load()
    until = time.perf_counter() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        while (started := time.perf_counter()) < until:
            try:
                exchange = _exchange(reader, writer, take())
                status, body = await asyncio.wait_for(exchange, TIMEOUT_SECONDS)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                load.failures += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            load.latencies.append(time.perf_counter() - started)
            load.failures += status != 200
            if keep:
                load.answers.append(body)
        writer.close()

    async def connections() -> None:
        await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))

    uvloop.run(connections())
    return load


def paced(
    port: int, take: Callable[[], bytes], rate: float, *, until: Callable[[int], bool]
) -> Load:
    """Open loop: request i leaves at `start + i / rate` (late if a connection is not free),
    its latency counted from then; sends until `until(i)` says stop."""
    load = Load()

    async def run() -> None:
        idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for _ in range(PACED_CONNECTIONS):
            idle.put_nowait(await asyncio.open_connection(HOST, port))
        in_flight: set[asyncio.Task[None]] = set()

        async def one(due: float, request: bytes) -> None:
            reader, writer = await idle.get()
            try:
                status, _ = await asyncio.wait_for(
                    _exchange(reader, writer, request), TIMEOUT_SECONDS
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                status = 0
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
            load.latencies.append(time.perf_counter() - due)
            load.failures += status != 200
            idle.put_nowait((reader, writer))

        start = time.perf_counter()
        sent = 0
        while not until(sent):
            due = start + sent / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            task = asyncio.create_task(one(due, take()))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
        await asyncio.gather(*in_flight)
        while not idle.empty():
            idle.get_nowait()[1].close()

    uvloop.run(run())
    return load


@dataclass(frozen=True)
class Drain:
    applied: float  # seconds until every call event was applied
    empty: float  # until no job waited at all: recordings fetched too, after any back-off


def drain(queue: JobQueue, *, timeout: float = DRAIN_SECONDS) -> Drain:
    """Wait until no job waits in the queue (done, or failed for good)."""
    started = time.perf_counter()
    applied = None
    while True:
        with queue.storage.transaction() as tx:
            rows = tx.fetchall("SELECT kind FROM jobs WHERE failed_at IS NULL GROUP BY kind")
        waiting = {row[0] for row in rows}
        elapsed = time.perf_counter() - started
        if applied is None and CALL_EVENT not in waiting:
            applied = elapsed
        if not waiting:
            return Drain(applied, elapsed)
        if elapsed > timeout:
            sys.exit(f"the queue still held {queue.depth()} jobs after {timeout:.0f} s")
        time.sleep(0.05)


@dataclass
class Stored:
    """The calls sent, read back with the server's own reader once the queue is empty."""

    sent: int = 0
    found: int = 0
    right_status: int = 0
    right_duration: int = 0
    right: int = 0  # status, duration and recording all as the simulator made them
    recordings: int = 0
    failed_jobs: int = 0

    @property
    def all_right(self) -> bool:
        return self.sent == self.right and self.failed_jobs == 0


def check_stored(
    database: Database, queue: JobQueue, account_id: int, calls: list[SimulatedCall]
) -> Stored:
    stored = Stored(sent=len(calls), failed_jobs=queue.depth().failed)
    with database.transaction() as tx:
        for call in calls:
            got = read_call(tx, account_id, call.sid)
            if got is None:
                continue
            stored.found += 1
            status = got.status == call.final_status
            duration = got.duration == call.duration
            recording = got.recording_url.endswith(f"/call-recordings/{call.sid}/file")
            stored.right_status += status
            stored.right_duration += duration
            stored.recordings += recording
            stored.right += status and duration and recording == bool(call.recording_sid)
    return stored


# --- 1 and 2: throughput, and latency at half of it --------------------------------------------


@dataclass
class Backend:
    name: str
    ours: Load = field(default_factory=Load)
    bare: Load = field(default_factory=Load)
    ours_rounds: list[float] = field(default_factory=list)
    bare_rounds: list[float] = field(default_factory=list)
    declined: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in SERVERS})
    drains: list[Drain] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in SERVERS})
    work_cpu: list[float] = field(default_factory=list)  # ours' `work` process, beside it
    accepted: int = 0
    paced_rate: float = 0.0
    paced: Load = field(default_factory=Load)
    stored: Stored = field(default_factory=Stored)
    tracebacks: int = 0
    seconds: float = 0.0  # of a round

    def rps(self, name: str) -> float:
        rounds = self.ours_rounds if name == "ours" else self.bare_rounds
        return statistics.median(rounds) if rounds else 0.0

    @property
    def ratio(self) -> float:
        return self.rps("ours") / self.rps("bare") if self.rps("bare") else 0.0

    @property
    def declined_ratio(self) -> float:
        ours, bare = (statistics.median(self.declined[n]) for n in SERVERS)
        return ours / bare

    @property
    def sustained(self) -> float:
        """Accepted and applied: webhooks over the rounds' time plus the waits after them until
        every call event was applied."""
        waits = sum(d.applied for d in self.drains)
        return self.accepted / (self.seconds * len(self.drains) + waits)


def measure_backend(
    name: str,
    database_url: str,
    workdir: Path,
    api_base: str,
    *,
    seed: int,
    rounds: int,
    seconds: float,
    paced_seconds: float,
) -> Backend:
    print(f"{name}: throughput, {rounds} rounds of {seconds:.0f} s …", file=sys.stderr, flush=True)
    account_id, campaign_id = set_up_account(database_url)
    add_tracking_number(database_url, campaign_id)
    result = Backend(name, seconds=seconds)
    database = open_database(database_url)
    queue = JobQueue.beside(database)
    try:
        with serve_ours(database_url, workdir, api_base) as ours:
            answers = record_answers(ours, api_base)
            bare_port = free_port()
            bare_args = run_script("bare", json.dumps(answers), str(bare_port))
            with running(bare_args, env=clean_env(), log=None, port=bare_port) as bare:
                traffic = Traffic(ours.url, api_base, seed=seed)
                traffic.ensure(20_000)
                _check_bare(bare, answers, traffic.requests[:PER_CALL])
                _rounds(result, ours, bare, traffic, queue, rounds=rounds, seconds=seconds)
            _declined_rounds(result, ours, api_base, rounds=rounds, seconds=seconds)
            rate = result.rps("ours") / 2
            print(f"{name}: paced at {rate:.0f}/s …", file=sys.stderr, flush=True)
            traffic.ensure(int(rate * paced_seconds) + 2 * PER_CALL)
            first = traffic.position
            result.paced_rate = rate
            result.paced = paced(
                ours.port, traffic.take, rate,
                until=lambda sent: sent >= rate * paced_seconds
                and (first + sent) % PER_CALL == 0,
            )  # fmt: skip
            drain(queue)
            result.stored = check_stored(database, queue, account_id, traffic.sent_whole())
        result.tracebacks = ours.tracebacks()
    finally:
        queue.close()
        database.close()
    return result


def _check_bare(bare: Server, answers: dict[str, Any], requests: list[bytes]) -> None:
    """The bare app answers each request with ours' recorded bytes, a 200."""

    async def ask() -> None:
        reader, writer = await asyncio.open_connection(HOST, bare.port)
        for request in requests:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0])
            body = (await reader.readexactly(length)).decode()
            path = request.split(b" ", 2)[1].decode()
            if not head.startswith(b"HTTP/1.1 200 ") or body != answers[path]["body"]:
                sys.exit(f"the bare app answered {path} otherwise than ours")
        writer.close()

    uvloop.run(ask())


def _rounds(
    result: Backend,
    ours: Server,
    bare: Server,
    traffic: Traffic,
    queue: JobQueue,
    *,
    rounds: int,
    seconds: float,
) -> None:
    """Alternate servers and which goes first; ours' queue emptied after each of its rounds."""
    bare_requests = traffic.requests[:10_000]
    bare_position = 0

    def take_bare() -> bytes:
        nonlocal bare_position
        bare_position += 1
        return bare_requests[bare_position % len(bare_requests)]

    closed_loop(bare.port, take_bare, 0.5)  # warm-up: connections, caches
    closed_loop(ours.port, traffic.take, 0.5)
    drain(queue)
    processes = {"ours": psutil.Process(ours.process.pid), "bare": psutil.Process(bare.process.pid)}
    for number in range(rounds):
        for name in SERVERS if number % 2 == 0 else reversed(SERVERS):
            if name == "ours":
                traffic.ensure(max(20_000, 3 * int(max(result.ours_rounds, default=0) * seconds)))
            before = sum(processes[name].cpu_times()[:2])
            work = processes["ours"].children(recursive=True)
            work_before = sum(sum(child.cpu_times()[:2]) for child in work)
            if name == "ours":
                load = closed_loop(ours.port, traffic.take, seconds)
            else:
                load = closed_loop(bare.port, take_bare, seconds)
            result.cpu[name].append((sum(processes[name].cpu_times()[:2]) - before) / seconds)
            if name == "ours":
                work_after = sum(sum(child.cpu_times()[:2]) for child in work)
                result.work_cpu.append((work_after - work_before) / seconds)
            if name == "ours":
                result.drains.append(drain(queue))
                result.accepted += len(load.latencies)
            total = result.ours if name == "ours" else result.bare
            total.latencies += load.latencies
            total.failures += load.failures
            if load.failures:  # an invalid round: not counted
                continue
            (result.ours_rounds if name == "ours" else result.bare_rounds).append(
                len(load.latencies) / seconds
            )


def _declined_rounds(
    result: Backend, ours: Server, api_base: str, *, rounds: int, seconds: float
) -> None:
    """Calls to a number not ours against a bare app answering ours' decline, alternating."""
    answers = record_answers(ours, api_base, to_number=NOT_OURS)
    bare_port = free_port()
    bare_args = run_script("bare", json.dumps(answers), str(bare_port))
    requests = declined_requests(ours.url, api_base, 10_000)
    position = 0

    def take() -> bytes:
        nonlocal position
        position += 1
        return requests[position % len(requests)]

    with running(bare_args, env=clean_env(), log=None, port=bare_port) as bare:
        _check_bare(bare, answers, requests[:1])
        ports = {"ours": ours.port, "bare": bare.port}
        closed_loop(ours.port, take, 0.5)
        for number in range(rounds):
            for name in SERVERS if number % 2 == 0 else reversed(SERVERS):
                load = closed_loop(ports[name], take, seconds)
                if not load.failures:
                    result.declined[name].append(len(load.latencies) / seconds)
                (result.ours if name == "ours" else result.bare).failures += load.failures


# --- 3: webhooks while an import runs ----------------------------------------------------------


@dataclass
class DuringImport:
    name: str
    rows: int
    import_seconds: float = 0.0
    webhook_seconds: float = 0.0
    load: Load = field(default_factory=Load)
    drain_after_import: Drain = Drain(0.0, 0.0)
    stored: Stored = field(default_factory=Stored)
    calls_in_account: int = 0
    expected_in_account: int = 0
    tracebacks: int = 0


def measure_during_import(
    name: str,
    database_url: str,
    workdir: Path,
    api_base: str,
    *,
    seed: int,
    calls_file: Path,
    rows: int,
    rate: int,
) -> DuringImport:
    result = DuringImport(name, rows)
    campaigns = plan_campaigns()
    account_id = prepare(database_url, campaigns)
    add_tracking_number(database_url, campaigns[0].id)
    database = open_database(database_url)
    queue = JobQueue.beside(database)
    try:
        with serve_ours(database_url, workdir, api_base) as ours:
            traffic = Traffic(ours.url, api_base, seed=seed)
            # Signed up front for an import 20 times as slow as bench/import_calls.py measured.
            traffic.ensure(int(rate * max(120, rows / 2_000)))
            importing = threading.Event()
            importing.set()
            failed: list[BaseException] = []

            def send() -> None:
                try:
                    result.load = paced(
                        ours.port,
                        traffic.take,
                        rate,
                        until=lambda sent: not importing.is_set() and sent % PER_CALL == 0,
                    )
                except BaseException as exc:
                    failed.append(exc)
                    raise

            sender = threading.Thread(target=send, name="paced-webhooks")
            print(f"{name}: importing {rows:,} calls under webhooks …", file=sys.stderr, flush=True)
            started = time.perf_counter()
            sender.start()
            time.sleep(2)  # webhooks before the import starts, too
            import_started = time.perf_counter()
            cli("calls", "import", str(calls_file), "--account", str(account_id),
                database_url=database_url)  # fmt: skip
            result.import_seconds = time.perf_counter() - import_started
            time.sleep(2)
            importing.clear()
            sender.join()
            if failed:
                sys.exit(f"the paced sender stopped: {failed[0]!r}")
            result.webhook_seconds = time.perf_counter() - started
            result.drain_after_import = drain(queue)
            sent = traffic.sent_whole()
            result.stored = check_stored(database, queue, account_id, sent)
            with database.transaction() as tx:
                result.calls_in_account = count_calls(tx, account_id)
            result.expected_in_account = rows + len(sent)
        result.tracebacks = ours.tracebacks()
    finally:
        queue.close()
        database.close()
    return result


# --- 4: two simulators, two workers ------------------------------------------------------------


@dataclass
class TwoSimulators:
    calls: int
    webhooks_each: int = 0
    answers: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    drain: Drain = Drain(0.0, 0.0)
    stored: Stored = field(default_factory=Stored)
    calls_in_account: int = 0
    expected_recordings: int = 0
    tracebacks: int = 0


def measure_two_simulators(workdir: Path, api_base: str, calls: int) -> TwoSimulators:
    print(f"two simulators, {calls} calls, --workers 2 …", file=sys.stderr, flush=True)
    result = TwoSimulators(calls)
    rng = random.Random(2212)  # noqa: S311 - test traffic
    made = [random_call(rng, to_number=TRACKING_NUMBER) for _ in range(calls)]
    result.expected_recordings = sum(call.final_status == "completed" for call in made)
    with postgres_schema() as database_url, redis_prefix() as prefix:
        account_id, campaign_id = set_up_account(database_url)
        add_tracking_number(database_url, campaign_id)
        database = open_database(database_url)
        queue = JobQueue.beside(database)
        redis = {"PHONEWAGON_REDIS_URL": REDIS_URL, "PHONEWAGON_REDIS_PREFIX": prefix}
        try:
            with serve_ours(database_url, workdir, api_base, workers=2, **redis) as ours:
                hooks = [
                    hook
                    for call in made
                    for hook in events(call, account_sid=ACCOUNT_SID, api_base=api_base)
                ]
                result.webhooks_each = len(hooks)
                statuses: list[int] = []

                def simulate(seed: int) -> None:
                    with TwilioSender(ours.url, auth_token=AUTH_TOKEN) as sender:
                        order = random.Random(seed)  # noqa: S311 - test traffic
                        sent = sender.deliver(hooks, rng=order, shuffle=True, concurrency=4)
                        statuses.extend(response.status_code for response in sent)

                simulators = [threading.Thread(target=simulate, args=(s,)) for s in (1, 2)]
                started = time.perf_counter()
                for simulator in simulators:
                    simulator.start()
                for simulator in simulators:
                    simulator.join()
                result.seconds = time.perf_counter() - started
                for status in statuses:
                    result.answers[status] = result.answers.get(status, 0) + 1
                result.drain = drain(queue)
                result.stored = check_stored(database, queue, account_id, made)
                with database.transaction() as tx:
                    result.calls_in_account = count_calls(tx, account_id)
            result.tracebacks = ours.tracebacks()
        finally:
            queue.close()
            database.close()
    return result


# --- the report --------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _rates(rounds: list[float]) -> str:
    return ", ".join(f"{rate:,.0f}" for rate in rounds)


def throughput_table(backends: list[Backend]) -> list[str]:
    lines = [
        "| backend | server | req/s (median) | p50 | p99 | ours/bare | server CPU, share of a core"
        " | its work process's CPU | rounds (req/s) | failures |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for b in backends:
        for name in SERVERS:
            load = b.ours if name == "ours" else b.bare
            rounds = b.ours_rounds if name == "ours" else b.bare_rounds
            ratio = f"**{b.ratio:.2f}x**" if name == "ours" else ""
            work = f"{statistics.median(b.work_cpu):.0%}" if name == "ours" else ""
            lines.append(
                f"| {b.name} | {name} | {b.rps(name):,.0f} | {_ms(load.percentile(50))}"
                f" | {_ms(load.percentile(99))} | {ratio} | {statistics.median(b.cpu[name]):.0%}"
                f" | {work} | {_rates(rounds)} | {load.failures} |"
            )
    return lines


def declined_table(backends: list[Backend]) -> list[str]:
    lines = [
        "| backend | ours, req/s (median) | bare, req/s (median) | ours/bare"
        " | rounds, ours (req/s) | rounds, bare (req/s) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for b in backends:
        ours, bare = (b.declined[name] for name in SERVERS)
        lines.append(
            f"| {b.name} | {statistics.median(ours):,.0f} | {statistics.median(bare):,.0f}"
            f" | **{b.declined_ratio:.2f}x** | {_rates(ours)} | {_rates(bare)} |"
        )
    return lines


def drain_table(backends: list[Backend]) -> list[str]:
    lines = [
        "| backend | events applied, after a round (median, max) | all jobs done (median, max)"
        " | accepted and applied, req/s | calls read back right / sent whole | recordings"
        " | failed jobs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for b in backends:
        s = b.stored
        applied = [d.applied for d in b.drains]
        empty = [d.empty for d in b.drains]
        lines.append(
            f"| {b.name} | {statistics.median(applied):.1f} s, {max(applied):.1f} s"
            f" | {statistics.median(empty):.1f} s, {max(empty):.1f} s | {b.sustained:,.0f}"
            f" | {s.right:,} / {s.sent:,} | {s.recordings:,} | {s.failed_jobs} |"
        )
    return lines


def paced_table(backends: list[Backend]) -> list[str]:
    lines = [
        "| backend | rate (half of ours' max) | requests | p50 | p99 | max | failures |"
        " p99 < 100 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for b in backends:
        load = b.paced
        lines.append(
            f"| {b.name} | {b.paced_rate:,.0f}/s | {len(load.latencies):,}"
            f" | {_ms(load.percentile(50))} | {_ms(load.percentile(99))} | {_ms(load.worst_ms)}"
            f" | {load.failures} | {'yes' if load.percentile(99) < 100 else 'no'} |"
        )
    return lines


def import_table(results: list[DuringImport]) -> list[str]:
    lines = [
        "| backend | import | webhooks (while importing) | p50 | p99 | max | over 5 s |"
        " failures | after the import: events applied, all jobs done | calls read back right"
        " / sent |"
        " calls in the account |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s, load = r.stored, r.load
        over = sum(latency > 5 for latency in load.latencies)
        lines.append(
            f"| {r.name} | {r.rows:,} calls, {r.import_seconds:.1f} s"
            f" | {len(load.latencies):,} ({int(r.import_seconds * IMPORT_RATE):,})"
            f" | {_ms(load.percentile(50))} | {_ms(load.percentile(99))} | {_ms(load.worst_ms)}"
            f" | {over} | {load.failures} | {r.drain_after_import.applied:.1f} s,"
            f" {r.drain_after_import.empty:.1f} s"
            f" | {s.right:,} / {s.sent:,}"
            f" | {r.calls_in_account:,} of {r.expected_in_account:,} |"
        )
    return lines


def section(
    backends: list[Backend], imports: list[DuringImport], two: TwoSimulators, *, rounds: int,
    seconds: float, paced_seconds: float, command: str,
) -> str:  # fmt: skip
    s = two.stored
    answers = ", ".join(f"{n:,} answered {status}" for status, n in sorted(two.answers.items()))
    ratios = " and ".join(f"{b.name} {b.ratio:.2f}x" for b in backends)
    met = all(b.ratio >= 0.3 for b in backends)
    p99s = " and ".join(f"{b.name} {_ms(b.paced.percentile(99))}" for b in backends)
    return "\n".join(
        [
            SECTION,
            "",
            "Signed Twilio webhooks (`/twilio/voice`, `/twilio/status`, `/twilio/recording`)"
            " against `phonewagon-server serve` on a loopback port, one web worker (and the `work`"
            " process that `serve` runs beside it, decision 16). The traffic is"
            f" the simulator's: answered calls to one tracking number, {PER_CALL} webhooks each"
            " (voice, ringing, in-progress, completed with its duration, the recording), every"
            " call fresh, each request signed before the clock starts. Recordings are fetched in"
            " the background from a stand-in of Twilio's API on the same machine.",
            "",
            f"**Accepted per second** ({rounds} rounds of {seconds:.0f} s per server, alternating;"
            f" {CONNECTIONS} keep-alive connections from one uvloop client). *bare* is a raw ASGI"
            " app served by the same `run_uvicorn` that parses the same form with `parse_qsl`"
            " and answers ours' TwiML bytes and headers. Every answer must be a 200; a round with"
            " a failure is not counted. After each round of ours the bench waits until the work"
            " queue is empty, so each round starts with no background work left and the bare"
            " app never runs beside ours' workers. Target: at least 0.3x the bare app: "
            f"{ratios}, {'met' if met else 'NOT met'}.",
            "",
            *throughput_table(backends),
            "",
            "**The request path alone**: the same race with the voice webhooks of calls to a"
            " number that is not ours, which every check runs for (signature, fields, the"
            " number, read once and kept for 5 s) and which are answered with TwiML that"
            " declines the call, logged in two lines (the access line, and the number not ours),"
            " but with nothing queued, no commit waited for"
            " and no work behind them. *bare* answers ours' decline. It bounds what the"
            " accepted webhooks above can reach on this stack.",
            "",
            *declined_table(backends),
            "",
            "Behind the answers, the `work` process beside the server applies every job and"
            " fetches every recording: how long the queue took to empty after a round, the"
            " webhooks accepted *and* applied per second over the rounds and those waits, and"
            " the calls of the whole run read back with the server's reader afterwards"
            " (status `completed` and the duration the simulator gave).",
            "",
            *drain_table(backends),
            "",
            f"**Latency at half the measured rate**, open loop for {paced_seconds:.0f} s: each"
            " request leaves at its scheduled time (from up to"
            f" {PACED_CONNECTIONS} connections) and its latency counts from that time, so a"
            f" stall counts for every request due during it. Target: p99 under 100 ms: {p99s}.",
            "",
            *paced_table(backends),
            "",
            f"**During a large import.** {IMPORT_RATE} webhooks/s"
            f" ({IMPORT_RATE // PER_CALL} answered calls a second) to a tracking number of the"
            " importing account, from 2 s before `phonewagon-server calls import` of a generated"
            f" file of {imports[0].rows:,} calls (bench/import_calls.py's) until 2 s after it"
            " ends; then, once the queue is empty, every call sent is read back. On SQLite the"
            " import holds the database's write lock for its whole run: the webhooks go to the"
            " queue's own file, and their calls are written once the import ends, after their"
            " jobs' back-off (1 s, 2 s, 4 s … per attempt).",
            "",
            *import_table(imports),
            "",
            f"**Two simulators, two workers.** `serve --workers 2` on PostgreSQL with Redis;"
            f" {two.calls:,} calls of the simulator's mix of outcomes (busy, no-answer, failed and"
            f" canceled ones included), all {two.webhooks_each:,} of their webhooks delivered by"
            " each of two simulators at once, each in its own shuffled order from 4 threads"
            f" ({two.seconds:.1f} s). Answers: {answers}. Once the queue was empty"
            f" ({two.drain.empty:.1f} s later): {s.found:,} of {two.calls:,} calls stored,"
            f" {two.calls_in_account:,} rows in the account (each call once),"
            f" {s.right_status:,} with the right final status, {s.right_duration:,} with the"
            f" right duration, {s.recordings:,} of {two.expected_recordings:,} recordings"
            f" attached, {s.failed_jobs} jobs failed for good.",
            "",
            "Tracebacks in the server logs: "
            + ", ".join(
                [f"{b.name} {b.tracebacks}" for b in backends]
                + [f"{r.name} during the import {r.tracebacks}" for r in imports]
                + [f"two workers {two.tracebacks}."]
            ),
            "",
            measured_on(
                f"PostgreSQL {postgres_version()} and Redis {redis_version()} on the same machine"
            ),
            "",
            f"Rerun: `{command}`.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, 100,000-call import")
    parser.add_argument("--import-rows", type=int, help="calls in the import (1,000,000)")
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r} in {BENCHMARKS}")
    parser.add_argument("--bare", nargs=2, metavar=("ANSWERS", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--recordings", metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(int(args.bare[1]), json.loads(args.bare[0]))
        return
    if args.recordings:
        serve_recordings(int(args.recordings))
        return
    rounds, seconds, paced_seconds = (3, 1.0, 3.0) if args.quick else (5, 2.0, 10.0)
    rows = args.import_rows or (100_000 if args.quick else 1_000_000)
    two_calls = 200 if args.quick else 1000
    workdir = Path(tempfile.mkdtemp(prefix="phonewagon-bench-webhooks-"))
    recordings_port = free_port()
    try:
        with running(
            run_script("recordings", str(recordings_port)),
            env=clean_env(),
            log=None,
            port=recordings_port,
        ) as recordings:
            api_base = recordings.url
            plan = {"rounds": rounds, "seconds": seconds, "paced_seconds": paced_seconds}
            sqlite_url = f"sqlite:///{workdir}/throughput.db"
            backends = [measure_backend("SQLite", sqlite_url, workdir, api_base, seed=1, **plan)]
            with postgres_schema() as url:
                backends.append(
                    measure_backend("PostgreSQL", url, workdir, api_base, seed=2, **plan)
                )
            calls_file = workdir / "calls.jsonl"
            print(f"writing {rows:,} calls to {calls_file} …", file=sys.stderr, flush=True)
            write_file(calls_file, rows, plan_campaigns(), account_id=1)
            during = {"calls_file": calls_file, "rows": rows, "rate": IMPORT_RATE}
            sqlite_url = f"sqlite:///{workdir}/import.db"
            imports = [
                measure_during_import("SQLite", sqlite_url, workdir, api_base, seed=3, **during)
            ]
            with postgres_schema() as url:
                imports.append(
                    measure_during_import("PostgreSQL", url, workdir, api_base, seed=4, **during)
                )
            calls_file.unlink()
            two = measure_two_simulators(workdir, api_base, two_calls)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    command = "uv run python bench/webhooks.py --write" + (" --quick" if args.quick else "")
    if args.import_rows:
        command += f" --import-rows {args.import_rows}"
    text = section(
        backends, imports, two,
        rounds=rounds, seconds=seconds, paced_seconds=paced_seconds, command=command,
    )  # fmt: skip
    print(text)
    if args.write:
        write_section(text, SECTION)
        print(f"updated {SECTION!r} in {BENCHMARKS.relative_to(ROOT)}", file=sys.stderr)
    if problems := _problems(backends, imports, two):
        sys.exit("the section reports failures: " + "; ".join(problems))


def _problems(
    backends: list[Backend], imports: list[DuringImport], two: TwoSimulators
) -> list[str]:
    """What makes a run fail (a target missed does not): refusals, lost calls, tracebacks."""
    problems = []
    for b in backends:
        if b.ours.failures or b.bare.failures or b.paced.failures:
            problems.append(f"{b.name}: answers other than 200")
    for r in imports:
        if r.load.failures or r.calls_in_account != r.expected_in_account:
            problems.append(f"{r.name} during the import: failures or a call lost")
    if two.answers.keys() != {200} or two.calls_in_account != two.calls:
        problems.append("two simulators: answers other than 200 or calls not stored once")
    for name, stored in [(b.name, b.stored) for b in [*backends, *imports]] + [("two", two.stored)]:
        if not stored.all_right:
            problems.append(f"{name}: {stored.sent - stored.right} calls not stored right")
    tracebacks = sum(r.tracebacks for r in [*backends, *imports, two])
    if tracebacks:
        problems.append(f"{tracebacks} tracebacks in the server logs")
    return problems


if __name__ == "__main__":
    main()
