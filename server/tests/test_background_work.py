"""The background work runs in a `work` process of its own: `serve` starts it, starts it again
when it dies and stops it with itself; an operator may run it elsewhere instead."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from phonewagon_server.twilio.simulator import TwilioSender, events, random_call
from server_testkit import clean_env
from test_e2e_serve import COMMAND, Server, cli

ACCOUNT_SID = "AC" + "b7" * 16
AUTH_TOKEN = "c" * 32
NUMBER = "+18445550150"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return clean_env() | {
        "PHONEWAGON_DATABASE_URL": database_url,
        "PHONEWAGON_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "PHONEWAGON_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PHONEWAGON_RECORDINGS_DIR": str(tmp_path / "recordings"),
    }


@pytest.fixture
def account(env: dict[str, str]) -> dict[str, Any]:
    """An account with one tracking number, set up with the CLI."""
    made = cli("accounts", "create", "Background Agency", env=env)
    company = cli("companies", "create", "--account", str(made["account_id"]), "Acme", env=env)
    campaign = cli("campaigns", "create", "--company", str(company["id"]), "Search", env=env)
    cli(
        "numbers", "add", NUMBER, "--campaign", campaign["id"], "--forward-to", "+15035550100",
        env=env,
    )  # fmt: skip
    return made


def work_processes(server: Server) -> list[psutil.Process]:
    children = psutil.Process(server.process.pid).children(recursive=True)
    return [child for child in children if "work" in child.cmdline()]


def ring(server: Server, seed: int) -> str:
    """A busy call to our number, its webhooks all answered: its sid."""
    call = random_call(random.Random(seed), to_number=NUMBER, final_status="busy")
    with TwilioSender(server.url, auth_token=AUTH_TOKEN) as sender:
        answers = sender.deliver(events(call, account_sid=ACCOUNT_SID, api_base="https://x.test"))
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    return call.sid


def stored_status(server: Server, account: dict[str, Any], sid: str) -> str | None:
    auth = (account["client_id"], account["client_secret"])
    page = httpx.get(f"{server.url}/calls", params={"page_size": 1000}, auth=auth, timeout=10)
    assert page.status_code == 200, page.text
    return next((c["status"] for c in page.json()["calls"] if c["sid"] == sid), None)


def wait_for(condition: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    raise AssertionError(f"not so within {seconds} s")


@pytest.fixture
def served(env: dict[str, str], account: dict[str, Any]) -> Iterator[Server]:
    server = Server(["serve"], env | {"PHONEWAGON_RATE_LIMIT": "1000/minute"})
    yield server
    server.stop()


def test_serve_applies_webhooks_in_its_work_process_and_restarts_it_when_it_dies(
    served: Server, account: dict[str, Any]
) -> None:
    (first,) = wait_for(lambda: work_processes(served))
    sid = ring(served, seed=1)
    assert wait_for(lambda: stored_status(served, account, sid) == "busy")

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    (second,) = wait_for(lambda: [p for p in work_processes(served) if p.pid != first.pid])
    sid = ring(served, seed=2)
    assert wait_for(lambda: stored_status(served, account, sid) == "busy")

    code, _, stderr = served.stop()
    assert code == 0
    assert "the background work exited with -9: restarted" in stderr
    assert not second.is_running() or second.status() == psutil.STATUS_ZOMBIE


def test_without_background_work_webhooks_wait_for_a_work_process_run_elsewhere(
    env: dict[str, str], account: dict[str, Any]
) -> None:
    server = Server(["serve", "--background-work", "none"], env)
    try:
        assert work_processes(server) == []
        sid = ring(server, seed=3)
        time.sleep(1.5)  # three times the workers' poll: nothing applies it here
        assert stored_status(server, account, sid) is None

        work = subprocess.Popen([COMMAND, "work"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_for(lambda: stored_status(server, account, sid) == "busy")
        finally:
            work.send_signal(signal.SIGTERM)
            _, stderr = work.communicate(timeout=30)
        assert work.returncode == 0, stderr
        assert "background work stopped" in stderr
    finally:
        server.stop()


def test_what_the_work_process_counts_shows_in_the_web_workers_metrics(
    served: Server, env: dict[str, str], account: dict[str, Any]
) -> None:
    """A call to a pool number that no visitor held is counted ambiguous where it is applied,
    in the work process; `/metrics` is served by the web worker."""
    company = cli("companies", "create", "--account", str(account["account_id"]), "Pools", env=env)
    cli(
        "campaigns", "create", "--company", str(company["id"]), "Website", "--id", "w77",
        "--swap-target", "+15035550177", env=env,
    )  # fmt: skip
    pool_number = "+18445550177"
    cli(
        "numbers", "add", pool_number, "--campaign", "w77", "--forward-to", "+15035550177",
        env=env,
    )  # fmt: skip
    call = random_call(random.Random(4), to_number=pool_number, final_status="busy")
    with TwilioSender(served.url, auth_token=AUTH_TOKEN) as sender:
        sender.deliver(events(call, account_sid=ACCOUNT_SID, api_base="https://x.test"))
    assert wait_for(lambda: stored_status(served, account, call.sid) == "busy")

    def ambiguous_calls() -> float:
        page = httpx.get(f"{served.url}/metrics", timeout=10).text
        line = next(
            x for x in page.splitlines() if x.startswith("phonewagon_dni_ambiguous_calls_total")
        )
        return float(line.split()[-1])

    assert wait_for(lambda: ambiguous_calls() == 1.0)
    assert httpx.get(f"{served.url}/healthz").status_code == 200
    requests = httpx.get(f"{served.url}/metrics").text
    assert 'phonewagon_http_requests_total{method="GET",route="/healthz",status="200"}' in requests


def test_an_unknown_background_work_mode_is_refused_clearly(env: dict[str, str]) -> None:
    done = subprocess.run(
        [COMMAND, "serve"],
        env=env | {"PHONEWAGON_BACKGROUND_WORK": "threads"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "PHONEWAGON_BACKGROUND_WORK must be one of process, none, not 'threads'" in done.stderr
