"""`campaigns create --swap-target`, `dni snippet|origins|purge`: pools set up by an operator."""

from __future__ import annotations

import re
import time

import pytest

from phonewagon_server.db import Database
from phonewagon_server.db import visits as visit_rows
from test_cli import (
    assert_refused,
    campaigns_create,
    count_rows,
    create_account,
    create_company,
    run,
    run_json,
)

DAY_MS = 86_400_000


@pytest.fixture
def company(database_url: str, database: Database) -> int:
    account = create_account(database_url)
    return create_company(database_url, account["account_id"])


def test_a_campaign_with_a_swap_target_is_a_pool_that_list_shows(
    database_url: str, company: int
) -> None:
    created = run_json(
        database_url,
        *campaigns_create(company, "Website", "--id", "web", "--swap-target", "(503) 555-0100"),
    )
    assert created == {
        "id": "web",
        "name": "Website",
        "company_id": company,
        "swap_target": "+15035550100",
    }
    run_json(database_url, *campaigns_create(company, "Yelp", "--id", "yelp"))
    account_id = run_json(database_url, "accounts", "list")["accounts"][0]["id"]
    listed = run_json(database_url, "campaigns", "list", "--account", str(account_id))
    assert listed["campaigns"] == [
        {"id": "web", "name": "Website", "company_id": company, "swap_target": "+15035550100"},
        {"id": "yelp", "name": "Yelp", "company_id": company},
    ]
    human = run(database_url, "campaigns", "list", "--account", str(account_id)).stdout
    assert "pool, swaps +15035550100" in human


@pytest.mark.parametrize("target", ["555-01", "not a number", "+1 503 555 0100 ext. 7"])
def test_a_malformed_swap_target_is_refused_and_nothing_is_made(
    database_url: str, database: Database, company: int, target: str
) -> None:
    result = run(database_url, *campaigns_create(company, "Website", "--swap-target", target))
    assert_refused(result, exit_code=2, message="--swap-target")
    assert count_rows(database, "campaigns") == 0


def test_the_snippet_carries_a_key_made_once_per_company(database_url: str, company: int) -> None:
    first = run_json(database_url, "dni", "snippet", "--company", str(company))
    assert re.fullmatch(r"pwk_[A-Za-z0-9_-]{24}", first["key"])
    assert first["snippet"] == (
        f'<script async src="http://127.0.0.1:8000/dni.js" data-key="{first["key"]}"></script>'
    )
    assert run_json(database_url, "dni", "snippet", "--company", str(company)) == first
    other = create_company(database_url, 1, "Other Co")
    assert run_json(database_url, "dni", "snippet", "--company", str(other))["key"] != first["key"]
    human = run(database_url, "dni", "snippet", "--company", str(company))
    assert human.stdout.strip() == first["snippet"]


def test_origins_are_set_printed_and_cleared(database_url: str, company: int) -> None:
    flag = ("--company", str(company))
    assert run_json(database_url, "dni", "origins", *flag) == {"company_id": company, "origins": []}
    set_ = run_json(
        database_url, "dni", "origins", *flag, "https://acme.example", "http://localhost:3000/"
    )
    assert set_["origins"] == ["https://acme.example", "http://localhost:3000"]
    assert run_json(database_url, "dni", "origins", *flag)["origins"] == set_["origins"]
    assert run_json(database_url, "dni", "origins", *flag, "--clear")["origins"] == []


@pytest.mark.parametrize(
    "origin", ["acme.example", "https://acme.example/path", "ftp://acme.example", "*", "https://"]
)
def test_a_malformed_origin_is_refused_and_nothing_changes(
    database_url: str, company: int, origin: str
) -> None:
    flag = ("--company", str(company))
    run_json(database_url, "dni", "origins", *flag, "https://acme.example")
    assert_refused(
        run(database_url, "dni", "origins", *flag, origin), exit_code=2, message="ORIGIN"
    )
    assert run_json(database_url, "dni", "origins", *flag)["origins"] == ["https://acme.example"]


@pytest.mark.parametrize(
    "args",
    [
        ("dni", "snippet", "--company", "999"),
        ("dni", "origins", "--company", "999"),
        ("dni", "origins", "--company", "999", "https://acme.example"),
        ("dni", "origins", "--company", "999", "--clear"),
    ],
)
def test_an_unknown_company_is_refused_and_nothing_is_written(
    database_url: str, database: Database, company: int, args: tuple[str, ...]
) -> None:
    assert_refused(run(database_url, *args), exit_code=1, message="there is no company 999")
    assert count_rows(database, "dni_sites") == 0


def test_purge_deletes_the_visits_past_the_window_and_keeps_the_rest(
    database_url: str, database: Database, company: int
) -> None:
    now = int(time.time() * 1000)
    with database.transaction(write=True) as tx:
        for age_days in (45, 31, 29, 1):
            visit_rows.insert_visit(
                tx, company_id=company, visitor=f"v{age_days}", now=now - age_days * DAY_MS,
                paid=False, fields={"user_source": "Direct"},
            )  # fmt: skip
    assert run_json(database_url, "dni", "purge") == {
        "visits": 2,
        "holds": 0,
        "attribution_days": 30,
    }
    with database.transaction() as tx:
        kept = sorted(row[0] for row in tx.fetchall("SELECT visitor FROM dni_visits"))
    assert kept == ["v1", "v29"]
    assert run_json(database_url, "dni", "purge")["visits"] == 0
