"""Recordings: fetched from the configured Twilio API alone, retried, kept once, and served to
the account that owns the call, with range requests."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from live_kit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    TRACKING,
    Live,
    live_deployment,
    live_settings,
    replaced,
)
from phonewagon_server.db import Database
from phonewagon_server.twilio.simulator import (
    SimulatedCall,
    Webhook,
    events,
    random_call,
    recordings_app,
    serve_in_thread,
    tone_wav,
)
from server_testkit import World, sign_in


@pytest.fixture
def fake_twilio() -> Iterator[tuple[str, Starlette]]:
    app = recordings_app(ACCOUNT_SID, [AUTH_TOKEN])
    url, stop = serve_in_thread(app)
    yield url, app
    stop()


@pytest.fixture
def live(database: Database, tmp_path: Path, fake_twilio: tuple[str, Starlette]) -> Iterator[Live]:
    settings = live_settings(tmp_path / "recordings", api_base=fake_twilio[0])
    yield from live_deployment(database, settings)


def answered_call(seed: int = 1) -> SimulatedCall:
    return random_call(
        random.Random(seed), to_number=TRACKING, final_status="completed", duration=30
    )


def ring(live: Live, call: SimulatedCall, api_base: str) -> Webhook:
    """Send every webhook of `call` but its recording's, applied; the recording webhook."""
    *progress, recording = events(call, account_sid=ACCOUNT_SID, api_base=api_base)
    live.twilio.deliver(progress)
    live.workers.run_until_idle()
    return recording


def run_until(live: Live, done: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        live.workers.run_until_idle()
        if callable(done) and done():
            return
        time.sleep(0.1)
    raise AssertionError("the background work did not finish in time")


def test_a_recording_is_fetched_kept_and_served_to_its_account(
    live: Live, database: Database, fake_twilio: tuple[str, Starlette]
) -> None:
    call = answered_call()
    recording = ring(live, call, fake_twilio[0])
    assert live.twilio.send(recording).status_code == 200
    live.workers.run_until_idle()
    (stored,) = live.calls()
    assert stored["recording_url"] == f"{PUBLIC_URL}/call-recordings/{call.sid}/file"
    audio = live.client.get(f"/call-recordings/{call.sid}/file", auth=live.tenant.auth)
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/x-wav"
    assert audio.content == tone_wav(seed=call.recording_sid)
    part = live.client.get(
        f"/call-recordings/{call.sid}/file", auth=live.tenant.auth, headers={"Range": "bytes=0-99"}
    )
    assert part.status_code == 206
    assert part.content == audio.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(audio.content)}"
    other = World(database).tenant("Other Agency")
    assert live.client.get(f"/call-recordings/{call.sid}/file", auth=other.auth).status_code == 404
    assert live.client.get(f"/call-recordings/{call.sid}/file").status_code == 401
    assert live.client.get("/call-recordings/CA0/file", auth=live.tenant.auth).status_code == 404
    assert fake_twilio[1].state.requests == [
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{call.recording_sid}"
    ]


def test_a_redelivered_recording_webhook_is_fetched_once(
    live: Live, fake_twilio: tuple[str, Starlette]
) -> None:
    call = answered_call(2)
    recording = ring(live, call, fake_twilio[0])
    live.twilio.deliver([recording] * 3)
    live.workers.run_until_idle()
    assert len(fake_twilio[1].state.requests) == 1
    assert len(list((live.workers.store.directory / call.sid).iterdir())) == 1


def test_twilio_failing_is_retried_with_backoff(
    live: Live, fake_twilio: tuple[str, Starlette]
) -> None:
    call = answered_call(3)
    recording = ring(live, call, fake_twilio[0])
    fake_twilio[1].state.fail_next = 2
    live.twilio.send(recording)
    run_until(live, lambda: live.calls()[0]["recording_url"] != "")
    assert len(fake_twilio[1].state.requests) == 3


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, Starlette]]:
    """A second server the recordings must never be fetched from."""
    app = recordings_app(ACCOUNT_SID, [AUTH_TOKEN])
    url, stop = serve_in_thread(app)
    yield url, app
    stop()


def test_a_recording_anywhere_else_is_refused_and_never_requested(
    live: Live, fake_twilio: tuple[str, Starlette], elsewhere: tuple[str, Starlette]
) -> None:
    call = answered_call(4)
    recording = ring(live, call, fake_twilio[0])
    ours = dict(recording.params)["RecordingUrl"]
    path = ours.removeprefix(fake_twilio[0])
    other_account = "AC" + "b2" * 16
    for url in (
        elsewhere[0] + path,  # another host
        ours.replace(ACCOUNT_SID, other_account),  # another Twilio account
        f"{fake_twilio[0]}/2010-04-01/Accounts/{ACCOUNT_SID}/../{other_account}/Recordings/x",
        f"{fake_twilio[0]}/2010-04-01/Accounts/{ACCOUNT_SID}/%2e%2e/x",
        fake_twilio[0] + "@" + elsewhere[0].removeprefix("http://") + path,
        f"{ours}?redirect={elsewhere[0]}",
    ):
        answer = live.twilio.send(
            Webhook(recording.path, replaced(recording.params, "RecordingUrl", url))
        )
        assert answer.status_code == 400, url
        assert "RecordingUrl" in answer.json()["detail"]
    live.workers.run_until_idle()
    assert live.queued() == 0
    assert elsewhere[1].state.requests == []
    assert fake_twilio[1].state.requests == []
    assert live.calls()[0]["recording_url"] == ""


KILLED_WORKER = """
import json, sys
from pathlib import Path
from phonewagon_server.config import Settings
from phonewagon_server.db import open_database
from phonewagon_server.queue import JobQueue
from phonewagon_server.twilio.workers import LiveWorkers
given = json.loads(sys.argv[1])
database = open_database(given["database_url"])
settings = Settings(
    public_url=given["public_url"], twilio_account_sid=given["sid"],
    twilio_auth_tokens=(given["token"],), twilio_api_base=given["api_base"],
    recordings_dir=Path(given["recordings"]),
)
LiveWorkers(database, JobQueue.beside(database), settings, fetch_lease_ms=2000).run_until_idle()
"""


def test_a_worker_killed_during_a_fetch_leaves_it_to_another(
    live: Live, database: Database, fake_twilio: tuple[str, Starlette], tmp_path: Path
) -> None:
    call = answered_call(5)
    recording = ring(live, call, fake_twilio[0])
    fake_twilio[1].state.delay_seconds = 60.0  # the first fetch hangs until its worker dies
    live.twilio.send(recording)
    given = {
        "database_url": database.url,
        "public_url": PUBLIC_URL,
        "sid": ACCOUNT_SID,
        "token": AUTH_TOKEN,
        "api_base": fake_twilio[0],
        "recordings": str(live.workers.store.directory),
    }
    worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, json.dumps(given)])
    try:
        deadline = time.monotonic() + 20
        while not fake_twilio[1].state.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_twilio[1].state.requests, "the worker never fetched"
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(timeout=10)
    fake_twilio[1].state.delay_seconds = 0.0
    run_until(live, lambda: live.calls()[0]["recording_url"] != "")
    assert len(fake_twilio[1].state.requests) == 2
    kept = list((live.workers.store.directory / call.sid).iterdir())
    assert [path.name for path in kept] == [f"{call.recording_sid}.wav"]
    with database.transaction() as tx:
        assert tx.fetchall("SELECT call_sid FROM call_recordings") == [(call.sid,)]


def test_the_web_apps_player_plays_a_recording_to_its_account_alone(
    live: Live, database: Database, fake_twilio: tuple[str, Starlette]
) -> None:
    call = answered_call(6)
    recording = ring(live, call, fake_twilio[0])
    live.twilio.send(recording)
    live.workers.run_until_idle()
    world = World(database)
    assert sign_in(live.client, world.user(live.tenant, "ada@example.com")).status_code == 303
    player = f"/app/calls/{call.sid}/recording"
    assert f'src="{player}"' in live.client.get("/app/calls").text
    audio = live.client.get(player)
    assert audio.status_code == 200
    assert audio.content == tone_wav(seed=call.recording_sid)
    other = world.tenant("Other Agency")
    live.client.cookies.clear()
    assert sign_in(live.client, world.user(other, "eve@example.com")).status_code == 303
    assert live.client.get(player).status_code == 404
