"""The voice and status webhooks: what they answer, what they store, in any order, any number of
times, and what they refuse."""

from __future__ import annotations

import itertools
import json
import logging
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from live_kit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BUSINESS,
    OLD_TOKEN,
    PUBLIC_URL,
    TRACKING,
    Live,
    live_deployment,
    live_settings,
    replaced,
    without,
)
from phonewagon_server.db import Database, open_database
from phonewagon_server.db import numbers as number_rows
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.db.numbers import TrackingNumber
from phonewagon_server.twilio.simulator import SimulatedCall, Webhook, events, random_call
from server_testkit import World
from test_cli import run

API_BASE = "https://api.twilio.com"


@pytest.fixture
def live(database: Database, tmp_path: Path) -> Iterator[Live]:
    yield from live_deployment(database, live_settings(tmp_path / "recordings"))


def call_to(number: str = TRACKING, **given: object) -> SimulatedCall:
    return random_call(random.Random(str(given)), to_number=number, **given)  # type: ignore[arg-type]


def hooks(call: SimulatedCall) -> list[Webhook]:
    return events(call, account_sid=ACCOUNT_SID, api_base=API_BASE)


def test_a_call_is_forwarded_recorded_and_stored(live: Live) -> None:
    call = call_to(final_status="completed", duration=95)
    voice, *statuses, _recording = hooks(call)
    answer = live.twilio.send(voice)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    dial = ET.fromstring(answer.content).find("Dial")
    assert dial is not None
    assert dial.findtext("Number") == BUSINESS
    assert dial.get("recordingStatusCallback") == f"{PUBLIC_URL}/twilio/recording"
    assert dial.get("record", "").startswith("record-from-")
    live.workers.run_until_idle()
    (stored,) = live.calls()
    assert stored["sid"] == call.sid
    assert stored["status"] == "ringing"
    assert stored["from_number"] == call.from_number
    assert stored["to_number"] == TRACKING
    assert stored["direction"] == "inbound"
    assert stored["campaign_id"] == live.number.campaign_id
    assert stored["company_id"] == live.number.company_id
    assert stored["user_source"] == live.tenant.campaign.name
    assert stored["is_first_time_caller"] is True
    expected_name = call.caller_name or f"{call.from_city}, {call.from_state}"
    assert stored["contact_name"] == expected_name
    for status in statuses:
        assert live.twilio.send(status).status_code == 200
    live.workers.run_until_idle()
    (done,) = live.calls()
    assert (done["status"], done["duration"]) == ("completed", 95)
    assert done["start_time"] == stored["start_time"]
    assert done["updated_at"] > stored["updated_at"]


def test_an_unknown_number_is_declined_and_nothing_is_stored(live: Live) -> None:
    voice, status, *_ = hooks(call_to("+18445550199"))
    answer = ET.fromstring(live.twilio.send(voice).content)
    assert answer.findtext("Say")
    assert answer.find("Hangup") is not None
    assert answer.find("Dial") is None
    assert live.twilio.send(status).status_code == 200
    live.workers.run_until_idle()
    assert live.calls() == []


STATUS_ORDERS = list(itertools.permutations(range(4)))  # the voice webhook and three statuses


@pytest.mark.parametrize("order", STATUS_ORDERS)
def test_any_order_and_any_repetition_ends_in_the_right_call(
    live: Live, order: tuple[int, ...]
) -> None:
    call = call_to(final_status="completed", duration=61)
    webhooks = hooks(call)[:4]
    rng = random.Random(str(order))
    for index in order:
        for _ in range(rng.randint(1, 3)):
            assert live.twilio.send(webhooks[index]).status_code == 200
        if rng.random() < 0.5:
            live.workers.run_until_idle()  # applied between deliveries, or all at the end
    live.workers.run_until_idle()
    (stored,) = live.calls()
    assert (stored["status"], stored["duration"]) == ("completed", 61)
    assert stored["from_number"] == call.from_number
    assert stored["is_first_time_caller"] is True


def test_every_permutation_of_the_status_events_sent_concurrently(live: Live) -> None:
    rng = random.Random(7)
    calls = [
        call_to(final_status="completed", duration=10 + n, from_number=f"+1415555{n:04d}")
        for n in range(24)
    ]
    for order, call in zip(itertools.permutations(range(4)), calls, strict=True):
        webhooks = hooks(call)[:4]
        live.twilio.deliver([webhooks[i] for i in order], rng=rng, repeat=3, concurrency=4)
    live.workers.run_until_idle()
    stored = {c["sid"]: c for c in live.calls()}
    assert set(stored) == {call.sid for call in calls}
    for call in calls:
        assert (stored[call.sid]["status"], stored[call.sid]["duration"]) == (
            "completed",
            call.duration,
        )


def test_a_late_ringing_never_undoes_a_final_status(live: Live) -> None:
    call = call_to(final_status="busy")
    voice, ringing, busy = hooks(call)
    live.twilio.deliver([busy, voice, ringing, ringing])
    live.workers.run_until_idle()
    (stored,) = live.calls()
    assert (stored["status"], stored["duration"]) == ("busy", 0)


def test_first_time_caller_is_per_company_and_once(live: Live) -> None:
    caller = "+12125550123"
    first, second = (
        call_to(from_number=caller, final_status="completed", duration=5),
        call_to(from_number=caller, final_status="no-answer"),
    )
    live.twilio.deliver([hooks(first)[0], hooks(second)[0]])
    live.workers.run_until_idle()
    flags = {c["sid"]: c["is_first_time_caller"] for c in live.calls()}
    assert flags == {first.sid: True, second.sid: False}


@pytest.mark.parametrize(
    ("token", "tamper", "url"),
    [
        ("", False, PUBLIC_URL),  # unsigned
        (AUTH_TOKEN, True, PUBLIC_URL),  # a field changed after signing
        ("e" * 32, False, PUBLIC_URL),  # another account's token
        (AUTH_TOKEN, False, "http://internal:8000"),  # signed for the proxy-facing URL
    ],
)
def test_a_webhook_not_signed_by_us_is_refused_and_writes_nothing(
    live: Live, token: str, tamper: bool, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    live.twilio.public_url = url
    voice = hooks(call_to())[0]
    with caplog.at_level(logging.WARNING, logger="phonewagon_server.webhooks"):
        if token:
            answer = live.twilio.send(voice, tamper=tamper, token=token)
        else:
            answer = live.client.post("/twilio/voice", data=dict(voice.params))
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert AUTH_TOKEN not in refusals[0]
    assert "e" * 32 not in refusals[0]
    assert live.queued() == 0
    live.workers.run_until_idle()
    assert live.calls() == []


def test_the_old_token_still_signs_while_it_is_rotated(live: Live) -> None:
    assert live.twilio.send(hooks(call_to())[0], token=OLD_TOKEN).status_code == 200
    assert live.queued() == 1


BAD_FIELDS = [
    ("CallSid", None, "is missing"),
    ("CallSid", "", "is missing"),
    ("CallSid", "CA123", "must be CA and 32"),
    ("CallSid", "CA" + "x" * 32, "must be CA and 32"),
    ("CallSid", "CA" + "a" * 5000, "longer than"),
    ("CallSid", "CA" + "a" * 32 + "\n", "must be CA and 32"),
    ("To", "+18445550102\n", "E.164"),
    ("AccountSid", "AC" + "b" * 32, "not this deployment's"),
    ("AccountSid", None, "is missing"),
    ("To", None, "is missing"),
    ("To", "8445550102", "E.164"),
    ("To", "+1844555010299999", "E.164"),
    ("From", "", "is missing"),
    ("From", "<script>", "E.164"),
    ("Direction", "sideways", "must be one of"),
    ("CallStatus", "exploded", "must be one of"),
    ("CallerName", "x" * 500, "up to 128"),
    ("FromCity", "line\nbreak", "printable"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_a_bad_voice_field_is_a_clear_400_and_nothing_is_stored(
    live: Live, field: str, value: str | None, message: str
) -> None:
    voice = hooks(call_to())[0]
    params = without(voice.params, field) if value is None else replaced(voice.params, field, value)
    answer = live.twilio.send(Webhook(voice.path, params))
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["detail"]
    assert message in answer.json()["detail"]
    assert live.queued() == 0
    assert live.client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("SequenceNumber", "-1", "whole number"),
        ("SequenceNumber", "1e3", "whole number"),
        ("SequenceNumber", "99999999999", "whole number"),
        ("CallDuration", "forever", "whole number"),
        ("CallDuration", "9" * 40, "whole number"),
        ("CallStatus", "", "is missing"),
    ],
)
def test_a_bad_status_field_is_a_clear_400(
    live: Live, field: str, value: str, message: str
) -> None:
    status = hooks(call_to(final_status="completed", duration=3))[3]
    answer = live.twilio.send(Webhook(status.path, replaced(status.params, field, value)))
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    assert live.queued() == 0


def test_malformed_bodies_are_refused(live: Live) -> None:
    voice = hooks(call_to())[0]
    twice = Webhook(voice.path, (*voice.params, ("To", "+18445550103")))
    assert live.twilio.send(twice).status_code == 400
    huge = live.client.post(
        "/twilio/voice",
        content=b"a=" + b"x" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 413
    as_json = live.client.post("/twilio/voice", json=dict(voice.params))
    assert as_json.status_code == 400
    not_utf8 = live.client.post(
        "/twilio/voice",
        content=b"To=%ff%fe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400
    assert live.client.get("/twilio/voice").status_code == 405
    assert live.queued() == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("RecordingSid", None, "is missing"),
        ("RecordingSid", "RE12", "RE and 32"),
        ("RecordingStatus", "done", "must be one of"),
        ("RecordingUrl", "", "is missing"),
        ("RecordingUrl", "ftp://api.twilio.com/x", "is not under"),
        ("CallSid", "CA" + "Z" * 32, "must be CA and 32"),
        ("AccountSid", "", "is missing"),
    ],
)
def test_a_bad_recording_field_is_a_clear_400(
    live: Live, field: str, value: str | None, message: str
) -> None:
    recording = hooks(call_to(final_status="completed", duration=3))[-1]
    params = (
        without(recording.params, field)
        if value is None
        else replaced(recording.params, field, value)
    )
    answer = live.twilio.send(Webhook(recording.path, params))
    assert answer.status_code == 400
    assert field in answer.json()["detail"]
    assert message in answer.json()["detail"]
    assert live.queued() == 0


def test_a_webhook_is_accepted_while_an_import_holds_the_write_lock(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SQLite's one write lock, held as an import holds it: the webhook is still answered and
    queued, and its call is written once the lock is let go."""
    database = open_database(sqlite_url)
    upgrade(database)
    (live,) = itertools.islice(live_deployment(database, live_settings(tmp_path / "r")), 1)
    importer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    importer.execute("BEGIN IMMEDIATE")
    try:
        answer = live.twilio.send(hooks(call_to())[0])
        assert answer.status_code == 200
        assert ET.fromstring(answer.content).find("Dial") is not None
        assert live.queued() == 1
    finally:
        importer.execute("ROLLBACK")
        importer.close()
    live.workers.run_until_idle()
    assert len(live.calls()) == 1


def test_a_caller_of_an_imported_call_is_not_a_first_time_caller(live: Live) -> None:
    caller = "+13125550142"
    World(live.database).calls(live.tenant, [1_700_000_000_000], from_number=caller)
    live.twilio.send(hooks(call_to(from_number=caller))[0])
    live.workers.run_until_idle()
    live_call = next(c for c in live.calls() if c["start_time"] != 1_700_000_000_000)
    assert live_call["is_first_time_caller"] is False


def test_a_flood_of_forged_webhooks_is_throttled_and_twilio_still_gets_through(
    live: Live,
) -> None:
    voice = hooks(call_to())[0]
    answers = [live.twilio.send(voice, token="e" * 32).status_code for _ in range(25)]
    assert answers[:20] == [403] * 20
    assert set(answers[20:]) == {429}
    assert live.twilio.send(voice).status_code == 200
    assert live.queued() == 1


def test_a_caller_is_a_first_time_caller_of_each_company(live: Live) -> None:
    caller = "+13125550199"
    other = World(live.database).company(live.tenant, "Second Co")
    second_campaign = World(live.database).campaign(other, "Yelp")
    with live.database.transaction(write=True) as tx:
        number_rows.add_number(
            tx,
            TrackingNumber(
                "+18445550177", live.tenant.account_id, other.id, second_campaign.id, BUSINESS, ""
            ),
            now=0,
        )
    live.twilio.deliver(
        [
            hooks(call_to(from_number=caller))[0],
            hooks(call_to("+18445550177", from_number=caller, final_status="busy"))[0],
        ]
    )
    live.workers.run_until_idle()
    assert [c["is_first_time_caller"] for c in live.calls()] == [True, True]


def test_a_caller_of_a_call_imported_from_a_file_is_not_a_first_time_caller(
    live: Live, database_url: str, tmp_path: Path
) -> None:
    caller = "+13125550143"
    imported = {
        "sid": "CA" + "c" * 32,
        "campaign_id": live.tenant.campaign.id,
        "start_time": 1_700_000_000_000,
        "from_number": caller,
    }
    calls_file = tmp_path / "calls.jsonl"
    calls_file.write_text(json.dumps(imported) + "\n")
    account = str(live.tenant.account_id)
    assert (
        run(database_url, "calls", "import", str(calls_file), "--account", account).exit_code == 0
    )
    live.twilio.send(hooks(call_to(from_number=caller))[0])
    live.workers.run_until_idle()
    (live_call,) = [c for c in live.calls() if c["sid"] != imported["sid"]]
    assert live_call["is_first_time_caller"] is False
