"""Tracking numbers: `numbers add|list|remove`."""

from __future__ import annotations

from dataclasses import asdict

import click

from phonewagon_server.cli.options import (
    database_option,
    emit,
    json_option,
    now_ms,
    opened_database,
)
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db import numbers as number_rows
from phonewagon_server.db.numbers import TrackingNumber
from phonewagon_server.phones import InvalidNumber, normalize_number

MAX_SOURCE_CHARS = 200


def _e164(text: str, hint: str) -> str:
    try:
        return normalize_number(text)
    except InvalidNumber as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from exc


def _shown(number: TrackingNumber) -> dict[str, object]:
    shown = asdict(number)
    del shown["account_id"]
    return shown


def _line(number: TrackingNumber) -> str:
    source = f", source {number.source!r}" if number.source else ""
    return (
        f"{number.number}  campaign {number.campaign_id} (company {number.company_id},"
        f" account {number.account_id}) → {number.forward_to}{source}"
    )


@click.group()
def numbers() -> None:
    """Tracking numbers: each rings in one campaign and forwards to the business."""


@numbers.command("add")
@click.argument("number")
@click.option("--campaign", "campaign_id", required=True, help="The campaign its calls go to.")
@click.option("--forward-to", required=True, help="Where its calls ring: the business's number.")
@click.option("--source", default="", help="Its calls' user_source (default: the campaign's name).")
@database_option
@json_option
def add_number(
    number: str,
    campaign_id: str,
    forward_to: str,
    source: str,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Add a tracking number, e.g. `numbers add '(844) 555-0102' --campaign s1001
    --forward-to +15035550100`; stored in E.164 (+18445550102)."""
    tracking = _e164(number, "NUMBER")
    forward = _e164(forward_to, "--forward-to")
    if tracking == forward:
        raise click.BadParameter("a number cannot forward to itself", param_hint="--forward-to")
    source = source.strip()
    if len(source) > MAX_SOURCE_CHARS or not source.isprintable():
        raise click.BadParameter(
            f"use up to {MAX_SOURCE_CHARS} printable characters", param_hint="--source"
        )
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        campaign = company_rows.get_campaign(tx, campaign_id)
        if campaign is None:
            raise click.ClickException(f"there is no campaign {campaign_id}")
        added = TrackingNumber(
            number=tracking,
            account_id=campaign.account_id,
            company_id=campaign.company_id,
            campaign_id=campaign.id,
            forward_to=forward,
            source=source,
        )
        if not number_rows.add_number(tx, added, now=now_ms()):
            taken = number_rows.find_number(tx, tracking)
            where = f" by campaign {taken.campaign_id}" if taken else ""
            raise click.ClickException(f"{tracking} is already taken{where}")
    emit(as_json, _shown(added), f"Added {_line(added)}")


@numbers.command("list")
@click.option("--account", "account_id", type=int, help="Only this account's numbers.")
@database_option
@json_option
def list_numbers(account_id: int | None, database_url: str | None, as_json: bool) -> None:
    """List the tracking numbers."""
    with opened_database(database_url) as database, database.transaction() as tx:
        found = number_rows.list_numbers(tx, account_id)
    emit(
        as_json,
        {"numbers": [{**_shown(n), "account_id": n.account_id} for n in found]},
        "\n".join(_line(n) for n in found) or "no numbers",
    )


@numbers.command("remove")
@click.argument("number")
@database_option
@json_option
def remove_number(number: str, database_url: str | None, as_json: bool) -> None:
    """Remove a tracking number; its calls stay. Calls to it are then declined."""
    tracking = _e164(number, "NUMBER")
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        if not number_rows.remove_number(tx, tracking):
            raise click.ClickException(f"there is no number {tracking}")
    emit(as_json, {"number": tracking, "removed": True}, f"Removed {tracking}; its calls stay.")
