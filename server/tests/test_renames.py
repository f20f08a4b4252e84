"""`companies rename` and `campaigns rename`: the new name in every answer, every call of a
campaign written again in short batches that let other writers in between."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient

from phonewagon_server.db import Database
from phonewagon_server.db.calls import write_call
from phonewagon_server.models import Call
from phonewagon_server.renames import rename_campaign_and_calls
from server_testkit import NOW_MS, Tenant, World
from test_cli import run, run_json


def campaign_names_shown(api: TestClient, tenant: Tenant) -> set[str]:
    calls = api.get("/calls", auth=tenant.auth, params={"page_size": 1000}).json()["calls"]
    return {call["campaign_name"] for call in calls}


def test_a_renamed_campaign_shows_its_name_in_every_call(
    api: TestClient, database_url: str, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, [NOW_MS - n for n in range(25)])
    renamed = run_json(database_url, "campaigns", "rename", tenant.campaign.id, "Google Ads EU")
    assert renamed == {
        "id": tenant.campaign.id,
        "name": "Google Ads EU",
        "company_id": tenant.company.id,
        "calls": 25,
    }
    campaigns = api.get("/campaigns", auth=tenant.auth).json()["campaigns"]
    assert campaigns == [{"id": tenant.campaign.id, "name": "Google Ads EU"}]
    assert campaign_names_shown(api, tenant) == {"Google Ads EU"}
    again = run_json(database_url, "campaigns", "rename", tenant.campaign.id, "Google Ads EU")
    assert again["calls"] == 0  # nothing left to write


def test_a_renamed_company_shows_its_name(
    api: TestClient, database_url: str, tenant: Tenant
) -> None:
    renamed = run_json(database_url, "companies", "rename", str(tenant.company.id), "Rakes Ltd")
    assert renamed == {
        "id": tenant.company.id,
        "name": "Rakes Ltd",
        "account_id": tenant.account_id,
    }
    companies = api.get("/companies", auth=tenant.auth).json()["companies"]
    assert companies == [{"id": tenant.company.id, "name": "Rakes Ltd"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("campaigns", "rename", "s404", "X"), "there is no campaign s404"),
        (("companies", "rename", "404", "X"), "there is no company 404"),
        (("campaigns", "rename", "s404", "   "), "name"),
        (("companies", "rename", "x", "X"), "'x' is not a valid integer"),
    ],
)
def test_a_rename_of_nothing_or_to_nothing_is_refused(
    database_url: str, tenant: Tenant, args: tuple[str, ...], message: str
) -> None:
    result = run(database_url, *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert result.stdout == ""


def test_other_writers_get_the_database_between_the_batches_of_a_rename(
    database: Database, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, [NOW_MS - n for n in range(35)])
    progress = []

    def write_between_batches(written: int) -> None:
        progress.append(written)
        call = Call(sid=f"CAwebhook{written}", campaign_id=tenant.campaign.id, start_time=NOW_MS)
        with database.transaction(write=True, changing=tenant.account_id) as tx:  # no wait
            write_call(tx, call, dataclasses.replace(tenant.campaign, name="Renamed"))

    rename_campaign_and_calls(
        database, tenant.campaign.id, "Renamed", batch_size=10, on_batch=write_between_batches
    )
    assert progress == [10, 20, 30, 35]


def test_a_rename_cut_short_is_finished_by_running_it_again(
    api: TestClient, database: Database, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, [NOW_MS - n for n in range(30)])

    def interrupt(written: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rename_campaign_and_calls(
            database, tenant.campaign.id, "Renamed", batch_size=10, on_batch=interrupt
        )
    assert campaign_names_shown(api, tenant) == {"Renamed", "Google Ads"}
    _, written = rename_campaign_and_calls(database, tenant.campaign.id, "Renamed")
    assert written == 20
    assert campaign_names_shown(api, tenant) == {"Renamed"}
