"""Website visits: `dni snippet|origins|purge` (docs/dni.md)."""

from __future__ import annotations

import click

from phonewagon_server.cli.options import (
    database_option,
    emit,
    json_option,
    now_ms,
    opened_database,
)
from phonewagon_server.config import Settings, parse_origins
from phonewagon_server.db import Connection
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.pools import Site
from phonewagon_server.dni import snippet as tags
from phonewagon_server.dni.purge import purge_visits
from phonewagon_server.errors import ConfigurationError

COMPANY = click.option("--company", "company_id", type=int, required=True, help="Company id.")


def _site(tx: Connection, company_id: int) -> Site:
    """The company's site, its key made on first use; a clear error for no such company."""
    if company_rows.get_company(tx, company_id) is None:
        raise click.ClickException(f"there is no company {company_id}")
    return pool_rows.ensure_site(tx, company_id, now=now_ms())


@click.group()
def dni() -> None:
    """Website visits: the snippet for a company's site, its allowed origins, the purge."""


@dni.command("snippet")
@COMPANY
@database_option
@json_option
def snippet(company_id: int, database_url: str | None, as_json: bool) -> None:
    """Print the <script> tag to paste into every page of the company's site."""
    public_url = Settings.from_env().public_url
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        site = _site(tx, company_id)
    tag = tags.snippet(public_url, site.key)
    emit(as_json, {"snippet": tag, "key": site.key}, tag)


@dni.command("origins")
@COMPANY
@click.argument("origins", nargs=-1, metavar="[ORIGIN]...")
@click.option("--clear", is_flag=True, help="Allow any origin again.")
@database_option
@json_option
def origins(
    company_id: int, origins: tuple[str, ...], clear: bool, database_url: str | None, as_json: bool
) -> None:
    """Set the origins (https://www.example.com) whose pages may record visits; without
    ORIGIN, print them. None set: any origin may."""
    if clear and origins:
        raise click.UsageError("give origins or --clear, not both")
    try:
        wanted = parse_origins(",".join(origins))
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="ORIGIN") from exc
    if "*" in wanted:
        raise click.BadParameter("use --clear to allow any origin", param_hint="ORIGIN")
    changing = clear or bool(wanted)
    with opened_database(database_url) as database, database.transaction(write=changing) as tx:
        if changing:
            site = _site(tx, company_id)
            pool_rows.set_origins(tx, company_id, tuple(dict.fromkeys(wanted)))
        elif company_rows.get_company(tx, company_id) is None:
            raise click.ClickException(f"there is no company {company_id}")
        site = pool_rows.site_of_company(tx, company_id) or Site(company_id, "", ())
    shown = list(site.origins)
    human = "\n".join(shown) or "any origin may record visits"
    emit(as_json, {"company_id": company_id, "origins": shown}, human)


@dni.command("purge")
@database_option
@json_option
def purge(database_url: str | None, as_json: bool) -> None:
    """Delete the visits older than the attribution window, in short batches."""
    days = Settings.from_env().attribution_days
    with opened_database(database_url) as database:
        purged = purge_visits(database, now=now_ms(), attribution_days=days)
    emit(
        as_json,
        {"visits": purged.visits, "holds": purged.holds, "attribution_days": days},
        f"Deleted {purged.visits} visits and {purged.holds} holds older than {days} days.",
    )
