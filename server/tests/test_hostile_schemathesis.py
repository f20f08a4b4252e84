"""schemathesis against the app's own `/openapi.json`: no server errors, every answer as documented.

The schema is read from `/openapi.json` of the in-process app, then every operation is fuzzed with
a fixed seed (valid and invalid parameters), with and without credentials, on SQLite and on
PostgreSQL, against an account that has companies, campaigns and calls. The rate limits are raised
so that every generated request reaches the handlers.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.applications import Starlette

from phonewagon_server.api import create_app
from phonewagon_server.config import Rate, Settings
from phonewagon_server.credentials import hash_secret
from phonewagon_server.db import Database, open_database
from phonewagon_server.db.accounts import insert_credential
from server_testkit import NOW_MS, PUBLIC_URL, FakeClock, World

SEED = 20_261_127
EXAMPLES = 100
ROOMY = Rate.parse("1000000/minute")


# Fixed credentials, so that schemathesis knows them when it builds the tests: it then also sends
# requests without them (and expects 401) and never pairs them with generated ones.
CLIENT_ID = "pwid_" + "f" * 24
SECRET = "pwsk_schemathesis-" + "s" * 32


def served_schema(*, basic_auth: tuple[str, str] | None) -> BaseSchema:
    """What `/openapi.json` serves; the route never touches the database, which stays unopened."""
    unused = Path(tempfile.gettempdir()) / "phonewagon-schemathesis-never-opened.db"
    app = create_app(Settings(public_url=PUBLIC_URL), open_database(f"sqlite:///{unused}"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.seed = SEED
    schema.config.generation.update(
        max_examples=EXAMPLES, modes=["positive", "negative"], deterministic=True
    )
    if basic_auth is not None:
        schema.config.update(basic_auth=basic_auth)
    return schema


AUTHENTICATED = served_schema(basic_auth=(CLIENT_ID, SECRET))
ANONYMOUS = served_schema(basic_auth=None)
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def fuzzed_app(database: Database, settings: Settings, clock: FakeClock) -> Starlette:
    roomy = replace(settings, rate_limit=ROOMY, auth_failure_limit=ROOMY)
    return create_app(roomy, database, wall_clock=clock, monotonic=clock)


@pytest.fixture
def populated(world: World) -> None:
    """An account with two companies, four campaigns and calls in each, holding `CLIENT_ID`."""
    tenant, _, campaigns = world.spread_tenant("Fuzzed Agency")
    for n, campaign in enumerate(campaigns):
        world.calls(tenant, [NOW_MS - 1000 * k for k in range(5 + n)], campaign)
    with world.database.transaction(write=True) as tx:
        insert_credential(
            tx,
            account_id=tenant.account_id,
            client_id=CLIENT_ID,
            secret_hash=hash_secret(SECRET),
            now=NOW_MS,
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
        assert response.status_code in (400, 401)  # 401: a case sent without the credentials
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
