"""One call record, one write path: `write_call` inserts, updates or leaves a call alone and says
which; `read_call` gives back the record; the API shows what was written."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from phonewagon_server.db import Database
from phonewagon_server.db.calls import read_call, write_call, write_calls
from phonewagon_server.documents import read_document, render_call
from phonewagon_server.models import (
    CALL_DEFAULTS,
    CALL_FIELDS,
    CALL_IMPORT_FIELDS,
    CALL_REQUIRED_FIELDS,
    CALL_STRING_FIELDS,
    Call,
    Campaign,
)
from server_testkit import NOW_MS, Tenant, World


def a_call(tenant: Tenant, **fields: object) -> Call:
    return Call(sid="CA" + "1" * 32, campaign_id=tenant.campaign.id, start_time=NOW_MS, **fields)


def test_the_record_names_every_field_a_writer_sets_and_its_default() -> None:
    assert set(CALL_IMPORT_FIELDS) == {f.name for f in dataclasses.fields(Call)}
    assert set(CALL_FIELDS) - set(CALL_IMPORT_FIELDS) == {
        "id",
        "account_id",
        "company_id",
        "campaign_name",
        "updated_at",
    }
    assert CALL_REQUIRED_FIELDS == ("sid", "campaign_id", "start_time")
    text_defaults = dict.fromkeys(set(CALL_STRING_FIELDS) - {"sid"}, "")
    assert text_defaults | {"duration": 0, "is_first_time_caller": False} == CALL_DEFAULTS


def test_a_call_is_inserted_then_updated_then_left_alone(
    database: Database, tenant: Tenant
) -> None:
    ringing = a_call(tenant, status="ringing")
    completed = dataclasses.replace(ringing, status="completed", duration=42)
    outcomes = []
    for call in (ringing, completed, completed):
        with database.transaction(write=True, changing=tenant.account_id) as tx:
            outcomes.append(write_call(tx, call, tenant.campaign))
    assert outcomes == ["inserted", "updated", "unchanged"]
    with database.transaction() as tx:
        assert read_call(tx, tenant.account_id, ringing.sid) == completed


def test_a_written_call_is_what_the_api_shows(
    api: TestClient, database: Database, tenant: Tenant
) -> None:
    call = a_call(tenant, status="busy", gclid="EAIa", is_first_time_caller=True, duration=3)
    with database.transaction(write=True, changing=tenant.account_id) as tx:
        write_call(tx, call, tenant.campaign)
    (shown,) = api.get("/calls", auth=tenant.auth).json()["calls"]
    assert {name: shown[name] for name in CALL_IMPORT_FIELDS} == dataclasses.asdict(call)
    assert (shown["account_id"], shown["company_id"], shown["campaign_name"]) == (
        tenant.account_id,
        tenant.company.id,
        tenant.campaign.name,
    )


def test_another_accounts_call_with_the_same_sid_is_another_call(
    database: Database, tenant: Tenant, world: World
) -> None:
    other = world.tenant("Other Agency")
    for owner, status in ((tenant, "busy"), (other, "ringing")):
        with database.transaction(write=True, changing=owner.account_id) as tx:
            assert write_call(tx, a_call(owner, status=status), owner.campaign) == "inserted"
    with database.transaction() as tx:
        mine, theirs = (read_call(tx, t.account_id, "CA" + "1" * 32) for t in (tenant, other))
    assert (mine and mine.status, theirs and theirs.status) == ("busy", "ringing")


def test_many_calls_are_written_at_once_and_counted(database: Database, tenant: Tenant) -> None:
    calls = [dataclasses.replace(a_call(tenant), sid=f"CA{n:032x}") for n in range(3)]
    campaigns = {tenant.campaign.id: tenant.campaign}
    with database.transaction(write=True, changing=tenant.account_id) as tx:
        first = write_calls(tx, calls, campaigns)
        again = write_calls(
            tx, [*calls[:2], dataclasses.replace(calls[2], status="busy")], campaigns
        )
    assert (first.inserted, again.unchanged, again.updated) == (3, 2, 1)


def test_a_campaign_of_another_account_is_refused_in_one_batch(
    tenant: Tenant, world: World
) -> None:
    other = world.tenant("Other Agency")
    calls = [a_call(tenant), dataclasses.replace(a_call(other), sid="CA" + "2" * 32)]
    campaigns = {tenant.campaign.id: tenant.campaign, other.campaign.id: other.campaign}
    with (
        pytest.raises(ValueError, match="one account"),
        world.database.transaction(write=True, changing=tenant.account_id) as tx,
    ):
        write_calls(tx, calls, campaigns)


texts = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20
)


@settings(max_examples=200)
@given(
    strings=st.fixed_dictionaries({name: texts for name in CALL_STRING_FIELDS if name != "sid"}),
    duration=st.integers(0, 7 * 24 * 3600),
    first_time=st.booleans(),
)
def test_a_document_reads_back_as_the_record_it_was_rendered_from(
    strings: dict[str, str], duration: int, first_time: bool
) -> None:
    call = Call(
        sid="CA1",
        campaign_id="s1",
        start_time=NOW_MS,
        duration=duration,
        is_first_time_caller=first_time,
        **strings,
    )
    head, middle, tail = render_call(call, Campaign("s1", 2, 3, 'Ads "x"'))
    assert read_document(f"{head}17{middle}1764000000000{tail}") == call
