"""Accounts, credentials, companies and campaigns."""

from __future__ import annotations

import click

from phonewagon_server.cli.options import (
    database_option,
    emit,
    json_option,
    now_ms,
    opened_database,
)
from phonewagon_server.db import Connection
from phonewagon_server.db import accounts as account_rows
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.errors import NotFound
from phonewagon_server.models import Account, Company
from phonewagon_server.phones import InvalidNumber, normalize_number
from phonewagon_server.renames import rename_campaign_and_calls

ACCOUNT = click.option("--account", "account_id", type=int, required=True, help="Account id.")
NAME = click.argument("name")


def _non_blank(name: str) -> str:
    if not name.strip():
        raise click.BadParameter("must not be blank", param_hint="NAME")
    return name.strip()


def _require_account(tx: Connection, account_id: int) -> Account:
    account = account_rows.get_account(tx, account_id)
    if account is None:
        raise click.ClickException(f"there is no account {account_id}")
    return account


def _new_credential(tx: Connection, account_id: int, name: str = "") -> tuple[str, str]:
    credential, secret = account_rows.issue_credential(tx, account_id, now=now_ms(), name=name)
    return credential.client_id, secret


def _show_secret(client_id: str, secret: str) -> str:
    return (
        f"client id:     {client_id}\n"
        f"client secret: {secret}\n"
        "The secret is shown only this once: store it now."
    )


@click.group()
def accounts() -> None:
    """API accounts."""


@accounts.command("create")
@NAME
@database_option
@json_option
def create_account(name: str, database_url: str | None, as_json: bool) -> None:
    """Create an account and its first credential."""
    name = _non_blank(name)
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        account = account_rows.create_account(tx, name, now=now_ms())
        client_id, secret = _new_credential(tx, account.id)
    emit(
        as_json,
        {"account_id": account.id, "name": name, "client_id": client_id, "client_secret": secret},
        f"Created account {account.id} ({name}).\n{_show_secret(client_id, secret)}",
    )


@accounts.command("list")
@database_option
@json_option
def list_accounts(database_url: str | None, as_json: bool) -> None:
    """List every account."""
    with opened_database(database_url) as database, database.transaction() as tx:
        found = account_rows.list_accounts(tx)
    lines = [f"{a.id:>8}  {a.name}" for a in found] or ["no accounts yet"]
    emit(as_json, {"accounts": [{"id": a.id, "name": a.name} for a in found]}, "\n".join(lines))


@click.group()
def credentials() -> None:
    """API credentials: several may be active at once, so they rotate without downtime."""


@credentials.command("create")
@ACCOUNT
@click.option("--name", default="", help="What it is for, as the web app shows it.")
@database_option
@json_option
def create_credential(account_id: int, name: str, database_url: str | None, as_json: bool) -> None:
    """Create another credential for an account."""
    name = " ".join(name.split())
    if len(name) > 100:
        raise click.BadParameter("use at most 100 characters", param_hint="--name")
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        _require_account(tx, account_id)
        client_id, secret = _new_credential(tx, account_id, name)
    emit(
        as_json,
        {"account_id": account_id, "client_id": client_id, "client_secret": secret, "name": name},
        f"Created a credential for account {account_id}.\n{_show_secret(client_id, secret)}",
    )


@credentials.command("revoke")
@click.argument("client_id")
@database_option
@json_option
def revoke_credential(client_id: str, database_url: str | None, as_json: bool) -> None:
    """Revoke a credential at once; requests made with it are refused from then on."""
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        credential = account_rows.revoke_credential(tx, client_id, now=now_ms())
    if credential is None:
        raise click.ClickException(f"there is no credential {client_id}")
    emit(
        as_json,
        {
            "account_id": credential.account_id,
            "client_id": client_id,
            "revoked_at": credential.revoked_at,
        },
        f"Revoked {client_id} of account {credential.account_id}.",
    )


@credentials.command("list")
@ACCOUNT
@database_option
@json_option
def list_credentials(account_id: int, database_url: str | None, as_json: bool) -> None:
    """List an account's credentials (never their secrets)."""
    with opened_database(database_url) as database, database.transaction() as tx:
        _require_account(tx, account_id)
        found = account_rows.list_credentials(tx, account_id)
    payload = {
        "account_id": account_id,
        "credentials": [
            {
                "client_id": c.client_id,
                "name": c.name,
                "created_at": c.created_at,
                "last_used_at": c.last_used_at,
                "revoked_at": c.revoked_at,
                "active": c.active,
            }
            for c in found
        ],
    }
    lines = [f"{c.client_id}  {'active' if c.active else 'revoked'}  {c.name}" for c in found]
    emit(as_json, payload, "\n".join(lines) or "no credentials")


@click.group()
def companies() -> None:
    """Companies of an account."""


@companies.command("create")
@ACCOUNT
@NAME
@database_option
@json_option
def create_company(account_id: int, name: str, database_url: str | None, as_json: bool) -> None:
    """Create a company in an account."""
    name = _non_blank(name)
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        _require_account(tx, account_id)
        company = company_rows.create_company(tx, account_id=account_id, name=name, now=now_ms())
    emit(
        as_json,
        {"id": company.id, "name": name, "account_id": account_id},
        f"Created company {company.id} ({name}) in account {account_id}.",
    )


@companies.command("list")
@ACCOUNT
@database_option
@json_option
def list_companies(account_id: int, database_url: str | None, as_json: bool) -> None:
    """List an account's companies."""
    with opened_database(database_url) as database, database.transaction() as tx:
        _require_account(tx, account_id)
        found = company_rows.list_companies(tx, account_id)
    lines = [f"{c.id:>8}  {c.name}" for c in found] or ["no companies"]
    emit(as_json, {"companies": [{"id": c.id, "name": c.name} for c in found]}, "\n".join(lines))


@companies.command("rename")
@click.argument("company_id", type=int, metavar="ID")
@NAME
@database_option
@json_option
def rename_company(company_id: int, name: str, database_url: str | None, as_json: bool) -> None:
    """Rename a company."""
    name = _non_blank(name)
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        company = _require_company(tx, company_id)
        company_rows.rename_company(tx, company_id, name)
    emit(
        as_json,
        {"id": company_id, "name": name, "account_id": company.account_id},
        f"Renamed company {company_id} to {name}.",
    )


@click.group()
def campaigns() -> None:
    """Campaigns of a company."""


@campaigns.command("create")
@click.option("--company", "company_id", type=int, required=True, help="Company id.")
@NAME
@click.option("--id", "campaign_id", help="The campaign id (default: the next free sNNNN).")
@click.option(
    "--swap-target",
    help="Make it a website pool: the business number on the site, which visitors see replaced"
    " by the campaign's numbers.",
)
@database_option
@json_option
def create_campaign(
    company_id: int,
    name: str,
    campaign_id: str | None,
    swap_target: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Create a campaign in a company; with --swap-target, a website pool (docs/dni.md)."""
    name = _non_blank(name)
    if campaign_id is not None and not _valid_campaign_id(campaign_id):
        raise click.BadParameter("use 1 to 64 letters, digits, '-' or '_'", param_hint="--id")
    if swap_target is not None:
        try:
            swap_target = normalize_number(swap_target)
        except InvalidNumber as exc:
            raise click.BadParameter(str(exc), param_hint="--swap-target") from exc
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        company = _require_company(tx, company_id)
        if campaign_id is not None and company_rows.campaign_exists(tx, campaign_id):
            raise click.ClickException(f"campaign id {campaign_id!r} is already taken")
        campaign = company_rows.create_campaign(
            tx, company=company, name=name, campaign_id=campaign_id, now=now_ms()
        )
        if swap_target is not None:
            pool_rows.set_swap_target(tx, campaign.id, swap_target)
            pool_rows.ensure_site(tx, company_id, now=now_ms())
    pool = f", a website pool swapping {swap_target}" if swap_target else ""
    emit(
        as_json,
        {"id": campaign.id, "name": name, "company_id": company_id}
        | ({"swap_target": swap_target} if swap_target else {}),
        f"Created campaign {campaign.id} ({name}) in company {company_id}{pool}.",
    )


@campaigns.command("list")
@ACCOUNT
@click.option("--company", "company_id", type=int, help="Only this company's campaigns.")
@database_option
@json_option
def list_campaigns(
    account_id: int, company_id: int | None, database_url: str | None, as_json: bool
) -> None:
    """List an account's campaigns."""
    with opened_database(database_url) as database, database.transaction() as tx:
        _require_account(tx, account_id)
        found = company_rows.list_campaigns(tx, account_id, company_id=company_id)
        targets = pool_rows.swap_targets(tx, account_id)
    payload = {
        "campaigns": [
            {"id": c.id, "name": c.name, "company_id": c.company_id}
            | ({"swap_target": targets[c.id]} if c.id in targets else {})
            for c in found
        ]
    }
    lines = [
        f"{c.id:>10}  {c.name}  (company {c.company_id})"
        + (f"  pool, swaps {targets[c.id]}" if c.id in targets else "")
        for c in found
    ]
    emit(as_json, payload, "\n".join(lines) or "no campaigns")


@campaigns.command("rename")
@click.argument("campaign_id", metavar="ID")
@NAME
@database_option
@json_option
def rename_campaign(campaign_id: str, name: str, database_url: str | None, as_json: bool) -> None:
    """Rename a campaign, and write its calls again with the new name, in short batches."""
    name = _non_blank(name)
    with opened_database(database_url) as database:
        try:
            campaign, written = rename_campaign_and_calls(database, campaign_id, name)
        except NotFound as exc:
            raise click.ClickException(f"there is no campaign {campaign_id}") from exc
    emit(
        as_json,
        {"id": campaign.id, "name": name, "company_id": campaign.company_id, "calls": written},
        f"Renamed campaign {campaign.id} to {name}; {written} calls now show it.",
    )


def _require_company(tx: Connection, company_id: int) -> Company:
    company = company_rows.get_company(tx, company_id)
    if company is None:
        raise click.ClickException(f"there is no company {company_id}")
    return company


def _valid_campaign_id(campaign_id: str) -> bool:
    return 1 <= len(campaign_id) <= 64 and all(
        ch.isascii() and (ch.isalnum() or ch in "-_") for ch in campaign_id
    )
