"""End to end: `phonewagon calls` against `phonewagon-server serve` at the real 50/minute limit."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_testkit import clean_env

BIN = Path(sys.executable).parent
CALLS = 1_110  # 56 pages of 20: more than the 50 requests a minute allows
PAGE_SIZE = 20


def run(command: str, *args: str, env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run(
        [str(BIN / command), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def manage(*args: str, env: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run("phonewagon-server", *args, "--json", env=env))
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    """The operator's environment: a SQLite file and the default rate limit."""
    clean = clean_env()
    return clean | {"PHONEWAGON_DATABASE_URL": f"sqlite:///{tmp_path / 'phonewagon.db'}"}


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`phonewagon-server serve` on a free port; its URL and its log file."""
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(BIN / "phonewagon-server"), "serve", "--port", str(port)],
            env=server_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(process, url, log)
            yield url, log
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not become healthy in 30 s")


def test_a_pull_of_more_pages_than_the_rate_limit_allows_completes_exactly_without_a_429(
    server: tuple[str, Path], server_env: dict[str, str], tmp_path: Path
) -> None:
    url, log = server
    account = manage("accounts", "create", "Agency E2E", env=server_env)
    company = manage(
        "companies", "create", "--account", str(account["account_id"]), "Rakes", env=server_env
    )
    campaign = f"campaigns create --company {company['id']} Facebook --id s2212"
    manage(*campaign.split(), env=server_env)
    # Four calls a millisecond: page boundaries fall inside shared milliseconds.
    imported = [
        {"sid": f"CA{n:032x}", "campaign_id": "s2212", "start_time": 1_575_322_416_000 - n // 4}
        for n in range(CALLS)
    ]
    calls_file = tmp_path / "import.jsonl"
    calls_file.write_text("".join(json.dumps(row) + "\n" for row in imported))
    report = manage(
        "calls", "import", str(calls_file), "--account", str(account["account_id"]), env=server_env
    )
    assert report["inserted"] == CALLS

    output = tmp_path / "calls.jsonl"
    client_env = clean_env() | {
        "PHONEWAGON_CLIENT_ID": account["client_id"],
        "PHONEWAGON_CLIENT_SECRET": account["client_secret"],
        "PHONEWAGON_BASE_URL": url,
    }
    pull = f"calls --page-size {PAGE_SIZE} --format jsonl --output"
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "phonewagon"), *pull.split(), str(output)],
        env=client_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stderr
    assert "429" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    sids = [json.loads(line)["sid"] for line in output.read_text().splitlines()]
    assert len(sids) == CALLS
    assert set(sids) == {row["sid"] for row in imported}
    assert elapsed > 55, "56 requests at 50 a minute cannot finish in less than a minute"
    answered = [line for line in log.read_text().splitlines() if '"GET /calls' in line]
    assert len(answered) >= CALLS // PAGE_SIZE + 1
    assert [line for line in answered if '" 429' in line] == [], (
        "the client should pace itself by the RateLimit header, not run into 429"
    )
