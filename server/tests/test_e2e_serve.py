"""The real `phonewagon-server` processes, over a real port, set up through the real CLI."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from phonewagon_server.config import Settings
from server_testkit import POSTGRES_URL, clean_env

COMMAND = shutil.which("phonewagon-server") or str(
    Path(sys.executable).with_name("phonewagon-server")
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [COMMAND, *args, "--json"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class Server:
    def __init__(self, args: list[str], env: dict[str, str], *, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [COMMAND, *args, "--port", str(self.port)],
            env=env,
            cwd=cwd,  # where a command's relative paths (the demo's recordings) go
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # A pipe nobody reads fills up with the access log and then blocks the server: drain it.
        self._stderr: list[str] = []
        self._drain = threading.Thread(
            target=self._stderr.extend, args=(self.process.stderr,), daemon=True
        )
        self._drain.start()
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._drain.join(timeout=10)
                raise AssertionError(f"server exited: {''.join(self._stderr)}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("server did not become healthy in 60 s")

    def read_stdout_until(self, marker: str) -> str:
        assert self.process.stdout is not None
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            if line.strip().startswith(marker):
                break
        return "".join(lines)

    def stop(self) -> tuple[int, str, str]:
        if self.process.stdout is not None and self.process.stdout.closed:  # stopped already
            return self.process.returncode, "", "".join(self._stderr)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self._drain.join(timeout=10)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        with self.process.stdout, self.process.stderr:
            stdout = self.process.stdout.read()
        return self.process.returncode, stdout, "".join(self._stderr)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    variables = clean_env()
    return variables | {
        "PHONEWAGON_DATABASE_URL": database_url,
        "PHONEWAGON_RATE_LIMIT": "20/minute",
    }


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[Server]:
    running = Server(["serve"], env)
    yield running
    running.stop()


def test_an_account_set_up_with_the_cli_is_served_over_the_network(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    account = cli("accounts", "create", "Agency E2E", env=env)
    company = cli("companies", "create", "--account", str(account["account_id"]), "Rakes", env=env)
    campaign = cli(
        "campaigns", "create", "--company", str(company["id"]), "Facebook", "--id", "s2212", env=env
    )
    rows = [
        {"sid": f"CA{n:032x}", "campaign_id": "s2212", "start_time": 1_575_322_416_000 - n // 3}
        for n in range(12)
    ]
    calls_file = tmp_path / "calls.jsonl"
    calls_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    imported = cli(
        "calls", "import", str(calls_file), "--account", str(account["account_id"]), env=env
    )
    assert imported["inserted"] == 12

    auth = (account["client_id"], account["client_secret"])
    with httpx.Client(base_url=server.url, auth=auth) as client:
        assert client.get("/companies").json() == {
            "companies": [{"id": company["id"], "name": "Rakes"}]
        }
        assert client.get(f"/campaigns?company_id={company['id']}").json() == {
            "campaigns": [{"id": campaign["id"], "name": "Facebook"}]
        }
        sids, url = [], "/calls?campaign_id=s2212&page_size=5"
        while url:
            page = client.get(url)
            assert page.status_code == 200
            body = page.json()
            sids += [call["sid"] for call in body["calls"]]
            url = body.get("next", "")
            assert not url or url.startswith(f"{server.url}/calls?")
        assert sorted(sids) == sorted(row["sid"] for row in rows)

        statuses = [client.get("/companies").status_code for _ in range(20)]
        refused = client.get("/companies")
        assert 429 in statuses or refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1

    revoked = cli("credentials", "revoke", account["client_id"], env=env)
    assert revoked["client_id"] == account["client_id"]
    # A verified credential is trusted for PHONEWAGON_CREDENTIAL_CACHE_SECONDS (5) after it was
    # last checked against the database: the revocation takes effect within that time.
    deadline = time.monotonic() + Settings().credential_cache_seconds + 1
    while (status := httpx.get(f"{server.url}/companies", auth=auth).status_code) != 401:
        assert status in (200, 429)
        assert time.monotonic() < deadline, "the revoked credential is still accepted"
        time.sleep(0.2)


def test_serve_stops_cleanly_on_sigterm(server: Server) -> None:
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    returncode, _, stderr = server.stop()
    assert returncode in (0, -signal.SIGTERM), stderr  # uvicorn re-raises the signal it handled
    assert "Application shutdown complete" in stderr
    assert "Traceback" not in stderr


def test_the_demo_prints_curl_lines_that_work_verbatim(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = clean_env()
    demo = Server(["demo", "--database-url", "sqlite:///demo.db"], env, cwd=tmp_path)
    try:
        stdout = demo.read_stdout_until("open ")
        curl_lines = [
            line.strip() for line in stdout.splitlines() if line.strip().startswith("curl")
        ]
        assert len(curl_lines) >= 4
        assert f"The web app: http://127.0.0.1:{demo.port}/app/ (sign in as demo@" in stdout
        for line in curl_lines:
            assert f"127.0.0.1:{demo.port}" in line
            done = subprocess.run(
                shlex.split(line), capture_output=True, text=True, timeout=30, check=False
            )
            body = json.loads(done.stdout)
            assert set(body) & {"companies", "campaigns", "calls"}, body
            if "calls" in body:
                assert body["calls"], line
    finally:
        demo.stop()


def test_the_demo_rings_calls_that_arrive_in_the_feed_with_their_recordings(
    tmp_path: Path,
) -> None:
    """Simulated calls ring through the signed webhooks while the demo serves: the change feed
    line it prints shows them, and a finished one's recording plays."""
    demo = Server(["demo", "--database-url", "sqlite:///demo.db"], clean_env(), cwd=tmp_path)
    try:
        demo.read_stdout_until("Twilio webhooks;")
        assert demo.process.stdout is not None
        feed = shlex.split(demo.process.stdout.readline().strip())
        assert "updated_since=" in feed[3]
        auth = tuple(feed[2].split(":", 1))
        deadline = time.monotonic() + 150
        recorded: list[dict[str, Any]] = []
        while not recorded and time.monotonic() < deadline:
            time.sleep(3)  # the demo credential has the API's quota: 50 a minute
            answer = httpx.get(feed[3], auth=auth, timeout=10)
            assert answer.status_code in (200, 429), answer.text
            if answer.status_code == 200:
                recorded = [c for c in answer.json()["calls"] if c["recording_url"]]
        assert recorded, "no simulated call ended with a recording"
        audio = httpx.get(recorded[0]["recording_url"], auth=auth, timeout=10)
        assert audio.status_code == 200
        assert audio.headers["content-type"] == "audio/x-wav"
        assert audio.content.startswith(b"RIFF")
        assert (tmp_path / "phonewagon-demo-recordings" / recorded[0]["sid"]).is_dir()
    finally:
        _, _, stderr = demo.stop()
    assert "POST /twilio/voice 200" in stderr
    assert "Traceback" not in stderr


def test_sigterm_lets_a_request_in_flight_finish_before_exiting(postgres_url: str) -> None:
    """A deploy's restart must not cut off a page being served: the request held up inside the
    app (here by a lock on the table it reads) still gets its whole answer after SIGTERM."""
    application_name = f"pw_drain_{uuid.uuid4().hex[:10]}"
    env = clean_env()
    env["PHONEWAGON_DATABASE_URL"] = f"{postgres_url}&application_name={application_name}"
    account = cli("accounts", "create", "Draining Agency", env=env)
    company = cli("companies", "create", "--account", str(account["account_id"]), "Rakes", env=env)
    auth = (account["client_id"], account["client_secret"])
    answers: list[httpx.Response] = []
    server = Server(["serve"], env)
    try:
        with psycopg.connect(postgres_url) as locker:
            locker.execute("LOCK TABLE companies IN ACCESS EXCLUSIVE MODE")
            asking = threading.Thread(
                target=lambda: answers.append(
                    httpx.get(f"{server.url}/companies", auth=auth, timeout=30)
                )
            )
            asking.start()
            _wait_for_a_lock_wait(application_name)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1)
            assert server.process.poll() is None, "the server exited with a request in flight"
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{server.url}/healthz", timeout=2)  # no new requests while it drains
            locker.rollback()
        asking.join(timeout=30)
        returncode, _, stderr = server.stop()
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert [a.status_code for a in answers] == [200]
    assert answers[0].json() == {"companies": [{"id": company["id"], "name": "Rakes"}]}
    assert returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    assert "Traceback" not in stderr


def _wait_for_a_lock_wait(application_name: str) -> None:
    """Until a connection of the server's waits for a lock."""
    deadline = time.monotonic() + 30
    with psycopg.connect(POSTGRES_URL, autocommit=True) as observer:
        while time.monotonic() < deadline:
            waiting = observer.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND wait_event_type = 'Lock'",
                (application_name,),
            ).fetchone()
            if waiting and waiting[0] >= 1:
                return
            time.sleep(0.05)
    raise AssertionError("the request never reached the locked table")
