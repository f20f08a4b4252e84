"""Pages served from stored documents are byte for byte what a straightforward rendering gives."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database, open_database
from phonewagon_server.db.engine import Connection
from phonewagon_server.db.migrations import LATEST_VERSION, current_version, upgrade
from phonewagon_server.documents import render_fields
from phonewagon_server.models import CALL_FIELDS, CALL_STRING_FIELDS, Campaign
from server_testkit import NOW_MS, PUBLIC_URL, FakeClock, Tenant, World, with_rate

UNUSUAL = (
    "\"quoted\" and 'single'",
    "back\\slash \\n \\u0000 \\",
    "tab\there, new\nline, cr\r, bell\x07, backspace\x08, form feed\x0c",
    "".join(chr(c) for c in range(1, 32)) + "\x7f",
    "Zürich, Łódź, São Paulo, İstanbul",
    "日本語のキャンペーン",
    "emoji 📞😀👩‍👩‍👧 and flags 🇳🇱",
    "line separators \u2028 and \u2029, bom \ufeff, nbsp \xa0",
    "</script><script>alert(1)</script>",
    "",
    " ",
)

# Any text a JSON file can carry: no NUL (imports refuse it), no lone surrogates (not UTF-8).
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def reference_call(
    fields: dict[str, Any], campaign: Campaign, call_id: int, updated_at: int
) -> dict[str, Any]:
    """The call as a dict with every field, the way the API rendered it before documents."""
    derived = {
        "id": call_id,
        "updated_at": updated_at,
        "account_id": campaign.account_id,
        "company_id": campaign.company_id,
        "campaign_name": campaign.name,
    }
    return {name: derived[name] if name in derived else fields[name] for name in CALL_FIELDS}


def reference_page(calls: list[dict[str, Any]], next_url: str | None) -> bytes:
    body: dict[str, Any] = {"calls": calls}
    if next_url is not None:
        body["next"] = next_url
    return orjson.dumps(body)


@settings(max_examples=300, deadline=None)
@given(
    strings=st.fixed_dictionaries({name: texts for name in CALL_STRING_FIELDS}),
    name=texts,
    call_id=st.integers(min_value=1, max_value=2**63 - 1),
    updated_at=st.integers(min_value=0, max_value=253_402_300_799_999),
    duration=st.integers(min_value=0, max_value=7 * 24 * 3600),
    start_time=st.integers(min_value=0, max_value=253_402_300_799_999),
    first_time=st.booleans(),
)
def test_a_document_spliced_with_its_id_is_the_reference_rendering(
    strings: dict[str, str],
    name: str,
    call_id: int,
    updated_at: int,
    duration: int,
    start_time: int,
    first_time: bool,
) -> None:
    """head + id + middle + updated_at + tail is orjson's rendering of the call, for any strings."""
    campaign = Campaign(id="s1", company_id=7, account_id=3, name=name)
    fields: dict[str, Any] = dict(strings)
    fields.update(
        campaign_id="s1",
        duration=duration,
        start_time=start_time,
        is_first_time_caller=first_time,
    )
    head, middle, tail = render_fields(fields, campaign)
    assert f"{head}{call_id}{middle}{updated_at}{tail}".encode() == orjson.dumps(
        reference_call(fields, campaign, call_id, updated_at)
    )


def _unusual_calls(count: int, campaign_id: str) -> list[dict[str, Any]]:
    rng = random.Random(2212)
    calls = []
    for n in range(count):
        fields: dict[str, Any] = {name: rng.choice(UNUSUAL) for name in CALL_STRING_FIELDS}
        fields.update(
            sid=f"CA{n:032x}",
            campaign_id=campaign_id,
            start_time=NOW_MS - (n // 3) * 1000,  # threes share a millisecond
            duration=rng.randrange(3600),
            is_first_time_caller=rng.random() < 0.5,
        )
        calls.append(fields)
    return calls


def _ids_by_sid(database: Database) -> dict[str, tuple[int, int]]:
    """Each call's id and `updated_at`, by sid: what the database gave them."""
    with database.transaction() as tx:
        rows = tx.fetchall("SELECT sid, id, updated_at FROM calls")
    return {sid: (call_id, updated_at) for sid, call_id, updated_at in rows}


def _expected_pages(
    calls: list[dict[str, Any]], campaign: Campaign, ids: dict[str, tuple[int, int]], page_size: int
) -> list[bytes]:
    rendered = [reference_call(c, campaign, *ids[c["sid"]]) for c in calls]
    rendered.sort(key=lambda c: (c["start_time"], c["id"]), reverse=True)
    pages = []
    for start in range(0, len(rendered), page_size):
        page = rendered[start : start + page_size]
        last = page[-1]
        more = start + page_size < len(rendered)
        next_url = (
            f"{PUBLIC_URL}/calls?page_size={page_size}&start_time=0"
            f"&end_time={last['start_time']}&before_id={last['id']}"
        )
        pages.append(reference_page(page, next_url if more else None))
    return pages


def _served_pages(api: TestClient, tenant: Tenant, page_size: int) -> list[bytes]:
    pages = []
    url: str | None = f"/calls?page_size={page_size}&start_time=0&end_time={NOW_MS}"
    while url is not None:
        response = api.get(url.removeprefix(PUBLIC_URL), auth=tenant.auth)
        assert response.status_code == 200, response.text
        pages.append(response.content)
        url = response.json().get("next")
    return pages


def test_pages_of_unusual_strings_are_byte_for_byte_the_reference(
    roomy_api: TestClient, world: World, database: Database
) -> None:
    """Quotes, backslashes, control characters, non-ASCII and emoji, in fields and names."""
    tenant = world.tenant()
    campaign = world.campaign(tenant.company, 'Ads "Zürich" \\ 📞\x01', campaign_id="s\u00e9\x02")
    calls = _unusual_calls(40, campaign.id)
    for fields in calls:
        world.calls(tenant, [fields["start_time"]], campaign=campaign, **fields)
    expected = _expected_pages(calls, campaign, _ids_by_sid(database), page_size=7)
    assert _served_pages(roomy_api, tenant, page_size=7) == expected


def test_an_empty_page_is_the_reference(api: TestClient, tenant: Tenant) -> None:
    """No calls: `{"calls":[]}` and no `next`."""
    response = api.get("/calls", auth=tenant.auth)
    assert response.content == reference_page([], None)


def test_calls_stored_by_version_1_are_served_as_before_after_the_upgrade(
    raw_database: Database, database_url: str
) -> None:
    """The upgrade renders every call stored in columns into the same bytes, and drops them."""
    world = World(raw_database)
    tenant = world.tenant()
    campaign = world.campaign(tenant.company, 'Ünusual "name" 😀', campaign_id="s9")
    calls = _unusual_calls(25, campaign.id)
    columns = ("account_id", "company_id", "duration", "is_first_time_caller", *CALL_STRING_FIELDS)
    columns += ("campaign_id", "start_time")
    with raw_database.transaction(write=True) as tx:
        for fields in calls:
            fields |= {"account_id": tenant.account_id, "company_id": campaign.company_id}
            marks = ", ".join("?" * len(columns))
            tx.execute(
                f"INSERT INTO calls ({', '.join(columns)}) VALUES ({marks})",
                [fields[c] for c in columns],
            )
    upgrade(raw_database)
    assert current_version(raw_database) == LATEST_VERSION
    stored = _ids_by_sid(raw_database)
    # A call's last change before version 3 is not known: it is stamped with its start.
    assert {sid: updated_at for sid, (_, updated_at) in stored.items()} == {
        call["sid"]: call["start_time"] for call in calls
    }
    expected = _expected_pages(calls, campaign, stored, page_size=10)
    settings = with_rate(Settings(database_url=database_url, public_url=PUBLIC_URL), "1000/minute")
    with TestClient(create_app(settings, raw_database, wall_clock=FakeClock())) as api:
        assert _served_pages(api, tenant, page_size=10) == expected
    with raw_database.transaction() as tx:
        left = _column_names(tx)
    assert left == {
        "id",
        "account_id",
        "company_id",
        "campaign_id",
        "start_time",
        "sid",
        "head",
        "middle",
        "tail",
        "updated_at",
    }


def _column_names(tx: Connection) -> set[str]:
    if tx.dialect == "sqlite":
        return {str(row[1]) for row in tx.fetchall("PRAGMA table_info(calls)")}
    sql = (
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'calls'"
    )
    return {str(row[0]) for row in tx.fetchall(sql)}


# Version 1 as the first release made it, written here independently of the migrations: the
# upgrade must start from what such a database really holds.
VERSION_1 = """
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT);
INSERT INTO schema_migrations VALUES (1, 'accounts, credentials, companies, campaigns, calls');
CREATE TABLE accounts (id {identity}, name TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE credentials (client_id TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id), secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL, revoked_at BIGINT);
CREATE INDEX credentials_by_account ON credentials (account_id);
CREATE TABLE companies (id {identity}, account_id BIGINT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX companies_by_account ON companies (account_id, id);
CREATE TABLE campaigns (id TEXT PRIMARY KEY, account_id BIGINT NOT NULL REFERENCES accounts (id),
    company_id BIGINT NOT NULL REFERENCES companies (id), name TEXT NOT NULL,
    created_at BIGINT NOT NULL);
CREATE INDEX campaigns_by_account ON campaigns (account_id, company_id, id);
CREATE TABLE calls (id {identity}, account_id BIGINT NOT NULL REFERENCES accounts (id),
    company_id BIGINT NOT NULL REFERENCES companies (id),
    campaign_id TEXT NOT NULL REFERENCES campaigns (id), start_time BIGINT NOT NULL,
    duration BIGINT NOT NULL DEFAULT 0, is_first_time_caller BOOLEAN NOT NULL DEFAULT FALSE,
    ad_position TEXT NOT NULL DEFAULT '', contact_name TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '', direction TEXT NOT NULL DEFAULT '',
    fbclid TEXT NOT NULL DEFAULT '', from_number TEXT NOT NULL DEFAULT '',
    gclid TEXT NOT NULL DEFAULT '', keyword TEXT NOT NULL DEFAULT '',
    landing_page TEXT NOT NULL DEFAULT '', match_type TEXT NOT NULL DEFAULT '',
    msclkid TEXT NOT NULL DEFAULT '', network TEXT NOT NULL DEFAULT '',
    recording_url TEXT NOT NULL DEFAULT '', referral_value TEXT NOT NULL DEFAULT '',
    sid TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
    to_number TEXT NOT NULL DEFAULT '', unbounce_page_id TEXT NOT NULL DEFAULT '',
    unbounce_variant_id TEXT NOT NULL DEFAULT '', unbounce_visitor_id TEXT NOT NULL DEFAULT '',
    user_source TEXT NOT NULL DEFAULT '', utm_campaign TEXT NOT NULL DEFAULT '',
    utm_content TEXT NOT NULL DEFAULT '', utm_medium TEXT NOT NULL DEFAULT '',
    utm_source TEXT NOT NULL DEFAULT '', utm_term TEXT NOT NULL DEFAULT '',
    UNIQUE (account_id, sid));
CREATE INDEX calls_by_account ON calls (account_id, start_time DESC, id DESC);
CREATE INDEX calls_by_company ON calls (account_id, company_id, start_time DESC, id DESC);
CREATE INDEX calls_by_campaign ON calls (account_id, campaign_id, start_time DESC, id DESC)
"""


@pytest.fixture
def raw_database(database_url: str) -> Iterator[Database]:
    """A database at schema version 1, as the first release left it."""
    database = open_database(database_url)
    identity = (
        "INTEGER PRIMARY KEY AUTOINCREMENT"
        if database.dialect == "sqlite"
        else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    with database.transaction(write=True) as tx:
        for statement in VERSION_1.format(identity=identity).split(";"):
            tx.execute(statement)
    assert current_version(database) == 1
    yield database
    database.close()
