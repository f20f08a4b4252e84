"""`numbers add|list|remove`: E.164 normalisation, the JSON shape, and every refusal clean."""

from __future__ import annotations

import pytest

from phonewagon_server.db import Database
from server_testkit import World
from test_cli import assert_refused, assert_shape, count_rows, run, run_json


@pytest.fixture
def campaign_id(database: Database) -> str:
    return World(database).tenant().campaign.id


def test_add_normalises_both_numbers_and_prints_the_json_shape(
    database: Database, database_url: str, campaign_id: str
) -> None:
    added = run_json(
        database_url,
        *("numbers", "add", "(844) 555-0102", "--campaign", campaign_id),
        *("--forward-to", "503-555-0100", "--source", "Billboard"),
    )
    assert_shape(
        added,
        {"number": str, "campaign_id": str, "company_id": int, "forward_to": str, "source": str},
    )
    assert added["number"] == "+18445550102"
    assert added["forward_to"] == "+15035550100"
    assert added["source"] == "Billboard"
    listed = run_json(database_url, "numbers", "list")["numbers"]
    assert [n["number"] for n in listed] == ["+18445550102"]


def test_remove_keeps_the_number_free_again(database_url: str, campaign_id: str) -> None:
    args = ("numbers", "add", "+18445550102", "--campaign", campaign_id, "--forward-to")
    run_json(database_url, *args, "+15035550100")
    assert run_json(database_url, "numbers", "remove", "(844) 555-0102")["removed"] is True
    assert run_json(database_url, "numbers", "list")["numbers"] == []
    run_json(database_url, *args, "+15035550100")


@pytest.mark.parametrize(
    ("number", "forward_to", "message"),
    [
        ("12", "+15035550100", "is not a valid phone number"),
        ("call me", "+15035550100", "is not a phone number"),
        ("+1 503 555 0100 ext 5", "+15035550100", "has an extension"),
        ("9" * 80, "+15035550100", "longer than 64"),
        ("+18445550102", "+1 555", "is not a valid phone number"),
        ("+18445550102", "+1 844 555 0102", "cannot forward to itself"),
    ],
)
def test_malformed_numbers_are_refused_and_nothing_is_added(
    database: Database,
    database_url: str,
    campaign_id: str,
    number: str,
    forward_to: str,
    message: str,
) -> None:
    result = run(
        database_url,
        "numbers",
        "add",
        number,
        "--campaign",
        campaign_id,
        "--forward-to",
        forward_to,
    )
    assert_refused(result, exit_code=2, message=message)
    assert count_rows(database, "tracking_numbers") == 0


def test_unknown_campaign_and_taken_number_are_refused(
    database: Database, database_url: str, campaign_id: str
) -> None:
    add = ("numbers", "add", "+18445550102", "--forward-to", "+15035550100", "--campaign")
    assert_refused(run(database_url, *add, "s9999"), exit_code=1, message="no campaign s9999")
    run_json(database_url, *add, campaign_id)
    assert_refused(
        run(database_url, *add, campaign_id),
        exit_code=1,
        message=f"+18445550102 is already taken by campaign {campaign_id}",
    )
    assert count_rows(database, "tracking_numbers") == 1
    assert_refused(
        run(database_url, "numbers", "remove", "+18445550199"), exit_code=1, message="no number"
    )
