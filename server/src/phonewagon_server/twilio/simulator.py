"""A Twilio stand-in: the webhooks it sends for a call, signed as it signs them, and the API it
serves recordings from.

The tests, the benchmarks and the demo share it, so all three drive the server with the same
traffic. It imports nothing of the server but the signature, so the server cannot pass its tests
by agreeing with itself. The recordings API serves WAV, whatever the suffix asked for: the standard
library cannot encode MP3.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import io
import math
import random
import socket
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import TracebackType
from typing import NamedTuple
from urllib.parse import urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from phonewagon_server.twilio.signature import signature

API_VERSION = "2010-04-01"
VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/status"
RECORDING_PATH = "/twilio/recording"
FINAL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")
STATUS_WEIGHTS = (70, 8, 12, 5, 5)  # of FINAL_STATUSES, in that order
RING_SECONDS = 6  # from the call reaching Twilio to its answer, or to busy, failed or canceled
NO_ANSWER_SECONDS = 30  # the <Dial> timeout our TwiML sets
WEBHOOK_TIMEOUT_SECONDS = 15.0  # how long Twilio waits for an answer


class Area(NamedTuple):
    code: str
    city: str
    state: str
    zip: str


# Callers dial from 555-0100..0199, the numbers set aside for fiction, so no real person's number
# turns up in a demo.
AREAS = (
    Area("415", "SAN FRANCISCO", "CA", "94105"),
    Area("212", "NEW YORK", "NY", "10001"),
    Area("312", "CHICAGO", "IL", "60601"),
    Area("512", "AUSTIN", "TX", "78701"),
    Area("206", "SEATTLE", "WA", "98101"),
    Area("617", "BOSTON", "MA", "02108"),
    Area("303", "DENVER", "CO", "80202"),
    Area("404", "ATLANTA", "GA", "30303"),
)
CALLER_NAMES = ("", "", "", "WIRELESS CALLER", "SMITH JOHN", "GARCIA MARIA", "O'BRIEN & SONS")


@dataclass(frozen=True)
class SimulatedCall:
    """One inbound call to a tracking number, as it turned out."""

    sid: str
    from_number: str
    to_number: str
    direction: str
    caller_name: str
    from_city: str
    from_state: str
    final_status: str
    duration: int
    recording_sid: str
    from_zip: str = ""

    def __post_init__(self) -> None:
        if self.final_status not in FINAL_STATUSES:
            raise ValueError(f"final_status must be one of {FINAL_STATUSES}")
        answered = self.final_status == "completed"
        if answered != (self.duration > 0):
            raise ValueError(f"a {self.final_status} call cannot last {self.duration} s")
        if self.recording_sid and not answered:
            raise ValueError(f"a {self.final_status} call has no recording")


@dataclass(frozen=True)
class Webhook:
    """One request Twilio makes to us: where to, and its form parameters in Twilio's order."""

    path: str
    params: tuple[tuple[str, str], ...]

    def idempotency_token(self) -> str:
        """The `I-Twilio-Idempotency-Token`: the same each time this request is retried."""
        digest = hashlib.sha256(f"{self.path}?{_form(self.params)}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16]))


def random_call(
    rng: random.Random,
    *,
    to_number: str,
    from_number: str | None = None,
    final_status: str | None = None,
    duration: int | None = None,
) -> SimulatedCall:
    """A plausible call to `to_number`; whatever is not given is drawn from `rng`."""
    area = rng.choice(AREAS)
    if from_number is None:
        from_number = f"+1{area.code}55501{rng.randrange(100):02d}"
    else:
        area = _area_of(from_number)
    status = final_status or (
        "completed" if duration else rng.choices(FINAL_STATUSES, STATUS_WEIGHTS)[0]
    )
    answered = status == "completed"
    if duration is None:
        duration = min(3600, 5 + int(rng.expovariate(1 / 120))) if answered else 0
    return SimulatedCall(
        sid=_sid("CA", rng),
        from_number=from_number,
        to_number=to_number,
        direction="inbound",
        caller_name=rng.choice(CALLER_NAMES),
        from_city=area.city,
        from_state=area.state,
        final_status=status,
        duration=duration,
        recording_sid=_sid("RE", rng) if answered else "",
        from_zip=area.zip,
    )


def events(
    call: SimulatedCall, *, account_sid: str, api_base: str, timestamp: datetime | None = None
) -> list[Webhook]:
    """The webhooks Twilio sends for `call`, in order, the first at `timestamp` (default now;
    a naive one is read as UTC).

    The voice webhook asks what to do; status callbacks follow (ringing, in-progress once
    answered, then the final status); a completed call's recording is announced last.
    """
    start = timestamp or datetime.now(UTC)
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    answered = call.final_status == "completed"
    settled = start + timedelta(
        seconds=NO_ANSWER_SECONDS if call.final_status == "no-answer" else RING_SECONDS
    )
    progress = [("ringing", start)]
    if answered:
        progress.append(("in-progress", settled))
    progress.append((call.final_status, settled + timedelta(seconds=call.duration)))

    webhooks = [Webhook(VOICE_PATH, _call_params(call, account_sid, "ringing"))]
    for sequence, (status, at) in enumerate(progress):
        params = (
            *_call_params(call, account_sid, status),
            ("CallbackSource", "call-progress-events"),
            ("SequenceNumber", str(sequence)),
            ("Timestamp", _rfc2822(at)),
        )
        if status == "completed":
            params += (("CallDuration", str(call.duration)),)
        webhooks.append(Webhook(STATUS_PATH, params))
    if answered and call.recording_sid:
        recording_url = (
            f"{api_base.rstrip('/')}/{API_VERSION}/Accounts/{account_sid}"
            f"/Recordings/{call.recording_sid}"
        )
        recording = (
            ("AccountSid", account_sid),
            ("CallSid", call.sid),
            ("RecordingSid", call.recording_sid),
            ("RecordingUrl", recording_url),
            ("RecordingStatus", "completed"),
            ("RecordingDuration", str(call.duration)),
            ("RecordingChannels", "2"),
            ("RecordingSource", "DialVerb"),
            ("RecordingStartTime", _rfc2822(settled)),
            ("ErrorCode", "0"),
        )
        webhooks.append(Webhook(RECORDING_PATH, recording))
    return webhooks


class TwilioSender:
    """Posts webhooks to our server as Twilio does: form-encoded and signed.

    `public_url` is the URL Twilio is configured with, which the signature covers; `base_url` is
    where the requests actually go. They differ when the server sits behind a proxy.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth_token: str,
        client: httpx.Client | None = None,
        public_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.public_url = (public_url or base_url).rstrip("/")
        self.auth_token = auth_token
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS)

    def send(
        self, webhook: Webhook, *, tamper: bool = False, token: str | None = None
    ) -> httpx.Response:
        """Post `webhook`, signed with `token` (default the auth token).

        `tamper` changes the first parameter's value after signing, as a forger would.
        """
        signed = signature(
            self.auth_token if token is None else token,
            self.public_url + webhook.path,
            webhook.params,
        )
        params = webhook.params
        if tamper:
            (name, value), *rest = params or (("Tampered", ""),)
            params = ((name, value + "0"), *rest)
        return self.client.post(
            self.base_url + webhook.path,
            content=_form(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1",
                "X-Twilio-Signature": signed,
                "I-Twilio-Idempotency-Token": webhook.idempotency_token(),
            },
        )

    def deliver(
        self,
        webhooks: Iterable[Webhook],
        *,
        rng: random.Random | None = None,
        shuffle: bool = False,
        repeat: int = 1,
        concurrency: int = 1,
    ) -> list[httpx.Response]:
        """Send every webhook `repeat` times (1..`repeat` times, drawn from `rng`, when given),
        shuffled if asked, from `concurrency` threads: Twilio retries, and does not wait its turn.
        Returns the responses in the order sent."""
        if repeat < 1 or concurrency < 1:
            raise ValueError("repeat and concurrency must be at least 1")
        queue = [
            webhook
            for webhook in webhooks
            for _ in range(rng.randint(1, repeat) if rng else repeat)
        ]
        if shuffle:
            (rng or random.Random()).shuffle(queue)  # noqa: S311 - test traffic, not a secret
        if concurrency == 1:
            return [self.send(webhook) for webhook in queue]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(self.send, queue))

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> TwilioSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def recordings_app(
    account_sid: str, auth_tokens: Sequence[str], audio: Callable[[str], bytes] | None = None
) -> Starlette:
    """Twilio's recording media endpoint, `GET /2010-04-01/Accounts/{AccountSid}/Recordings/
    {RecordingSid}[.wav|.mp3]`, behind HTTP Basic (account SID and an auth token).

    `app.state` lets a test watch and break it: `requests` lists the paths asked for,
    `fail_next` answers that many requests 500, `delay_seconds` holds each answer back.
    """
    make_audio = audio or (lambda recording_sid: tone_wav(seed=recording_sid))
    tokens = [token for token in auth_tokens if token]

    async def fetch_recording(request: Request) -> Response:
        state = request.app.state
        state.requests.append(request.url.path)
        if state.delay_seconds:
            await asyncio.sleep(state.delay_seconds)
        if state.fail_next > 0:
            state.fail_next -= 1
            return _twilio_error(500, 20500, "An internal server error has occurred")
        if not _basic_auth_ok(request.headers.get("Authorization", ""), account_sid, tokens):
            return _twilio_error(
                401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            )
        recording_sid, dot, suffix = request.path_params["recording"].partition(".")
        if (
            request.path_params["account"] != account_sid
            or not _is_sid("RE", recording_sid)
            or (dot and suffix not in ("wav", "mp3"))
        ):
            message = f"The requested resource {request.url.path} was not found"
            return _twilio_error(404, 20404, message)
        return Response(make_audio(recording_sid), media_type="audio/x-wav")

    path = f"/{API_VERSION}/Accounts/{{account}}/Recordings/{{recording}}"
    app = Starlette(routes=[Route(path, fetch_recording, methods=["GET"])])
    app.state.requests = []
    app.state.fail_next = 0
    app.state.delay_seconds = 0.0
    return app


def tone_wav(
    seconds: float = 2.0, *, frequency: float = 440.0, rate: int = 8000, seed: str = ""
) -> bytes:
    """`seconds` of a sine tone as 8-bit mono PCM WAV; `seed` shifts the pitch, so each recording
    sounds (and hashes) different."""
    if seed:
        frequency += hashlib.sha256(seed.encode()).digest()[0] % 32 * 10
    step = 2 * math.pi * frequency / rate
    # 8-bit WAV samples are unsigned, silence at 128.
    samples = bytes(128 + round(100 * math.sin(step * n)) for n in range(round(seconds * rate)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(samples)
    return buffer.getvalue()


def serve_in_thread(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Serve `app` with uvicorn from a daemon thread, on a free port unless `port` is given.

    Returns the base URL and a function that stops the server.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    # No log config: uvicorn would otherwise reconfigure the process's logging.
    config = uvicorn.Config(
        app, log_config=None, access_log=False, ws="none", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            listener.close()
            raise RuntimeError(f"the server on {host} did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()

    bound_port = listener.getsockname()[1]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    return f"http://{shown_host}:{bound_port}", stop


def _call_params(call: SimulatedCall, account_sid: str, status: str) -> tuple[tuple[str, str], ...]:
    """The parameters Twilio sends about a call with every voice webhook and status callback."""
    country = "US" if call.from_number.startswith("+1") else ""
    caller_name = (("CallerName", call.caller_name),) if call.caller_name else ()
    return (
        ("AccountSid", account_sid),
        ("ApiVersion", API_VERSION),
        ("CallSid", call.sid),
        ("CallStatus", status),
        ("Called", call.to_number),
        ("Caller", call.from_number),
        *caller_name,
        ("Direction", call.direction),
        ("From", call.from_number),
        ("FromCity", call.from_city),
        ("FromState", call.from_state),
        ("FromZip", call.from_zip),
        ("FromCountry", country),
        ("To", call.to_number),
        ("ToCity", ""),
        ("ToState", ""),
        ("ToZip", ""),
        ("ToCountry", "US" if call.to_number.startswith("+1") else ""),
    )


def _area_of(number: str) -> Area:
    for area in AREAS:
        if number.startswith(f"+1{area.code}"):
            return area
    return Area("", "", "", "")


def _sid(prefix: str, rng: random.Random) -> str:
    return f"{prefix}{rng.getrandbits(128):032x}"


def _is_sid(prefix: str, text: str) -> bool:
    hex_part = text.removeprefix(prefix)
    return (
        text.startswith(prefix)
        and len(hex_part) == 32
        and all(c in "0123456789abcdefABCDEF" for c in hex_part)
    )


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def _form(params: Sequence[tuple[str, str]]) -> str:
    return urlencode(params)


def _basic_auth_ok(header: str, username: str, passwords: Sequence[str]) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    password_ok = False
    for candidate in passwords:
        password_ok |= hmac.compare_digest(candidate.encode(), password.encode())
    return password_ok and hmac.compare_digest(user.encode(), username.encode())


def _twilio_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error shaped as Twilio's API words it."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)
