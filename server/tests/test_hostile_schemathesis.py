"""schemathesis against the app's own `/openapi.json`: no server errors, every answer as documented.

The schema is read from `/openapi.json` of the in-process app, then every operation is fuzzed with
a fixed seed (valid and invalid parameters), with and without credentials, on SQLite and on
PostgreSQL, against an account that has companies, campaigns, calls, a tracking number and a
recording. The rate limits are raised so that every generated request reaches the handlers.

The fuzzer cannot sign Twilio's webhooks, so unsigned they are all refused 403; a third run puts a
stand-in for Twilio in front of the app that signs each one it is asked to, as Twilio would, so
that the webhooks' own handlers are fuzzed too.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phonewagon_server.api import create_app, openapi
from phonewagon_server.config import Rate, Settings
from phonewagon_server.credentials import hash_secret
from phonewagon_server.db import Database, open_database
from phonewagon_server.db.accounts import insert_credential
from phonewagon_server.db.numbers import TrackingNumber, add_number
from phonewagon_server.twilio.events import MAX_NAME_CHARS, url_is_plain
from phonewagon_server.twilio.recordings import recordings_prefix
from phonewagon_server.twilio.signature import signature
from phonewagon_server.twilio.simulator import tone_wav
from server_testkit import NOW_MS, PUBLIC_URL, FakeClock, World

SEED = 20_261_127
EXAMPLES = 100
ROOMY = Rate.parse("1000000/minute")


# Fixed credentials, so that schemathesis knows them when it builds the tests: it then also sends
# requests without them (and expects 401) and never pairs them with generated ones.
CLIENT_ID = "pwid_" + "f" * 24
SECRET = "pwsk_schemathesis-" + "s" * 32
# The deployment's Twilio account is the one of the documented examples, so that they get past the
# `AccountSid` check; the number and the recording are those of the examples too.
TWILIO_ACCOUNT = openapi.TWILIO_ACCOUNT
TWILIO_TOKEN = "fuzzedtwiliotoken" + "0" * 15
ASK_TO_SIGN = b"sign-me"
RECORDING_FILE = f"{openapi.CALL_EXAMPLE['sid']}/{openapi.RECORDING_SID}.wav"


def served_schema(
    *, basic_auth: tuple[str, str] | None, headers: dict[str, str] | None = None
) -> BaseSchema:
    """What `/openapi.json` serves; the route never touches the database, which stays unopened."""
    unused = Path(tempfile.gettempdir()) / "phonewagon-schemathesis-never-opened.db"
    app = create_app(Settings(public_url=PUBLIC_URL), open_database(f"sqlite:///{unused}"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.seed = SEED
    schema.config.generation.update(
        max_examples=EXAMPLES, modes=["positive", "negative"], deterministic=True
    )
    # A body over its route's bound is refused 413 before it is read, a URL over its bound 414
    # before routing: rejections too. (Hypothesis draws string lengths from the constants of
    # every module loaded, so new code can make a negative example's URL that long.)
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413", "414"]
    if basic_auth is not None:
        schema.config.update(basic_auth=basic_auth)
    if headers is not None:
        schema.config.update(headers=headers)
    return schema


AUTHENTICATED = served_schema(basic_auth=(CLIENT_ID, SECRET))
ANONYMOUS = served_schema(basic_auth=None)
SIGNED = served_schema(
    basic_auth=None, headers={"X-Twilio-Signature": ASK_TO_SIGN.decode()}
).include(path_regex="^/twilio/")
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
def fuzzed_app(
    database: Database, settings: Settings, clock: FakeClock, recordings: Path
) -> Starlette:
    roomy = replace(
        settings,
        rate_limit=ROOMY,
        auth_failure_limit=ROOMY,
        twilio_account_sid=TWILIO_ACCOUNT,
        twilio_auth_tokens=(TWILIO_TOKEN,),
        recordings_dir=recordings,
    )
    return create_app(roomy, database, wall_clock=clock, monotonic=clock, background=False)


@pytest.fixture
def populated(world: World, recordings: Path) -> None:
    """An account with two companies, four campaigns and calls in each, holding `CLIENT_ID`;
    the examples' tracking number in its first campaign, and the example call's recording."""
    tenant, _, campaigns = world.spread_tenant("Fuzzed Agency")
    for n, campaign in enumerate(campaigns):
        world.calls(tenant, [NOW_MS - 1000 * k for k in range(5 + n)], campaign)
    audio = tone_wav(seconds=0.5)
    (recordings / RECORDING_FILE).parent.mkdir(parents=True)
    (recordings / RECORDING_FILE).write_bytes(audio)
    number = TrackingNumber(
        number=openapi.VOICE_EXAMPLE["To"],
        account_id=tenant.account_id,
        company_id=tenant.company.id,
        campaign_id=tenant.campaign.id,
        forward_to=openapi.FORWARD_TO,
        source="",
    )
    with world.database.transaction(write=True) as tx:
        insert_credential(
            tx,
            account_id=tenant.account_id,
            client_id=CLIENT_ID,
            secret_hash=hash_secret(SECRET),
            now=NOW_MS,
        )
        add_number(tx, number, now=NOW_MS)
        tx.execute(
            "INSERT INTO call_recordings (account_id, call_sid, recording_sid, stored_as,"
            " content_type, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                tenant.account_id,
                openapi.CALL_EXAMPLE["sid"],
                openapi.RECORDING_SID,
                RECORDING_FILE,
                "audio/x-wav",
                len(audio),
                NOW_MS,
            ),
        )


@AUTHENTICATED.parametrize()
@FUZZ
@pytest.mark.usefixtures("populated")
def test_authenticated_requests_get_documented_answers_and_never_a_server_error(
    case: Case, fuzzed_app: Starlette
) -> None:
    """With valid credentials every generated request is answered as the schema says."""
    response = case.call(app=fuzzed_app)
    if case.method == "GET" and pairs_the_schema_cannot_state(case):
        # Rules OpenAPI cannot state: the schema allows each parameter alone, not these pairs.
        # 401: a case sent without the credentials; 414: a URL refused before it is read.
        assert response.status_code in (400, 401, 414)
        excluded = [positive_data_acceptance]
    elif "range" in {name.lower() for name in case.headers or {}}:
        # Nor can it state a range within the file's size, start before end: 416 or 400 else.
        assert response.status_code in (200, 206, 400, 401, 404, 405, 416)
        excluded = [positive_data_acceptance]
    else:
        excluded = []
    case.validate_response(response, excluded_checks=excluded, transport_kwargs={"app": fuzzed_app})


def pairs_the_schema_cannot_state(case: Case) -> bool:
    """A start after the end, or a cursor of one kind of page given to the other kind."""
    query = case.query or {}
    feed = "updated_since" in query
    if ("after_id" in query and not feed) or ("before_id" in query and feed):
        return True
    default_end = None if feed else NOW_MS
    start, end = as_integer(query.get("start_time", 0)), query.get("end_time", default_end)
    return (
        start is not None
        and end is not None
        and (ended := as_integer(end)) is not None
        and (start > ended)
    )


def as_integer(value: object) -> int | None:
    """A query value as the server reads it, if it is a plain decimal integer."""
    text = str(value)
    return int(text) if text.isascii() and text.isdigit() else None


@ANONYMOUS.parametrize()
@FUZZ
def test_anonymous_requests_get_documented_answers_and_never_a_server_error(
    case: Case, fuzzed_app: Starlette
) -> None:
    """Without credentials every generated request is answered as the schema says."""
    case.call_and_validate(app=fuzzed_app)


class SignedByTwilio:
    """Twilio in front of the app: a request that asks (`X-Twilio-Signature: sign-me`) is signed
    with the deployment's token, over the URL and the form it carries, as Twilio signs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = list(scope.get("headers", ()))
        if scope["type"] != "http" or (b"x-twilio-signature", ASK_TO_SIGN) not in headers:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while not messages or messages[-1].get("more_body"):
            messages.append(await receive())
        body = b"".join(message.get("body", b"") for message in messages)
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        query = scope["query_string"].decode("latin-1")
        url = f"{PUBLIC_URL}{scope['path']}{'?' + query if query else ''}"
        signed = (b"x-twilio-signature", signature(TWILIO_TOKEN, url, form).encode())
        kept = [header for header in headers if header[0] != b"x-twilio-signature"]
        replay = iter(messages)

        async def receive_again() -> Message:
            return next(replay, {"type": "http.disconnect"})

        await self.app({**scope, "headers": [*kept, signed]}, receive_again, send)


@SIGNED.parametrize()
@FUZZ
@pytest.mark.usefixtures("populated")
def test_signed_webhooks_get_documented_answers_and_never_a_server_error(
    case: Case, fuzzed_app: Starlette
) -> None:
    """Signed as Twilio signs, every generated webhook reaches its handler and is answered as the
    schema says; unsigned or signed otherwise, it is refused."""
    twilio = SignedByTwilio(fuzzed_app)
    response = case.call(app=twilio)
    excluded = [positive_data_acceptance] if fields_the_schema_cannot_state(case) else []
    case.validate_response(response, excluded_checks=excluded, transport_kwargs={"app": twilio})


def fields_the_schema_cannot_state(case: Case) -> bool:
    """Rules of this deployment or of Python that the schema leaves out: `AccountSid` is this
    deployment's, `RecordingUrl` lies under its API base, names are printable."""
    fields = case.body if isinstance(case.body, dict) else {}
    prefix = recordings_prefix("https://api.twilio.com", TWILIO_ACCOUNT)
    url = str(fields.get("RecordingUrl", prefix))
    names = [str(fields.get(name, "")).strip() for name in ("CallerName", "FromCity", "FromState")]
    return (
        fields.get("AccountSid") != TWILIO_ACCOUNT
        or not (url.startswith(prefix) and url_is_plain(url))
        or not all(name.isprintable() and len(name) <= MAX_NAME_CHARS for name in names)
    )
