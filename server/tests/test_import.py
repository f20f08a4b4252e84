"""`phonewagon-server calls import`: JSON Lines and CSV, idempotent on sid, bad rows reported."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from phonewagon_server.cli import main
from phonewagon_server.db import Database
from phonewagon_server.imports import (
    BATCH_SIZE,
    MAX_LINE_BYTES,
    MAX_SID_CHARS,
    MAX_TEXT_CHARS,
    import_calls,
)
from phonewagon_server.models import CALL_FIELDS, MAX_EPOCH_MS
from server_testkit import NOW_MS, Tenant, World

SERVER_COMMAND = str(Path(sys.executable).with_name("phonewagon-server"))
SUMMARY_KEYS = {"inserted", "updated", "unchanged", "rejected", "errors"}
HOUR_MS = 3_600_000


def new_sid() -> str:
    return "CA" + uuid.uuid4().hex


def call(tenant: Tenant, minutes_ago: int = 1, **fields: Any) -> dict[str, Any]:
    """A call row as an operator would write it: the required fields and a few others."""
    return {
        "sid": new_sid(),
        "campaign_id": tenant.campaign.id,
        "start_time": NOW_MS - minutes_ago * 60_000,
        "duration": 42,
        "status": "completed",
        "from_number": "+12125550123",
        "to_number": "+18445550100",
        "is_first_time_caller": True,
        **fields,
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """One JSON value per line; a str row is written as it is (for broken lines)."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    header = list(dict.fromkeys(name for row in rows for name in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()})
    path.write_text(out.getvalue())
    return path


def run_import(database_url: str, path: Path, account_id: int, *args: str) -> Result:
    """`phonewagon-server calls import PATH --account ID ARGS`, in process."""
    return CliRunner().invoke(
        main,
        ["calls", "import", str(path), "--account", str(account_id), *args],
        catch_exceptions=False,
        env={"PHONEWAGON_DATABASE_URL": database_url},
    )


def import_json(
    database_url: str, path: Path, account_id: int, *args: str, exit_code: int = 0
) -> dict[str, Any]:
    """The `--json` summary of an import, checked to be the only thing on stdout."""
    result = run_import(database_url, path, account_id, "--json", *args)
    assert result.exit_code == exit_code, result.output
    assert result.stdout.count("\n") == 1
    assert result.stderr == ""
    summary: dict[str, Any] = json.loads(result.stdout)
    assert set(summary) == SUMMARY_KEYS
    return summary


def counts(summary: dict[str, Any]) -> tuple[int, int, int, int]:
    return summary["inserted"], summary["updated"], summary["unchanged"], summary["rejected"]


def fetch_calls(api: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    """Every call the API shows the tenant, following `next` links."""
    found: list[dict[str, Any]] = []
    response = api.get("/calls", params={"page_size": 1000, **params}, auth=tenant.auth)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["calls"]
        if "next" not in body:
            return found
        response = api.get(body["next"], auth=tenant.auth)


def by_sid(calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    mapped = {c["sid"]: c for c in calls}
    assert len(mapped) == len(calls), "a sid is shown twice"
    return mapped


def assert_refused_whole(
    database_url: str, database: Database, tenant: Tenant, path: Path, message: str
) -> None:
    """The import of `path` fails with `message` on stderr, no traceback, nothing written."""
    result = run_import(database_url, path, tenant.account_id, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert stored_sids(database, tenant.account_id) == (0, 0)


def stored_sids(database: Database, account_id: int) -> tuple[int, int]:
    """(calls, distinct sids) stored for the account."""
    with database.transaction() as tx:
        row = tx.fetchone(
            "SELECT COUNT(*), COUNT(DISTINCT sid) FROM calls WHERE account_id = ?", (account_id,)
        )
    assert row is not None
    return int(row[0]), int(row[1])


# Formats


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json"])
def test_a_json_lines_file_imports_every_call(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path, suffix: str
) -> None:
    rows = [call(tenant, minutes_ago=n) for n in range(1, 4)]
    summary = import_json(
        database_url, write_jsonl(tmp_path / f"calls{suffix}", rows), tenant.account_id
    )
    assert summary == {"inserted": 3, "updated": 0, "unchanged": 0, "rejected": 0, "errors": []}
    shown = by_sid(fetch_calls(api, tenant))
    assert set(shown) == {row["sid"] for row in rows}
    for row in rows:
        assert shown[row["sid"]].items() >= row.items()


def test_an_imported_call_gets_the_derived_fields_and_defaults(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    row = {"sid": new_sid(), "campaign_id": tenant.campaign.id, "start_time": NOW_MS - 1}
    import_json(database_url, write_jsonl(tmp_path / "calls.jsonl", [row]), tenant.account_id)
    [shown] = fetch_calls(api, tenant)
    assert set(shown) == set(CALL_FIELDS)
    assert isinstance(shown["id"], int)
    assert shown["account_id"] == tenant.account_id
    assert shown["company_id"] == tenant.company.id
    assert shown["campaign_name"] == tenant.campaign.name
    assert shown["duration"] == 0
    assert shown["is_first_time_caller"] is False
    assert shown["status"] == ""
    assert shown["gclid"] == ""


def test_a_csv_file_imports_the_same_calls_as_json_lines(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    as_json = [call(tenant, minutes_ago=1, gclid="EAIaIQ", user_source="Google Ads")]
    as_csv = [call(tenant, minutes_ago=2, gclid="EAIaIQ", user_source="Google Ads")]
    import_json(database_url, write_jsonl(tmp_path / "a.jsonl", as_json), tenant.account_id)
    summary = import_json(database_url, write_csv(tmp_path / "b.csv", as_csv), tenant.account_id)
    assert counts(summary) == (1, 0, 0, 0)
    shown = by_sid(fetch_calls(api, tenant))
    from_json, from_csv = shown[as_json[0]["sid"]], shown[as_csv[0]["sid"]]
    ignored = {"id", "sid", "start_time", "updated_at"}
    assert {k: v for k, v in from_csv.items() if k not in ignored} == {
        k: v for k, v in from_json.items() if k not in ignored
    }
    assert from_csv["start_time"] == as_csv[0]["start_time"]


def test_csv_cells_may_be_blank_and_booleans_may_be_spelled_several_ways(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    header = "sid,campaign_id,start_time,duration,is_first_time_caller,status\n"
    rows = [
        f"CA01,{tenant.campaign.id},{NOW_MS - 1},,TRUE,\n",
        f"CA02,{tenant.campaign.id},{NOW_MS - 2}, 17 ,no,busy\n",
        f'CA03,{tenant.campaign.id},{NOW_MS - 3},5,1,"no-answer, then ""voicemail"""\n',
    ]
    path = tmp_path / "calls.csv"
    path.write_text(header + "".join(rows))
    assert counts(import_json(database_url, path, tenant.account_id)) == (3, 0, 0, 0)
    shown = by_sid(fetch_calls(api, tenant))
    assert (shown["CA01"]["duration"], shown["CA01"]["is_first_time_caller"]) == (0, True)
    assert (shown["CA02"]["duration"], shown["CA02"]["is_first_time_caller"]) == (17, False)
    assert shown["CA03"]["status"] == 'no-answer, then "voicemail"'


def test_a_csv_saved_by_a_spreadsheet_with_bom_and_crlf_imports(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    text = f"sid,campaign_id,start_time\r\nCA01,{tenant.campaign.id},{NOW_MS - 1}\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert counts(import_json(database_url, path, tenant.account_id)) == (1, 0, 0, 0)
    assert [c["sid"] for c in fetch_calls(api, tenant)] == ["CA01"]


def test_json_lines_saved_with_a_byte_order_mark_import(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(call(tenant)).encode() + b"\n")
    assert counts(import_json(database_url, path, tenant.account_id)) == (1, 0, 0, 0)


def test_json_lines_with_crlf_line_ends_import(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    rows = [call(tenant), call(tenant)]
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b"".join(json.dumps(row).encode() + b"\r\n" for row in rows))
    assert counts(import_json(database_url, path, tenant.account_id)) == (2, 0, 0, 0)


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_format_option_reads_a_file_whatever_its_name(
    database_url: str, tenant: Tenant, tmp_path: Path, file_format: str
) -> None:
    rows = [call(tenant)]
    path = (write_jsonl if file_format == "jsonl" else write_csv)(tmp_path / "export.txt", rows)
    summary = import_json(database_url, path, tenant.account_id, "--format", file_format)
    assert counts(summary) == (1, 0, 0, 0)


def test_format_option_wins_over_the_extension(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "calls.jsonl", [call(tenant)])
    summary = import_json(database_url, path, tenant.account_id, "--format", "csv")
    assert counts(summary) == (1, 0, 0, 0)


def test_a_file_of_unknown_format_is_refused_with_a_hint(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "calls.txt", [call(tenant)])
    result = run_import(database_url, path, tenant.account_id, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--format" in result.stderr


def test_a_missing_file_is_refused(database_url: str, tenant: Tenant, tmp_path: Path) -> None:
    result = run_import(database_url, tmp_path / "nope.jsonl", tenant.account_id, "--json")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_an_unknown_account_is_refused_and_nothing_is_written(
    database_url: str, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "calls.jsonl", [call(tenant)])
    result = run_import(database_url, path, 999, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no account 999" in result.stderr
    assert stored_sids(database, 999) == (0, 0)
    assert stored_sids(database, tenant.account_id) == (0, 0)


# A file written from /calls pages


def test_a_file_written_from_calls_pages_imports_as_it_is(
    api: TestClient, database_url: str, world: World, tenant: Tenant, tmp_path: Path
) -> None:
    """Exported pages re-imported change nothing; edited, they update; derived fields ignored."""
    other = world.campaign(world.company(tenant, "Second Co"), "Bing Ads", "bing-7")
    world.calls(tenant, [NOW_MS - n * HOUR_MS for n in range(5)], gclid="EAIa", keyword="plumber")
    world.calls(tenant, [NOW_MS - 1, NOW_MS - 1], campaign=other, is_first_time_caller=True)
    exported = fetch_calls(api, tenant, page_size=3)
    assert len(exported) == 7
    path = write_jsonl(tmp_path / "export.jsonl", exported)

    summary = import_json(database_url, path, tenant.account_id)
    assert counts(summary) == (0, 0, 7, 0)
    assert fetch_calls(api, tenant, page_size=3) == exported  # updated_at included: no change

    edited = [
        {
            **c,
            "status": "no-answer",
            "duration": c["duration"] + 1,
            "id": 0,
            "company_id": 0,
            "campaign_name": "ignored",
        }
        for c in exported
    ]
    summary = import_json(database_url, write_jsonl(path, edited), tenant.account_id)
    assert counts(summary) == (0, 7, 0, 0)
    after = by_sid(fetch_calls(api, tenant))
    for before in exported:
        changed = after[before["sid"]]
        assert changed["updated_at"] > before["updated_at"]  # a change: to the feed's end
        assert changed == {
            **before,
            "status": "no-answer",
            "duration": before["duration"] + 1,
            "updated_at": changed["updated_at"],
        }


def test_a_csv_written_from_calls_pages_imports_as_it_is(
    api: TestClient, database_url: str, world: World, tenant: Tenant, tmp_path: Path
) -> None:
    world.calls(tenant, [NOW_MS - n for n in range(4)], contact_name="O'Brien, Pat")
    exported = fetch_calls(api, tenant)
    summary = import_json(
        database_url, write_csv(tmp_path / "export.csv", exported), tenant.account_id
    )
    assert counts(summary) == (0, 0, 4, 0)
    assert fetch_calls(api, tenant) == exported


# Idempotence


def test_the_json_summary_has_exactly_the_documented_shape(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "calls.jsonl", [call(tenant), {"sid": "CA1"}])
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    for key in ("inserted", "updated", "unchanged", "rejected"):
        assert type(summary[key]) is int
    assert type(summary["errors"]) is list
    [error] = summary["errors"]
    assert set(error) == {"line", "error"}
    assert type(error["line"]) is int
    assert type(error["error"]) is str


def test_rerun_of_the_same_file_changes_nothing(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "calls.jsonl", [call(tenant, n) for n in range(1, 51)])
    assert counts(import_json(database_url, path, tenant.account_id)) == (50, 0, 0, 0)
    before = fetch_calls(api, tenant)
    assert counts(import_json(database_url, path, tenant.account_id)) == (0, 0, 50, 0)
    assert fetch_calls(api, tenant) == before


def test_modified_rows_are_updated_and_never_duplicated(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    rows = [call(tenant, n) for n in range(1, 11)]
    path = tmp_path / "calls.jsonl"
    import_json(database_url, write_jsonl(path, rows), tenant.account_id)
    rows[0]["duration"] = 99
    rows[1]["is_first_time_caller"] = False
    rows[2]["start_time"] -= 1
    added = call(tenant, 30)
    summary = import_json(database_url, write_jsonl(path, [*rows, added]), tenant.account_id)
    assert counts(summary) == (1, 3, 7, 0)
    shown = by_sid(fetch_calls(api, tenant))
    assert len(shown) == 11
    assert shown[rows[0]["sid"]]["duration"] == 99
    assert shown[rows[1]["sid"]]["is_first_time_caller"] is False
    assert shown[rows[2]["sid"]]["start_time"] == rows[2]["start_time"]


def test_a_call_can_move_to_another_campaign_and_company(
    api: TestClient, database_url: str, world: World, tenant: Tenant, tmp_path: Path
) -> None:
    elsewhere = world.campaign(world.company(tenant, "Second Co"), "Yelp", "yelp-2")
    row = call(tenant)
    path = tmp_path / "calls.jsonl"
    import_json(database_url, write_jsonl(path, [row]), tenant.account_id)
    import_json(
        database_url, write_jsonl(path, [{**row, "campaign_id": "yelp-2"}]), tenant.account_id
    )
    [shown] = fetch_calls(api, tenant)
    assert (shown["campaign_id"], shown["campaign_name"]) == ("yelp-2", "Yelp")
    assert shown["company_id"] == elsewhere.company_id


def test_the_same_sid_in_two_accounts_is_two_calls(
    api: TestClient, database_url: str, world: World, tenant: Tenant, tmp_path: Path
) -> None:
    other = world.tenant("Other Agency")
    sid = new_sid()
    mine = write_jsonl(tmp_path / "mine.jsonl", [call(tenant, sid=sid)])
    theirs = write_jsonl(tmp_path / "theirs.jsonl", [call(other, sid=sid, status="busy")])
    assert counts(import_json(database_url, mine, tenant.account_id)) == (1, 0, 0, 0)
    assert counts(import_json(database_url, theirs, other.account_id)) == (1, 0, 0, 0)
    assert [c["status"] for c in fetch_calls(api, tenant)] == ["completed"]
    assert [c["status"] for c in fetch_calls(api, other)] == ["busy"]


def test_a_sid_repeated_in_one_file_is_one_call_with_the_last_values(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    first = call(tenant, status="ringing")
    rows = [first, call(tenant), {**first, "status": "completed", "duration": 7}]
    summary = import_json(database_url, write_jsonl(tmp_path / "c.jsonl", rows), tenant.account_id)
    assert summary["rejected"] == 0
    shown = by_sid(fetch_calls(api, tenant))
    assert len(shown) == 2
    assert (shown[first["sid"]]["status"], shown[first["sid"]]["duration"]) == ("completed", 7)


def test_a_rerun_of_a_file_repeating_a_sid_finds_each_call_unchanged(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """The report counts calls, not rows: a sid repeated is one call, inserted once."""
    first = call(tenant, status="ringing")
    rows = [first, call(tenant), {**first, "status": "completed"}, {**first, "duration": 7}]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    assert counts(import_json(database_url, path, tenant.account_id)) == (2, 0, 0, 0)
    assert counts(import_json(database_url, path, tenant.account_id)) == (0, 0, 2, 0)


def test_a_sid_repeated_across_batches_counts_once_as_its_first_row_found_the_call(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """Inserted or updated first, it counts nothing more; unchanged first, then changed by a
    repeat, it counts as updated."""
    rows = [call(tenant, n) for n in range(1, BATCH_SIZE + 11)]
    total = len(rows)
    path = tmp_path / "calls.jsonl"
    # rows[0] again in the second batch, unchanged; rows[-1] again in its own batch, changed.
    repeats = [rows[0], {**rows[-1], "status": "busy"}]
    write_jsonl(path, [*rows, *repeats])
    assert counts(import_json(database_url, path, tenant.account_id)) == (total, 0, 0, 0)
    assert counts(import_json(database_url, path, tenant.account_id)) == (0, 0, total, 0)

    new = call(tenant, 0)
    # new: inserted by the first batch, changed by the second; rows[1]: unchanged by the first,
    # changed by the second; rows[-1]: back to "completed", in the second batch only.
    repeats = [{**rows[1], "duration": 1}, {**new, "status": "busy"}]
    write_jsonl(path, [new, *rows, *repeats])
    summary = import_json(database_url, path, tenant.account_id)
    assert counts(summary) == (1, 2, total - 2, 0)
    shown = by_sid(fetch_calls(api, tenant))
    assert len(shown) == total + 1
    assert shown[new["sid"]]["status"] == "busy"
    assert shown[rows[1]["sid"]]["duration"] == 1
    assert shown[rows[-1]["sid"]]["status"] == "completed"


@pytest.mark.parametrize("content", ["", "\n\n", "  \n\t\n"])
def test_an_empty_json_lines_file_imports_nothing(
    database_url: str, tenant: Tenant, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    summary = import_json(database_url, path, tenant.account_id)
    assert summary == {"inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "errors": []}


@pytest.mark.parametrize("content", ["", "sid,campaign_id,start_time\n", "sid\n\n,\n"])
def test_an_empty_csv_file_imports_nothing(
    database_url: str, tenant: Tenant, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    summary = import_json(database_url, path, tenant.account_id)
    assert summary == {"inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "errors": []}


def test_blank_lines_are_skipped_and_line_numbers_count_them(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    lines = [json.dumps(call(tenant)), "", "   ", json.dumps(call(tenant)), "", "{broken"]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    assert [e["line"] for e in summary["errors"]] == [6]


def test_blank_csv_rows_are_skipped_and_line_numbers_count_them(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    campaign = tenant.campaign.id
    path = tmp_path / "calls.csv"
    path.write_text(
        f"sid,campaign_id,start_time\nCA1,{campaign},1\n\n,,\nCA2,{campaign},x\nCA3,{campaign},3\n"
    )
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    assert [e["line"] for e in summary["errors"]] == [5]


# Bad rows


MISSING = object()
BAD_JSON_ROWS: list[tuple[str, Any, str]] = [
    ("unknown field", {"colour": "red"}, "unknown field 'colour'"),
    ("misspelt field", {"gclid_": "x"}, "unknown field 'gclid_'"),
    ("string duration", {"duration": "42"}, "duration must be"),
    ("float duration", {"duration": 4.5}, "duration must be"),
    ("negative duration", {"duration": -1}, "duration -1 is out of range"),
    ("boolean start_time", {"start_time": True}, "start_time must be"),
    ("string start_time", {"start_time": "1700000000000"}, "start_time must be"),
    ("float start_time", {"start_time": 1.7e12}, "start_time must be"),
    ("negative start_time", {"start_time": -1}, "start_time -1 is out of range"),
    ("huge start_time", {"start_time": MAX_EPOCH_MS + 1}, "out of range"),
    ("enormous start_time", {"start_time": 10**30}, "start_time must be"),
    ("number in a string field", {"status": 1}, "status must be a string"),
    ("object in a string field", {"gclid": {"a": 1}}, "gclid must be a string"),
    ("null byte in a string", {"contact_name": "a\u0000b"}, "contact_name"),
    ("string boolean", {"is_first_time_caller": "yes"}, "is_first_time_caller must be"),
    ("number boolean", {"is_first_time_caller": 1}, "is_first_time_caller must be"),
    ("unknown campaign", {"campaign_id": "s404"}, "unknown campaign_id 's404'"),
    ("numeric campaign id", {"campaign_id": 2212}, "campaign_id must be a string"),
    ("missing sid", {"sid": MISSING}, "sid is required"),
    ("null sid", {"sid": None}, "sid is required"),
    ("empty sid", {"sid": ""}, "sid is required"),
    ("missing campaign_id", {"campaign_id": MISSING}, "campaign_id is required"),
    ("null campaign_id", {"campaign_id": None}, "campaign_id is required"),
    ("missing start_time", {"start_time": MISSING}, "start_time is required"),
    ("null start_time", {"start_time": None}, "start_time is required"),
]


@pytest.mark.parametrize(
    ("change", "reason"),
    [pytest.param(change, reason, id=name) for name, change, reason in BAD_JSON_ROWS],
)
def test_a_bad_row_is_rejected_with_its_line_and_reason_and_good_rows_are_kept(
    api: TestClient,
    database_url: str,
    tenant: Tenant,
    tmp_path: Path,
    change: dict[str, Any],
    reason: str,
) -> None:
    good = [call(tenant, 1), call(tenant, 2)]
    bad = {k: v for k, v in (call(tenant, 3) | change).items() if v is not MISSING}
    path = write_jsonl(tmp_path / "calls.jsonl", [good[0], bad, good[1]])
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    [error] = summary["errors"]
    assert error["line"] == 2
    assert reason in error["error"]
    assert {c["sid"] for c in fetch_calls(api, tenant)} == {row["sid"] for row in good}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"sid": "CA1"', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"just a string"', "not a JSON object"),
        ("null", "not a JSON object"),
        ('{"sid": NaN}', "not valid JSON"),
    ],
)
def test_a_line_that_is_not_a_json_object_is_rejected(
    database_url: str, tenant: Tenant, tmp_path: Path, line: str, reason: str
) -> None:
    path = write_jsonl(tmp_path / "calls.jsonl", [call(tenant), line, call(tenant)])
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    assert summary["errors"][0]["line"] == 2
    assert reason in summary["errors"][0]["error"]


def test_a_line_that_is_not_utf8_is_rejected(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "calls.jsonl"
    good = json.dumps(call(tenant)).encode()
    path.write_bytes(good + b"\n" + b'{"sid": "CA\xff\xfe"}\n')
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (1, 0, 0, 1)
    assert summary["errors"][0]["line"] == 2


def test_another_accounts_campaign_is_answered_like_an_unknown_one(
    api: TestClient, database_url: str, world: World, tenant: Tenant, tmp_path: Path
) -> None:
    other = world.tenant("Other Agency")
    rows = [call(tenant, campaign_id=other.campaign.id), call(tenant, campaign_id="nope")]
    summary = import_json(
        database_url, write_jsonl(tmp_path / "calls.jsonl", rows), tenant.account_id, exit_code=1
    )
    assert counts(summary) == (0, 0, 0, 2)
    assert [e["error"] for e in summary["errors"]] == [
        f"unknown campaign_id {other.campaign.id!r} for this account",
        "unknown campaign_id 'nope' for this account",
    ]
    assert fetch_calls(api, other) == []


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("CA9,{campaign},5,extra", "has 4 cells where the header names 3"),
        ("CA9,{campaign}", "has 2 cells where the header names 3"),
        ("CA9,{campaign},4.5", "start_time must be a non-negative integer"),
        ("CA9,{campaign},-5", "start_time must be a non-negative integer"),
        ("CA9,,5", "campaign_id is required"),
        (",{campaign},5", "sid is required"),
        ("CA9,{campaign},", "start_time is required"),
        ("CA9,s404,5", "unknown campaign_id 's404'"),
    ],
)
def test_a_bad_csv_row_is_rejected_with_its_line_and_reason(
    database_url: str, tenant: Tenant, tmp_path: Path, row: str, reason: str
) -> None:
    campaign = tenant.campaign.id
    path = tmp_path / "calls.csv"
    path.write_text(
        "sid,campaign_id,start_time\n"
        f"CA1,{campaign},1\n" + row.format(campaign=campaign) + f"\nCA2,{campaign},2\n"
    )
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    assert summary["errors"] == [{"line": 3, "error": summary["errors"][0]["error"]}]
    assert reason in summary["errors"][0]["error"]


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({"duration": "forty"}, "duration must be"),
        ({"is_first_time_caller": "maybe"}, "is_first_time_caller must be"),
    ],
)
def test_a_csv_cell_of_the_wrong_type_is_rejected(
    database_url: str, tenant: Tenant, tmp_path: Path, cells: dict[str, str], reason: str
) -> None:
    path = write_csv(tmp_path / "calls.csv", [call(tenant), call(tenant, **cells)])
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (1, 0, 0, 1)
    assert summary["errors"][0]["line"] == 3
    assert reason in summary["errors"][0]["error"]


def test_an_unknown_csv_column_rejects_every_row(
    database_url: str, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "calls.csv", [call(tenant, colour="red") for _ in range(3)])
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (0, 0, 0, 3)
    assert [e["line"] for e in summary["errors"]] == [2, 3, 4]
    assert all("unknown field 'colour'" in e["error"] for e in summary["errors"])
    assert stored_sids(database, tenant.account_id) == (0, 0)


def test_a_csv_that_is_not_utf8_is_refused_whole_and_nothing_is_written(
    database_url: str, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    """Also when batches were already written before the bad line: their transaction rolls back."""
    path = tmp_path / "calls.csv"
    rows = "".join(f"CA{n},{tenant.campaign.id},{n}\n" for n in range(12_000))  # 2 batches and more
    path.write_bytes(f"sid,campaign_id,start_time\n{rows}".encode() + b"CA\xff,x,1\n")
    assert_refused_whole(database_url, database, tenant, path, "UTF-8")


def test_a_csv_cell_beyond_the_csv_modules_default_limit_is_a_row_error(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """Python's csv refuses a cell over 128 KiB; the import refuses only its row."""
    huge = "x" * 200_000
    rows = [call(tenant, 1), call(tenant, 2, contact_name=huge), call(tenant, 3)]
    summary = import_json(
        database_url, write_csv(tmp_path / "calls.csv", rows), tenant.account_id, exit_code=1
    )
    assert counts(summary) == (2, 0, 0, 1)
    assert summary["errors"] == [
        {"line": 3, "error": "contact_name has 200000 characters, more than the 8192 allowed"}
    ]
    assert {c["sid"] for c in fetch_calls(api, tenant)} == {rows[0]["sid"], rows[2]["sid"]}


# Bounds, the same in both formats


def write_rows(path: Path, rows: list[dict[str, Any]], file_format: str) -> Path:
    """`rows` as JSON Lines or CSV, at `path` with the format's suffix."""
    if file_format == "jsonl":
        return write_jsonl(path.with_suffix(".jsonl"), rows)
    return write_csv(path.with_suffix(".csv"), rows)


def line_of_row(index: int, file_format: str) -> int:
    """The line that row `index` (from 0) is written on, below the header in a CSV."""
    return index + (1 if file_format == "jsonl" else 2)


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_fields_as_long_as_their_bounds_import(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path, file_format: str
) -> None:
    longest = call(
        tenant,
        sid="C" * MAX_SID_CHARS,
        contact_name="n" * MAX_TEXT_CHARS,
        landing_page="https://example.com/?q=" + "u" * (MAX_TEXT_CHARS - 23),
    )
    path = write_rows(tmp_path / "calls", [longest], file_format)
    assert counts(import_json(database_url, path, tenant.account_id)) == (1, 0, 0, 0)
    [shown] = fetch_calls(api, tenant)
    assert shown.items() >= longest.items()


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(
            {"sid": "C" * (MAX_SID_CHARS + 1)},
            "must be 1 to 64 visible characters, without spaces",
            id="sid",
        ),
        pytest.param(
            {"contact_name": "n" * (MAX_TEXT_CHARS + 1)},
            "contact_name has 8193 characters, more than the 8192 allowed",
            id="contact_name",
        ),
        pytest.param(
            {"referral_value": "https://example.com/" + "r" * 100_000},
            "referral_value has 100020 characters, more than the 8192 allowed",
            id="referral_value",
        ),
    ],
)
def test_a_field_beyond_its_bound_is_rejected_with_its_line_and_good_rows_are_kept(
    api: TestClient,
    database_url: str,
    tenant: Tenant,
    tmp_path: Path,
    file_format: str,
    change: dict[str, Any],
    reason: str,
) -> None:
    rows = [call(tenant, 1), call(tenant, 2, **change), call(tenant, 3)]
    path = write_rows(tmp_path / "calls", rows, file_format)
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    [error] = summary["errors"]
    assert error["line"] == line_of_row(1, file_format)
    assert reason in error["error"]
    assert len(error["error"]) < 200, "the error quotes the whole value"
    assert {c["sid"] for c in fetch_calls(api, tenant)} == {rows[0]["sid"], rows[2]["sid"]}


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
@pytest.mark.parametrize(
    "sid", [" ", " CA1", "CA1 ", "CA 1", "CA\t1", "CA\u00a01", "CA\u200b1", "CA\x7f1", "CA\x001"]
)
def test_a_sid_with_spaces_or_invisible_characters_is_refused_with_its_line(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path, file_format: str, sid: str
) -> None:
    rows = [call(tenant, 1), call(tenant, 2, sid=sid), call(tenant, 3)]
    path = write_rows(tmp_path / "calls", rows, file_format)
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    assert summary["errors"] == [
        {
            "line": line_of_row(1, file_format),
            "error": f"sid {sid!r} must be 1 to 64 visible characters, without spaces",
        }
    ]
    assert {c["sid"] for c in fetch_calls(api, tenant)} == {rows[0]["sid"], rows[2]["sid"]}


def test_a_json_line_longer_than_128_kib_is_rejected_and_the_lines_after_it_import(
    api: TestClient, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """Also the last line, without a line end: read a piece at a time, never whole."""
    rows = [call(tenant, 1), call(tenant, 2, contact_name="n" * 10_000_000), call(tenant, 3)]
    last = json.dumps(call(tenant, 4, referral_value="r" * 200_000))
    path = write_jsonl(tmp_path / "calls.jsonl", rows)
    with path.open("a") as out:
        out.write(last)
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 2)
    assert summary["errors"] == [
        {"line": 2, "error": "is longer than 128 KiB"},
        {"line": 4, "error": "is longer than 128 KiB"},
    ]
    assert {c["sid"] for c in fetch_calls(api, tenant)} == {rows[0]["sid"], rows[2]["sid"]}


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_json_line_may_be_128_kib_long_and_not_a_byte_more(
    database_url: str, tenant: Tenant, tmp_path: Path, line_end: str
) -> None:
    """Counted without its line feed (a carriage return counts); the last line may have none.
    Each line is padded with spaces, which JSON allows after a value."""
    lengths = [MAX_LINE_BYTES, MAX_LINE_BYTES + 1, MAX_LINE_BYTES]
    lines = [json.dumps(call(tenant, n)) + line_end.removesuffix("\n") for n in range(3)]
    padded = [
        line + " " * (length - len(line)) for line, length in zip(lines, lengths, strict=True)
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(padded))  # the last line without a line end
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    assert summary["errors"] == [{"line": 2, "error": "is longer than 128 KiB"}]


def test_a_csv_number_of_thousands_of_digits_is_a_row_error_not_a_crash(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    campaign = tenant.campaign.id
    path = tmp_path / "calls.csv"
    path.write_text(
        f"sid,campaign_id,start_time\nCA1,{campaign},1\nCA2,{campaign},{'9' * 5000}\n"
        f"CA3,{campaign},{'0' * 5000}3\n"
    )
    summary = import_json(database_url, path, tenant.account_id, exit_code=1)
    assert counts(summary) == (2, 0, 0, 1)
    [error] = summary["errors"]
    assert error["line"] == 3
    assert error["error"].startswith("start_time must be a non-negative integer, not '999")
    assert len(error["error"]) < 200


# A CSV refused whole


def test_a_csv_header_naming_a_field_twice_is_refused_and_nothing_is_written(
    database_url: str, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    campaign = tenant.campaign.id
    path = tmp_path / "calls.csv"
    path.write_text(f"sid,campaign_id,start_time,sid\nCA1,{campaign},1,CA2\n")
    assert_refused_whole(
        database_url,
        database,
        tenant,
        path,
        "calls.csv line 1: the header names 'sid' twice; nothing was imported",
    )


@pytest.mark.parametrize(
    "rows_after",
    [
        pytest.param([], id="at-the-end"),
        pytest.param(["CA3,{campaign},3,", "CA4,{campaign},4,"], id="before-good-rows"),
    ],
)
def test_a_csv_quote_never_closed_is_refused_with_the_line_it_opens_on(
    database_url: str, database: Database, tenant: Tenant, tmp_path: Path, rows_after: list[str]
) -> None:
    """Python's csv would close it at the end of the file, the rows after it in its cell."""
    campaign = tenant.campaign.id
    lines = [
        "sid,campaign_id,start_time,contact_name",
        f"CA1,{campaign},1,",
        f"CA2,{campaign},2,\"O'Brien",
        *(row.format(campaign=campaign) for row in rows_after),
    ]
    path = tmp_path / "calls.csv"
    path.write_text("\n".join(lines) + "\n")
    assert_refused_whole(
        database_url,
        database,
        tenant,
        path,
        "calls.csv line 3: a quote opened in this row is never closed",
    )


def test_text_after_a_closing_csv_quote_is_refused_with_its_line(
    database_url: str, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    campaign = tenant.campaign.id
    path = tmp_path / "calls.csv"
    path.write_text(
        f'sid,campaign_id,start_time,status\nCA1,{campaign},1,\nCA2,{campaign},2,"busy"x\n'
    )
    assert_refused_whole(database_url, database, tenant, path, "calls.csv line 3: ")


def test_every_rejected_row_is_in_the_json_summary(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    rows: list[Any] = ["{bad"] * 30 + [call(tenant)]
    summary = import_json(
        database_url, write_jsonl(tmp_path / "calls.jsonl", rows), tenant.account_id, exit_code=1
    )
    assert counts(summary) == (1, 0, 0, 30)
    assert [e["line"] for e in summary["errors"]] == list(range(1, 31))


def test_the_human_summary_counts_rows_and_shows_the_first_errors(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    rows: list[Any] = [call(tenant), *["{bad"] * 25]
    result = run_import(database_url, write_jsonl(tmp_path / "c.jsonl", rows), tenant.account_id)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "1 inserted, 0 updated, 0 unchanged, 25 rejected"
    assert lines[1].startswith("  line 2: not valid JSON")
    assert "line 21:" in result.stdout
    assert "line 22:" not in result.stdout
    assert lines[-1] == "  … and 5 more (use --json for all)"


def test_a_clean_import_exits_zero_with_a_one_line_summary(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    result = run_import(
        database_url, write_jsonl(tmp_path / "c.jsonl", [call(tenant)]), tenant.account_id
    )
    assert result.exit_code == 0
    assert result.stdout == "1 inserted, 0 updated, 0 unchanged, 0 rejected\n"
    assert result.stderr == ""


# Interruptions and readers


def write_big_file(path: Path, tenant: Tenant, rows: int) -> int:
    """`rows` lines, every 100th repeating an earlier sid; the number of distinct sids."""
    sids = [f"CA{n:032x}" for n in range(rows)]
    for n in range(100, rows, 100):
        sids[n] = sids[n - 57]
    with path.open("wb") as out:
        for n, sid in enumerate(sids):
            out.write(
                orjson.dumps(
                    {
                        "sid": sid,
                        "campaign_id": tenant.campaign.id,
                        "start_time": NOW_MS - n * 1000,
                        "duration": n % 600,
                        "status": "completed",
                        "from_number": f"+1212555{n % 10_000:04d}",
                        "to_number": "+18445550100",
                        "user_source": "Google Ads",
                        "gclid": f"EAIaIQobChMI{n:020d}",
                    }
                )
                + b"\n"
            )
    return len(set(sids))


def read_offset(pid: int, path: Path) -> int | None:
    """How far process `pid` has read into `path` (Linux), or None while it has not opened it."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        for fd in fd_dir.iterdir():
            if fd.resolve() == path.resolve():
                info = (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text()
                return int(info.split("pos:")[1].split()[0])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None


@pytest.mark.skipif(not Path("/proc/self/fdinfo").exists(), reason="reads /proc to time the kill")
def test_an_import_killed_midway_leaves_nothing_and_a_rerun_completes_it(
    database_url: str, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "big.jsonl"
    distinct = write_big_file(path, tenant, rows=20_000)
    account = str(tenant.account_id)
    command = [SERVER_COMMAND, "calls", "import", str(path), "--account", account, "--json"]
    command += ["--database-url", database_url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        size, deadline = path.stat().st_size, time.monotonic() + 30
        while (offset := read_offset(process.pid, path) or 0) < size // 4:
            assert process.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline, "the import never got a quarter through"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        assert offset < size, "the import read the whole file first: make the file bigger"
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert stored_sids(database, tenant.account_id) == (0, 0), "half an import is visible"

    rerun = subprocess.run(command, capture_output=True, check=False, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr == b""
    summary = json.loads(rerun.stdout)
    assert summary["inserted"] == distinct
    assert summary["rejected"] == 0
    assert stored_sids(database, tenant.account_id) == (distinct, distinct)


def test_readers_are_never_blocked_nor_shown_half_an_import(
    api: TestClient, database: Database, world: World, tenant: Tenant
) -> None:
    existing = set(world.calls(tenant, [NOW_MS - 10 * HOUR_MS, NOW_MS - 11 * HOUR_MS]))
    halfway, resume = threading.Event(), threading.Event()
    new_sids = [new_sid() for _ in range(2500)]

    def records() -> Iterator[tuple[int, Any]]:
        for line, sid in enumerate(new_sids, start=1):
            if line == 1501:  # past the first batches written to the database
                halfway.set()
                resume.wait(timeout=60)
            yield line, {"sid": sid, "campaign_id": tenant.campaign.id, "start_time": NOW_MS - line}

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["report"] = import_calls(database, tenant.account_id, records())
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert halfway.wait(timeout=60)
        started = time.monotonic()
        during = {c["sid"] for c in fetch_calls(api, tenant)}
        companies = api.get("/companies", auth=tenant.auth)
        elapsed = time.monotonic() - started
    finally:
        resume.set()
        worker.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert during == existing
    assert companies.status_code == 200
    assert elapsed < 2, f"readers waited {elapsed:.1f} s for the import"
    assert outcome["report"].inserted == len(new_sids)
    assert {c["sid"] for c in fetch_calls(api, tenant)} == existing | set(new_sids)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_sees_a_progress_bar_on_stderr_and_stdout_keeps_the_summary(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    import pty

    path = write_jsonl(tmp_path / "calls.jsonl", [call(tenant, n) for n in range(1, 5001)])
    terminal, stderr = pty.openpty()
    try:
        done = subprocess.run(
            [SERVER_COMMAND, "calls", "import", str(path), "--account", str(tenant.account_id)],
            env={**os.environ, "PHONEWAGON_DATABASE_URL": database_url},
            stdout=subprocess.PIPE,
            stderr=stderr,
            check=False,
            timeout=60,
        )
        os.close(stderr)
        shown = b""
        while True:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # the terminal is closed once everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(terminal)
    assert done.returncode == 0
    assert done.stdout == b"5000 inserted, 0 updated, 0 unchanged, 0 rejected\n"
    assert b"Importing calls.jsonl" in shown
    assert b"100%" in shown
