"""The Twilio simulator: the webhooks of a call as Twilio sends them, and its recordings API."""

from __future__ import annotations

import io
import random
import re
import wave
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from phonewagon_server.twilio.signature import valid_signature
from phonewagon_server.twilio.simulator import (
    SimulatedCall,
    TwilioSender,
    Webhook,
    events,
    random_call,
    recordings_app,
    serve_in_thread,
    tone_wav,
)

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "f" * 32
API_BASE = "https://api.twilio.com"
PUBLIC_URL = "https://calls.example.com"
TRACKING_NUMBER = "+18445550102"
AT = datetime(2026, 12, 5, 5, 55, 19, tzinfo=UTC)

CALL_PARAMS = {
    "AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "Caller", "Direction", "From",
    "FromCity", "FromState", "FromZip", "FromCountry", "To", "ToCity", "ToState", "ToZip",
    "ToCountry",
}  # fmt: skip
STATUS_PARAMS = CALL_PARAMS | {"CallbackSource", "SequenceNumber", "Timestamp"}
RECORDING_PARAMS = {
    "AccountSid", "CallSid", "RecordingSid", "RecordingUrl", "RecordingStatus",
    "RecordingDuration", "RecordingChannels", "RecordingSource", "RecordingStartTime", "ErrorCode",
}  # fmt: skip


@dataclass(frozen=True)
class Received:
    """A webhook as our server would see it: path, raw form pairs and headers."""

    path: str
    params: list[tuple[str, str]]
    headers: httpx.Headers

    def signed_by_twilio(self) -> bool:
        url = PUBLIC_URL + self.path
        given = self.headers["X-Twilio-Signature"]
        ours = valid_signature([AUTH_TOKEN], url, self.params, given)
        theirs = RequestValidator(AUTH_TOKEN).validate(url, dict(self.params), given)
        assert ours == theirs
        return ours


def received(request: httpx.Request) -> Received:
    params = parse_qsl(request.content.decode(), keep_blank_values=True, strict_parsing=True)
    return Received(request.url.path, params, request.headers)


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


def completed_call(seed: int = 1) -> SimulatedCall:
    return random_call(
        seeded(seed), to_number=TRACKING_NUMBER, final_status="completed", duration=42
    )


def recording_capture() -> tuple[TwilioSender, list[Received]]:
    """A sender whose requests are kept, answered 204, never sent."""
    seen: list[Received] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(received(request))
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    return TwilioSender("http://backend:8000", auth_token=AUTH_TOKEN, client=client,
                        public_url=PUBLIC_URL), seen  # fmt: skip


def test_a_completed_call_is_one_voice_three_status_and_one_recording_webhook() -> None:
    call = completed_call()
    webhooks = events(call, account_sid=ACCOUNT_SID, api_base=API_BASE, timestamp=AT)
    assert [w.path for w in webhooks] == [
        "/twilio/voice", "/twilio/status", "/twilio/status", "/twilio/status", "/twilio/recording",
    ]  # fmt: skip
    voice, *statuses, recording = (dict(w.params) for w in webhooks)
    assert set(voice) - {"CallerName"} == CALL_PARAMS
    assert (voice["CallStatus"], voice["CallSid"], voice["To"]) == (
        "ringing",
        call.sid,
        "+18445550102",
    )
    assert [(s["SequenceNumber"], s["CallStatus"]) for s in statuses] == [
        ("0", "ringing"), ("1", "in-progress"), ("2", "completed"),
    ]  # fmt: skip
    for status in statuses:
        assert set(status) - {"CallerName", "CallDuration"} == STATUS_PARAMS
        assert status["CallbackSource"] == "call-progress-events"
    assert statuses[0]["Timestamp"] == "Sat, 05 Dec 2026 05:55:19 +0000"
    assert statuses[2]["Timestamp"] == "Sat, 05 Dec 2026 05:56:07 +0000"  # rang 6 s, talked 42
    assert "CallDuration" not in statuses[1]
    assert statuses[2]["CallDuration"] == "42"
    assert set(recording) == RECORDING_PARAMS
    assert recording["RecordingUrl"] == (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{call.recording_sid}"
    )
    assert (recording["RecordingDuration"], recording["RecordingChannels"]) == ("42", "2")


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_an_unanswered_call_ends_without_progress_or_recording(status: str) -> None:
    call = random_call(seeded(2), to_number=TRACKING_NUMBER, final_status=status)
    assert (call.duration, call.recording_sid) == (0, "")
    webhooks = events(call, account_sid=ACCOUNT_SID, api_base=API_BASE, timestamp=AT)
    assert [(w.path, dict(w.params)["CallStatus"]) for w in webhooks] == [
        ("/twilio/voice", "ringing"), ("/twilio/status", "ringing"), ("/twilio/status", status),
    ]  # fmt: skip
    assert "CallDuration" not in dict(webhooks[-1].params)


def test_a_naive_timestamp_is_read_as_utc() -> None:
    naive = events(completed_call(), account_sid=ACCOUNT_SID, api_base=API_BASE,
                   timestamp=AT.replace(tzinfo=None))  # fmt: skip
    assert dict(naive[1].params)["Timestamp"] == "Sat, 05 Dec 2026 05:55:19 +0000"


def test_caller_name_is_sent_only_when_known() -> None:
    named = SimulatedCall(
        sid="CA" + "0" * 32, from_number="+14155550100", to_number=TRACKING_NUMBER,
        direction="inbound", caller_name="O'BRIEN & SONS", from_city="", from_state="",
        final_status="busy", duration=0, recording_sid="",
    )  # fmt: skip
    anonymous = SimulatedCall(**{**named.__dict__, "caller_name": ""})
    [voice] = events(named, account_sid=ACCOUNT_SID, api_base=API_BASE)[:1]
    assert dict(voice.params)["CallerName"] == "O'BRIEN & SONS"
    [voice] = events(anonymous, account_sid=ACCOUNT_SID, api_base=API_BASE)[:1]
    assert "CallerName" not in dict(voice.params)


def test_random_calls_are_reproducible_and_consistent() -> None:
    calls = [random_call(seeded(n), to_number=TRACKING_NUMBER) for n in range(300)]
    assert calls[:5] == [random_call(seeded(n), to_number=TRACKING_NUMBER) for n in range(5)]
    assert {c.final_status for c in calls} == {
        "completed",
        "busy",
        "no-answer",
        "failed",
        "canceled",
    }
    for call in calls:
        assert re.fullmatch("CA[0-9a-f]{32}", call.sid)
        assert call.direction == "inbound"
        if call.final_status == "completed":
            assert call.duration > 0
            assert re.fullmatch("RE[0-9a-f]{32}", call.recording_sid)
        else:
            assert (call.duration, call.recording_sid) == (0, "")
    assert len({c.sid for c in calls}) == len(calls)


def test_a_given_caller_keeps_its_number() -> None:
    call = random_call(seeded(3), to_number=TRACKING_NUMBER, from_number="+13125550111")
    assert (call.from_number, call.from_city, call.from_state) == ("+13125550111", "CHICAGO", "IL")


@pytest.mark.parametrize(
    ("status", "duration", "recording_sid"),
    [("completed", 0, ""), ("busy", 10, ""), ("busy", 0, "RE" + "0" * 32), ("ringing", 0, "")],
)
def test_an_impossible_call_is_refused(status: str, duration: int, recording_sid: str) -> None:
    with pytest.raises(ValueError, match=r"call|final_status"):
        SimulatedCall(
            sid="CA" + "0" * 32, from_number="+14155550100", to_number=TRACKING_NUMBER,
            direction="inbound", caller_name="", from_city="", from_state="",
            final_status=status, duration=duration, recording_sid=recording_sid,
        )  # fmt: skip


def test_every_sent_webhook_is_signed_over_the_public_url() -> None:
    sender, seen = recording_capture()
    webhooks = events(completed_call(), account_sid=ACCOUNT_SID, api_base=API_BASE)
    for webhook in webhooks:
        assert sender.send(webhook).status_code == 204
    assert [(r.path, r.params) for r in seen] == [(w.path, list(w.params)) for w in webhooks]
    for request in seen:
        assert request.signed_by_twilio()
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert request.headers["User-Agent"] == "TwilioProxy/1.1"
    tokens = [r.headers["I-Twilio-Idempotency-Token"] for r in seen]
    assert len(set(tokens)) == len(webhooks)


def test_a_resent_webhook_carries_the_same_idempotency_token() -> None:
    sender, seen = recording_capture()
    webhook = events(completed_call(), account_sid=ACCOUNT_SID, api_base=API_BASE)[0]
    sender.send(webhook)
    sender.send(webhook)
    assert (
        seen[0].headers["I-Twilio-Idempotency-Token"]
        == (seen[1].headers["I-Twilio-Idempotency-Token"])
    )


def test_tampered_or_wrongly_signed_webhooks_do_not_verify() -> None:
    sender, seen = recording_capture()
    webhook = events(completed_call(), account_sid=ACCOUNT_SID, api_base=API_BASE)[-1]
    sender.send(webhook, tamper=True)
    sender.send(webhook, token="0" * 32)
    sender.send(webhook, token=AUTH_TOKEN)
    assert [r.signed_by_twilio() for r in seen] == [False, False, True]
    assert seen[0].params != list(webhook.params)


def test_deliver_without_rng_sends_each_webhook_exactly_repeat_times() -> None:
    sender, seen = recording_capture()
    webhooks = events(completed_call(), account_sid=ACCOUNT_SID, api_base=API_BASE)
    responses = sender.deliver(webhooks, repeat=2)
    assert len(responses) == len(seen) == 2 * len(webhooks)
    assert [r.params for r in seen[:2]] == [list(webhooks[0].params)] * 2


def test_deliver_keeps_the_order_unless_asked_to_shuffle() -> None:
    webhooks = events(completed_call(), account_sid=ACCOUNT_SID, api_base=API_BASE)
    sender, seen = recording_capture()
    sender.deliver(webhooks)
    assert [r.params for r in seen] == [list(w.params) for w in webhooks]
    sender, seen = recording_capture()
    sender.deliver(webhooks, rng=seeded(4), shuffle=True)
    arrived = [r.params for r in seen]
    assert arrived != [list(w.params) for w in webhooks]
    assert sorted(map(tuple, arrived)) == sorted(w.params for w in webhooks)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, list[Received]]]:
    """A real HTTP server on a free port that keeps every webhook it is sent."""
    seen: list[Received] = []

    async def keep(request: Request) -> Response:
        body = await request.body()
        params = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
        seen.append(Received(request.url.path, params, httpx.Headers(request.headers.raw)))
        return Response(b"<Response/>", media_type="text/xml")

    app = Starlette(routes=[Route("/twilio/{kind}", keep, methods=["POST"])])
    base_url, stop = serve_in_thread(app)
    yield base_url, seen
    stop()


def test_deliver_shuffles_and_repeats_and_every_delivery_arrives_signed(
    echo_server: tuple[str, list[Received]],
) -> None:
    base_url, seen = echo_server
    rng = seeded(7)
    calls = [
        random_call(rng, to_number=TRACKING_NUMBER, final_status="completed") for _ in range(4)
    ]
    webhooks = [w for c in calls for w in events(c, account_sid=ACCOUNT_SID, api_base=API_BASE)]
    with TwilioSender(base_url, auth_token=AUTH_TOKEN, public_url=PUBLIC_URL) as sender:
        responses = sender.deliver(webhooks, rng=rng, shuffle=True, repeat=3, concurrency=4)
    assert all(r.status_code == 200 for r in responses)
    assert len(seen) == len(responses)
    assert all(r.signed_by_twilio() for r in seen)
    counts = Counter(r.headers["I-Twilio-Idempotency-Token"] for r in seen)
    assert set(counts) == {w.idempotency_token() for w in webhooks}
    assert set(counts.values()) == {1, 2, 3}
    arrival = [r.headers["I-Twilio-Idempotency-Token"] for r in seen]
    in_order = [w.idempotency_token() for w in webhooks]
    assert list(dict.fromkeys(arrival)) != in_order


def test_signature_breaks_when_sent_through_a_proxy_without_the_public_url(
    echo_server: tuple[str, list[Received]],
) -> None:
    """Signed over where it was sent rather than the configured URL, it does not verify."""
    base_url, seen = echo_server
    webhook = events(completed_call(), account_sid=ACCOUNT_SID, api_base=API_BASE)[0]
    with TwilioSender(base_url, auth_token=AUTH_TOKEN) as sender:
        sender.send(webhook)
    assert not seen[0].signed_by_twilio()


RECORDING_SID = "RE" + "b2" * 16
RECORDING_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}"


@pytest.fixture
def twilio_api() -> Iterator[tuple[Starlette, TestClient]]:
    app = recordings_app(ACCOUNT_SID, ["old-token", AUTH_TOKEN])
    with TestClient(app, base_url="https://api.twilio.com") as client:
        yield app, client


@pytest.mark.parametrize(
    "auth", [None, (ACCOUNT_SID, "wrong"), ("AC" + "0" * 32, AUTH_TOKEN), (ACCOUNT_SID, "")]
)
def test_recordings_need_the_account_sid_and_a_token(
    twilio_api: tuple[Starlette, TestClient], auth: tuple[str, str] | None
) -> None:
    _, client = twilio_api
    response = client.get(RECORDING_PATH, auth=auth)
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_another_accounts_recording_is_not_found(twilio_api: tuple[Starlette, TestClient]) -> None:
    _, client = twilio_api
    path = RECORDING_PATH.replace(ACCOUNT_SID, "AC" + "0" * 32)
    response = client.get(path, auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert response.status_code == 404
    assert response.json()["code"] == 20404


@pytest.mark.parametrize("suffix", ["", ".wav", ".mp3"])
def test_a_recording_is_served_as_wav(
    twilio_api: tuple[Starlette, TestClient], suffix: str
) -> None:
    app, client = twilio_api
    response = client.get(RECORDING_PATH + suffix, auth=(ACCOUNT_SID, "old-token"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/x-wav"
    assert response.content[:4] == b"RIFF"
    assert response.content[8:12] == b"WAVE"
    assert response.content == tone_wav(seed=RECORDING_SID)
    assert app.state.requests == [RECORDING_PATH + suffix]


@pytest.mark.parametrize("name", ["RE123", RECORDING_SID + ".json", "CA" + "b2" * 16])
def test_a_malformed_recording_sid_is_not_found(
    twilio_api: tuple[Starlette, TestClient], name: str
) -> None:
    _, client = twilio_api
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{name}"
    assert client.get(path, auth=(ACCOUNT_SID, AUTH_TOKEN)).status_code == 404


def test_fail_next_answers_500_that_many_times(twilio_api: tuple[Starlette, TestClient]) -> None:
    app, client = twilio_api
    app.state.fail_next = 2
    statuses = [
        client.get(RECORDING_PATH, auth=(ACCOUNT_SID, AUTH_TOKEN)).status_code for _ in "abc"
    ]
    assert statuses == [500, 500, 200]
    assert app.state.requests == [RECORDING_PATH] * 3


def test_the_audio_function_decides_what_is_served() -> None:
    app = recordings_app(ACCOUNT_SID, [AUTH_TOKEN], audio=lambda sid: f"audio of {sid}".encode())
    with TestClient(app) as client:
        response = client.get(RECORDING_PATH, auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert response.content == f"audio of {RECORDING_SID}".encode()


def test_a_delayed_recording_times_the_client_out_then_recovers() -> None:
    app = recordings_app(ACCOUNT_SID, [AUTH_TOKEN])
    base_url, stop = serve_in_thread(app)
    try:
        app.state.delay_seconds = 1.0
        with httpx.Client(base_url=base_url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=0.2) as http:
            with pytest.raises(httpx.ReadTimeout):
                http.get(RECORDING_PATH)
            app.state.delay_seconds = 0.0
            assert http.get(RECORDING_PATH).status_code == 200
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(base_url + RECORDING_PATH)


def test_tones_are_small_valid_wav_and_differ_by_seed() -> None:
    audio = tone_wav(seed="RE1")
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 1, 8000)
        assert wav.getnframes() == 16000
    assert len(audio) < 16 * 1024 + 100
    assert tone_wav(seed="RE1") == audio
    assert tone_wav(seed="RE2") != audio


def test_webhook_params_keep_twilios_order() -> None:
    webhook = Webhook("/twilio/voice", (("B", "1"), ("A", "2")))
    sender, seen = recording_capture()
    sender.send(webhook)
    assert seen[0].params == [("B", "1"), ("A", "2")]
