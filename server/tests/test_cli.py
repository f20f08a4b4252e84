"""The operator CLI: exact `--json` shapes, credentials that work, and bad input refused cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from phonewagon_server.cli import main
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from server_testkit import FakeClock

SERVER_COMMAND = str(Path(sys.executable).with_name("phonewagon-server"))


def run(database_url: str, *args: str) -> Result:
    """`phonewagon-server ARGS --database-url URL`, in process; a traceback fails the test."""
    return CliRunner().invoke(main, [*args, "--database-url", database_url], catch_exceptions=False)


def run_json(database_url: str, *args: str) -> dict[str, Any]:
    """The one JSON object a successful `--json` command prints, and nothing else."""
    result = run(database_url, *args, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.endswith("\n")
    assert result.stdout.count("\n") == 1, "stdout must be one line"
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def assert_shape(payload: dict[str, Any], shape: dict[str, type | tuple[type, ...]]) -> None:
    """Exactly these keys, each of exactly this type (a bool is not an int)."""
    assert set(payload) == set(shape)
    for key, expected in shape.items():
        types = expected if isinstance(expected, tuple) else (expected,)
        assert type(payload[key]) in types, f"{key}: {payload[key]!r} is not {expected}"


def assert_refused(result: Result, *, exit_code: int, message: str) -> None:
    """Non-zero exit, the reason on stderr, nothing on stdout and no traceback."""
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.output


def count_rows(database: Database, table: str) -> int:
    with database.transaction() as tx:
        row = tx.fetchone(f"SELECT COUNT(*) FROM {table}")
    assert row is not None
    return int(row[0])


def create_account(database_url: str, name: str = "Acme Agency") -> dict[str, Any]:
    return run_json(database_url, "accounts", "create", name)


def create_company(database_url: str, account_id: int, name: str = "Acme Plumbing") -> int:
    created = run_json(database_url, "companies", "create", "--account", str(account_id), name)
    return int(created["id"])


def campaigns_create(company_id: int, name: str, *options: str) -> tuple[str, ...]:
    """The arguments of `campaigns create --company ID NAME OPTIONS`."""
    return ("campaigns", "create", "--company", str(company_id), name, *options)


# --json shapes


def test_accounts_create_prints_the_account_and_its_first_credential(database_url: str) -> None:
    created = create_account(database_url, "Acme Agency")
    assert_shape(created, {"account_id": int, "name": str, "client_id": str, "client_secret": str})
    assert created["name"] == "Acme Agency"
    assert created["client_id"].startswith("pwid_")
    assert created["client_secret"].startswith("pwsk_")
    assert len(created["client_secret"]) >= 40


def test_account_names_are_stored_trimmed(database_url: str) -> None:
    created = create_account(database_url, "  Acme Agency ")
    assert created["name"] == "Acme Agency"
    listed = run_json(database_url, "accounts", "list")
    assert listed == {"accounts": [{"id": created["account_id"], "name": "Acme Agency"}]}


def test_credentials_create_prints_a_new_credential(database_url: str) -> None:
    account = create_account(database_url)
    created = run_json(
        database_url, "credentials", "create", "--account", str(account["account_id"])
    )
    assert_shape(created, {"account_id": int, "client_id": str, "client_secret": str, "name": str})
    assert created["account_id"] == account["account_id"]
    assert created["client_id"] != account["client_id"]
    assert created["client_secret"] != account["client_secret"]


def test_credentials_create_takes_a_name_that_list_shows(database_url: str) -> None:
    account = create_account(database_url)
    account_id = str(account["account_id"])
    created = run_json(
        database_url, "credentials", "create", "--account", account_id, "--name", " Looker  export "
    )
    assert created["name"] == "Looker export"
    listed = run_json(database_url, "credentials", "list", "--account", account_id)
    names = {c["client_id"]: c["name"] for c in listed["credentials"]}
    assert names == {account["client_id"]: "", created["client_id"]: "Looker export"}


def test_credentials_revoke_prints_what_it_revoked(database_url: str) -> None:
    account = create_account(database_url)
    revoked = run_json(database_url, "credentials", "revoke", account["client_id"])
    assert_shape(revoked, {"account_id": int, "client_id": str, "revoked_at": int})
    assert revoked["account_id"] == account["account_id"]
    assert revoked["client_id"] == account["client_id"]


def test_revoking_twice_keeps_the_first_revocation_time(database_url: str) -> None:
    account = create_account(database_url)
    first = run_json(database_url, "credentials", "revoke", account["client_id"])
    again = run_json(database_url, "credentials", "revoke", account["client_id"])
    assert again == first


def test_credentials_list_shows_each_credential_and_whether_it_is_active(database_url: str) -> None:
    account = create_account(database_url)
    account_id = str(account["account_id"])
    second = run_json(database_url, "credentials", "create", "--account", account_id)
    run_json(database_url, "credentials", "revoke", account["client_id"])
    listed = run_json(database_url, "credentials", "list", "--account", account_id)
    assert_shape(listed, {"account_id": int, "credentials": list})
    for credential in listed["credentials"]:
        assert_shape(
            credential,
            {
                "client_id": str,
                "name": str,
                "created_at": int,
                "last_used_at": (int, type(None)),
                "revoked_at": (int, type(None)),
                "active": bool,
            },
        )
    by_id = {c["client_id"]: c for c in listed["credentials"]}
    assert set(by_id) == {account["client_id"], second["client_id"]}
    assert by_id[account["client_id"]]["active"] is False
    assert by_id[second["client_id"]] | {"created_at": 0} == {
        "client_id": second["client_id"],
        "name": "",
        "created_at": 0,
        "last_used_at": None,
        "revoked_at": None,
        "active": True,
    }


def test_companies_create_prints_the_company(database_url: str) -> None:
    account = create_account(database_url)
    created = run_json(
        database_url, "companies", "create", "--account", str(account["account_id"]), "Acme Co"
    )
    assert_shape(created, {"id": int, "name": str, "account_id": int})
    assert created["name"] == "Acme Co"
    assert created["account_id"] == account["account_id"]


def test_campaigns_create_prints_the_campaign_with_the_id_asked_for(database_url: str) -> None:
    account = create_account(database_url)
    company_id = create_company(database_url, account["account_id"])
    created = run_json(database_url, *campaigns_create(company_id, "Google Ads", "--id", "s2212"))
    assert created == {"id": "s2212", "name": "Google Ads", "company_id": company_id}


def test_campaigns_create_picks_a_string_id_when_none_is_given(database_url: str) -> None:
    account = create_account(database_url)
    company_id = create_company(database_url, account["account_id"])
    first = run_json(database_url, "campaigns", "create", "--company", str(company_id), "Bing Ads")
    second = run_json(database_url, "campaigns", "create", "--company", str(company_id), "Yelp")
    for created in (first, second):
        assert_shape(created, {"id": str, "name": str, "company_id": int})
    assert first["id"] != second["id"]


def test_list_commands_print_what_was_created(database_url: str) -> None:
    account = create_account(database_url)
    account_id = account["account_id"]
    first = create_company(database_url, account_id, "First Co")
    second = create_company(database_url, account_id, "Second Co")
    for company, campaign_id in ((first, "s1"), (second, "s2")):
        run_json(database_url, *campaigns_create(company, "Direct", "--id", campaign_id))
    assert run_json(database_url, "accounts", "list") == {
        "accounts": [{"id": account_id, "name": "Acme Agency"}]
    }
    assert run_json(database_url, "companies", "list", "--account", str(account_id)) == {
        "companies": [{"id": first, "name": "First Co"}, {"id": second, "name": "Second Co"}]
    }
    assert run_json(database_url, "campaigns", "list", "--account", str(account_id)) == {
        "campaigns": [
            {"id": "s1", "name": "Direct", "company_id": first},
            {"id": "s2", "name": "Direct", "company_id": second},
        ]
    }
    only_second = run_json(
        database_url, "campaigns", "list", "--account", str(account_id), "--company", str(second)
    )
    assert only_second == {"campaigns": [{"id": "s2", "name": "Direct", "company_id": second}]}


def test_db_upgrade_migrates_once_and_db_status_reports_the_version(database_url: str) -> None:
    before = run_json(database_url, "db", "status")
    assert_shape(before, {"version": int, "latest": int})
    assert before["version"] == 0
    latest = before["latest"]
    first = run_json(database_url, "db", "upgrade")
    assert_shape(first, {"applied": list, "version": int})
    assert first == {"applied": list(range(1, latest + 1)), "version": latest}
    assert run_json(database_url, "db", "upgrade") == {"applied": [], "version": latest}
    assert run_json(database_url, "db", "status") == {"version": latest, "latest": latest}


def test_db_status_tells_people_how_to_upgrade(database_url: str) -> None:
    result = run(database_url, "db", "status")
    assert result.exit_code == 0
    assert "phonewagon-server db upgrade" in result.stdout
    run(database_url, "db", "upgrade")
    assert "db upgrade" not in run(database_url, "db", "status").stdout


# Credentials against the API


def test_a_created_account_can_call_the_api_at_once(api: TestClient, database_url: str) -> None:
    account = create_account(database_url)
    company_id = create_company(database_url, account["account_id"], "Acme Co")
    response = api.get("/companies", auth=(account["client_id"], account["client_secret"]))
    assert response.status_code == 200
    assert response.json() == {"companies": [{"id": company_id, "name": "Acme Co"}]}


def test_several_credentials_work_at_once_and_revoking_one_spares_the_others(
    api: TestClient, database_url: str, clock: FakeClock, settings: Settings
) -> None:
    account = create_account(database_url)
    account_id = str(account["account_id"])
    second = run_json(database_url, "credentials", "create", "--account", account_id)
    third = run_json(database_url, "credentials", "create", "--account", account_id)
    auths = [(c["client_id"], c["client_secret"]) for c in (account, second, third)]
    assert [api.get("/companies", auth=auth).status_code for auth in auths] == [200, 200, 200]

    run_json(database_url, "credentials", "revoke", second["client_id"])
    clock.advance(settings.credential_cache_seconds)  # the server trusts a verified one that long

    revoked = api.get("/companies", auth=auths[1])
    assert revoked.status_code == 401
    assert revoked.headers["www-authenticate"].startswith('Basic realm="phonewagon"')
    assert [api.get("/companies", auth=auths[i]).status_code for i in (0, 2)] == [200, 200]


def test_a_credential_only_reaches_its_own_account(api: TestClient, database_url: str) -> None:
    mine = create_account(database_url, "Mine")
    theirs = create_account(database_url, "Theirs")
    create_company(database_url, theirs["account_id"], "Their Co")
    response = api.get("/companies", auth=(mine["client_id"], mine["client_secret"]))
    assert response.json() == {"companies": []}


def test_campaigns_created_by_the_cli_are_served(api: TestClient, database_url: str) -> None:
    account = create_account(database_url)
    company_id = create_company(database_url, account["account_id"])
    run_json(database_url, *campaigns_create(company_id, "Google Ads", "--id", "s2212"))
    response = api.get(
        "/campaigns",
        params={"company_id": company_id},
        auth=(account["client_id"], account["client_secret"]),
    )
    assert response.json() == {"campaigns": [{"id": "s2212", "name": "Google Ads"}]}


# Output for people


def test_account_creation_shows_the_secret_once_with_a_warning(database_url: str) -> None:
    result = run(database_url, "accounts", "create", "Acme Agency")
    assert result.exit_code == 0
    secrets = [word for word in result.stdout.split() if word.startswith("pwsk_")]
    assert len(secrets) == 1
    assert "client id:" in result.stdout
    assert "only this once" in result.stdout
    assert "{" not in result.stdout


def test_credential_creation_shows_the_secret_once(database_url: str) -> None:
    account = create_account(database_url)
    result = run(database_url, "credentials", "create", "--account", str(account["account_id"]))
    assert result.exit_code == 0
    secrets = [word for word in result.stdout.split() if word.startswith("pwsk_")]
    assert len(secrets) == 1
    assert secrets[0] != account["client_secret"]


def test_credentials_list_never_shows_a_secret(database_url: str) -> None:
    account = create_account(database_url)
    account_id = str(account["account_id"])
    second = run_json(database_url, "credentials", "create", "--account", account_id)
    run_json(database_url, "credentials", "revoke", account["client_id"])
    for extra in ((), ("--json",)):
        result = run(database_url, "credentials", "list", "--account", account_id, *extra)
        assert result.exit_code == 0
        assert account["client_id"] in result.stdout
        assert second["client_id"] in result.stdout
        assert account["client_secret"] not in result.output
        assert second["client_secret"] not in result.output
        assert "pwsk_" not in result.output
    human = run(database_url, "credentials", "list", "--account", account_id).stdout
    assert f"{account['client_id']}  revoked" in human
    assert f"{second['client_id']}  active" in human


def test_human_output_of_each_creation_names_what_was_created(database_url: str) -> None:
    account = create_account(database_url)
    company = run(database_url, "companies", "create", "--account", str(account["account_id"]), "X")
    assert company.exit_code == 0
    assert company.stdout.startswith("Created company ")
    company_id = company.stdout.split()[2]
    campaign = run(
        database_url, "campaigns", "create", "--company", company_id, "Yelp", "--id", "yelp-1"
    )
    assert campaign.stdout == f"Created campaign yelp-1 (Yelp) in company {company_id}.\n"


# Bad input: refused clearly, nothing written


def test_unknown_account_is_refused_and_nothing_is_written(
    database_url: str, database: Database
) -> None:
    for args in (
        ("credentials", "create", "--account", "999"),
        ("credentials", "list", "--account", "999"),
        ("companies", "create", "--account", "999", "Acme"),
        ("companies", "list", "--account", "999"),
        ("campaigns", "list", "--account", "999"),
    ):
        assert_refused(run(database_url, *args, "--json"), exit_code=1, message="no account 999")
    assert count_rows(database, "credentials") == 0
    assert count_rows(database, "companies") == 0


def test_unknown_company_is_refused_and_nothing_is_written(
    database_url: str, database: Database
) -> None:
    result = run(database_url, "campaigns", "create", "--company", "999", "Google Ads", "--json")
    assert_refused(result, exit_code=1, message="no company 999")
    assert count_rows(database, "campaigns") == 0


def test_revoking_an_unknown_credential_is_refused(database_url: str) -> None:
    result = run(database_url, "credentials", "revoke", "pwid_nosuchcredential", "--json")
    assert_refused(result, exit_code=1, message="no credential pwid_nosuchcredential")


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_blank_names_are_refused_and_nothing_is_written(
    database_url: str, database: Database, name: str
) -> None:
    account = create_account(database_url)
    company_id = create_company(database_url, account["account_id"])
    for args in (
        ("accounts", "create", name),
        ("companies", "create", "--account", str(account["account_id"]), name),
        ("campaigns", "create", "--company", str(company_id), name),
    ):
        assert_refused(run(database_url, *args, "--json"), exit_code=2, message="must not be blank")
    assert count_rows(database, "accounts") == 1
    assert count_rows(database, "companies") == 1
    assert count_rows(database, "campaigns") == 0


def test_a_taken_campaign_id_is_refused_even_in_another_account(
    database_url: str, database: Database
) -> None:
    mine = create_company(database_url, create_account(database_url, "Mine")["account_id"])
    theirs = create_company(database_url, create_account(database_url, "Theirs")["account_id"])
    run_json(database_url, "campaigns", "create", "--company", str(mine), "Yelp", "--id", "s2212")
    for company in (mine, theirs):
        result = run(database_url, *campaigns_create(company, "Other", "--id", "s2212", "--json"))
        assert_refused(result, exit_code=1, message="'s2212' is already taken")
    assert count_rows(database, "campaigns") == 1


@pytest.mark.parametrize(
    "campaign_id", ["", "has space", "s" * 65, "s22é", "a/b", "s1;DROP", "s1\n", "../x"]
)
def test_a_malformed_campaign_id_is_refused(
    database_url: str, database: Database, campaign_id: str
) -> None:
    company_id = create_company(database_url, create_account(database_url)["account_id"])
    result = run(database_url, *campaigns_create(company_id, "Yelp", "--id", campaign_id, "--json"))
    assert_refused(result, exit_code=2, message="Invalid value for --id")
    assert count_rows(database, "campaigns") == 0


def test_the_longest_allowed_campaign_id_is_accepted(database_url: str) -> None:
    company_id = create_company(database_url, create_account(database_url)["account_id"])
    campaign_id = "A-z_9" + "x" * 59
    created = run_json(database_url, *campaigns_create(company_id, "Yelp", "--id", campaign_id))
    assert created["id"] == campaign_id


@pytest.mark.parametrize("value", ["abc", "1.5", ""])
def test_a_non_integer_account_id_is_a_usage_error(sqlite_url: str, value: str) -> None:
    result = run(sqlite_url, "companies", "create", "--account", value, "Acme", "--json")
    assert_refused(result, exit_code=2, message="--account")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/phonewagon", "scheme 'mysql' is not supported"),
        ("http://example.com/db", "scheme 'http' is not supported"),
        ("sqlite://", "needs a file"),
    ],
)
def test_an_unsupported_database_url_is_a_usage_error(url: str, message: str) -> None:
    result = run(url, "accounts", "list", "--json")
    assert_refused(result, exit_code=2, message=message)


def test_the_database_url_can_come_from_the_environment(sqlite_url: str) -> None:
    runner = CliRunner(env={"PHONEWAGON_DATABASE_URL": sqlite_url})
    created = runner.invoke(main, ["accounts", "create", "Acme", "--json"])
    assert created.exit_code == 0, created.output
    listed = runner.invoke(main, ["accounts", "list", "--json"])
    assert json.loads(listed.stdout)["accounts"][0]["name"] == "Acme"


def test_the_installed_command_prints_one_json_object_and_nothing_on_stderr(
    sqlite_url: str,
) -> None:
    env = {**os.environ, "PHONEWAGON_DATABASE_URL": sqlite_url}
    done = subprocess.run(
        [SERVER_COMMAND, "accounts", "create", "Acme", "--json"],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout.count(b"\n") == 1
    assert_shape(
        json.loads(done.stdout),
        {"account_id": int, "name": str, "client_id": str, "client_secret": str},
    )


def test_the_installed_command_reports_an_unreachable_database_without_a_traceback() -> None:
    env = {**os.environ, "PHONEWAGON_DATABASE_URL": "postgresql://pw:hunter2@127.0.0.1:1/pw"}
    done = subprocess.run(
        [SERVER_COMMAND, "accounts", "list", "--json"],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == b""
    assert b"Error: cannot use the database at postgresql://pw:***@127.0.0.1:1/pw: " in done.stderr
    assert b"Connection refused" in done.stderr
    assert b"Traceback" not in done.stderr
    assert b"hunter2" not in done.stderr


def test_flags_win_over_the_environment_without_reading_it(tmp_path: Path) -> None:
    """A wrong PHONEWAGON_* variable does not stop a command whose flag replaces it."""
    env = {
        **os.environ,
        "PHONEWAGON_RATE_LIMIT": "lots",
        "PHONEWAGON_WORKERS": "2",
        "PHONEWAGON_DATABASE_URL": "nosuchscheme://x",
    }
    done = subprocess.run(
        [
            SERVER_COMMAND,
            "demo",
            "--no-serve",
            "--rate-limit",
            "5/minute",
            "--workers",
            "1",
            "--database-url",
            f"sqlite:///{tmp_path / 'demo.db'}",
        ],
        env=env,
        cwd=tmp_path,  # where the demo writes its recordings
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "client secret" in done.stdout
