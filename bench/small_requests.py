"""Small requests: `GET /companies` with auth and rate limiting, against a bare ASGI app.

    uv run python bench/small_requests.py [--quick]   # 5 rounds x 2 s per server [3 x 1 s]

Both run one worker on a loopback port through `cli.serve.run_uvicorn` (same protocol, same
uvicorn options): `phonewagon-server serve` on a temporary SQLite file set up with the CLI (an
account, its credential, 3 companies; the rate limit raised out of the way, still counting), and
a bare app answering anything with the exact bytes of ours' `/companies` answer. The load:
CONNECTIONS keep-alive connections from one uvloop client, each writing a fixed request and
reading the answer by its Content-Length. Rounds alternate servers (and which goes first) so a
noisy neighbour hurts both alike. Reported: requests/s (median of rounds), p50 latency at that
concurrency, server CPU per request, the client's share of a CPU (near 100%: the client was the
bottleneck), ours/bare. Every answer must be a 200.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import uvloop

COMMAND = str(Path(sys.executable).with_name("phonewagon-server"))
CONNECTIONS = 8
HOST = "127.0.0.1"
SERVERS = ("ours", "bare")
Server = tuple[subprocess.Popen[bytes], int]  # a process and the port it listens on


def serve_bare(port: int, answer: dict[str, Any]) -> None:
    """Answer every request with the recorded bytes, run exactly as `serve` runs our app."""
    from phonewagon_server.cli.serve import run_uvicorn
    from phonewagon_server.config import Settings
    from phonewagon_server.logs import logging_config

    start = {
        "type": "http.response.start",
        "status": answer["status"],
        "headers": [(name.encode(), value.encode()) for name, value in answer["headers"]],
    }
    body = {"type": "http.response.body", "body": answer["body"].encode()}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":  # returning at once from "lifespan" is fine with uvicorn
            await send(start)
            await send(body)

    log_config = logging_config("json", "info")
    run_uvicorn(app, Settings(), host=HOST, port=port, log_level="info", log_config=log_config)


def start(args: list[str], env: dict[str, str]) -> Server:
    """`args` and a free port: the process, once it listens there, and the port."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen([*args, str(port)], env=env, stderr=subprocess.DEVNULL)  # noqa: S603
    for _ in range(600):
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, port), timeout=1).close()
            return process, port
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{args} did not listen on port {port}")


def fetch(port: int, authorization: str) -> tuple[int, list[list[str]], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request("GET", "/companies", headers={"Authorization": authorization})
    response = connection.getresponse()
    body = response.read()
    # uvicorn adds a Date header of its own to each answer, the bare app's as ours.
    headers = [[name.lower(), value] for name, value in response.getheaders() if name != "date"]
    return response.status, headers, body


def load(port: int, request: bytes, seconds: float) -> tuple[list[float], float]:
    """The latency of each answer received in `seconds`, and the client's CPU seconds."""
    latencies: list[float] = []
    cpu, until = time.process_time(), time.perf_counter() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        while (started := time.perf_counter()) < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"expected a 200, got {head.splitlines()[0]!r}")
            length = head.lower().split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0]
            await reader.readexactly(int(length))
            latencies.append(time.perf_counter() - started)
        writer.close()

    async def connections() -> None:
        await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))

    uvloop.run(connections())
    return latencies, time.process_time() - cpu


def measure(quick: bool) -> dict[str, Any]:
    rounds, seconds = (3, 1.0) if quick else (5, 2.0)
    with tempfile.TemporaryDirectory(prefix="pw-small-") as directory:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEWAGON_")} | {
            "PHONEWAGON_DATABASE_URL": f"sqlite:///{directory}/bench.db",
            "PHONEWAGON_RATE_LIMIT": "10000000/minute",
        }

        def cli(*args: str) -> dict[str, Any]:
            command = [COMMAND, *args, "--json"]
            done = subprocess.run(command, env=env, capture_output=True, check=True)  # noqa: S603
            return dict(json.loads(done.stdout))

        account = cli("accounts", "create", "Bench Agency")
        for name in ("Jake's rake company", "Acme Plumbing", "Northwind Dental"):
            cli("companies", "create", "--account", str(account["account_id"]), name)
        secret = f"{account['client_id']}:{account['client_secret']}"
        authorization = "Basic " + base64.b64encode(secret.encode()).decode()
        servers = {"ours": start([COMMAND, "serve", "--port"], env)}
        try:
            status, headers, body = fetch(servers["ours"][1], authorization)
            answer = json.dumps({"status": status, "headers": headers, "body": body.decode()})
            bare = [sys.executable, str(Path(__file__).resolve()), "--bare", answer]
            servers["bare"] = start(bare, env)
            if fetch(servers["bare"][1], authorization)[2] != body:
                raise RuntimeError("the bare app does not answer the same bytes")
            return _rounds(servers, authorization, rounds, seconds)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=30)


def _rounds(servers: dict[str, Server], authorization: str, rounds: int, seconds: float) -> Any:
    requests = {
        name: f"GET /companies HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: {authorization}\r\n\r\n".encode()
        for name, (_, port) in servers.items()
    }
    keys = ("rps", "latency", "cpu_us", "client")
    samples: dict[str, dict[str, list[float]]] = {n: {k: [] for k in keys} for n in SERVERS}
    for name in SERVERS:  # warm-up: connections, caches, the limiter's first window
        load(servers[name][1], requests[name], 0.5)
    for round_number in range(rounds):
        for name in SERVERS if round_number % 2 == 0 else reversed(SERVERS):
            server = psutil.Process(servers[name][0].pid)
            before = sum(server.cpu_times()[:2])
            latencies, client = load(servers[name][1], requests[name], seconds)
            used = sum(server.cpu_times()[:2]) - before
            samples[name]["rps"].append(len(latencies) / seconds)
            samples[name]["latency"] += latencies
            samples[name]["cpu_us"].append(used / len(latencies) * 1e6)
            samples[name]["client"].append(client / seconds)
    result: dict[str, Any] = {"rounds": rounds, "seconds": seconds, "connections": CONNECTIONS}
    for name, sample in samples.items():
        result[f"{name}_rps"] = round(statistics.median(sample["rps"]))
        result[f"{name}_rps_rounds"] = [round(r) for r in sample["rps"]]
        result[f"{name}_p50_ms"] = round(statistics.median(sample["latency"]) * 1000, 3)
        result[f"{name}_cpu_us_per_request"] = round(statistics.median(sample["cpu_us"]), 1)
        result[f"{name}_client_cpu_share"] = round(statistics.median(sample["client"]), 2)
    result["ratio"] = round(result["ours_rps"] / result["bare_rps"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1 s, not 5 of 2 s")
    parser.add_argument("--bare", nargs=2, metavar=("ANSWER", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(int(args.bare[1]), json.loads(args.bare[0]))
        return
    r = measure(args.quick)
    print(f"GET /companies, {CONNECTIONS} keep-alive connections, {r['rounds']} rounds")
    print(f"{'server':<8}{'req/s':>8}{'p50 ms':>9}{'CPU µs/req':>12}{'client CPU':>12}  rounds")
    for n in SERVERS:
        cpu, client = r[f"{n}_cpu_us_per_request"], r[f"{n}_client_cpu_share"]
        line = f"{r[f'{n}_rps']:>8}{r[f'{n}_p50_ms']:>9.3f}{cpu:>12.1f}{client:>12.0%}"
        print(f"{n:<8}{line}  {r[f'{n}_rps_rounds']}")
    print(f"ours/bare: {r['ratio']:.3f}")


if __name__ == "__main__":
    main()
