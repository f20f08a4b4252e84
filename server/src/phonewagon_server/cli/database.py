"""`phonewagon-server db upgrade|status`."""

from __future__ import annotations

import click

from phonewagon_server.cli.options import database_option, emit, json_option, opened_database
from phonewagon_server.db.migrations import LATEST_VERSION, current_version, upgrade


@click.group()
def db() -> None:
    """Schema migrations."""


@db.command("upgrade")
@database_option
@json_option
def upgrade_command(database_url: str | None, as_json: bool) -> None:
    """Apply every pending migration (every other command does this too)."""
    with opened_database(database_url, migrate=False) as database:
        applied = upgrade(database)
    human = "\n".join(f"applied {m.version}: {m.name}" for m in applied) or "already up to date"
    emit(as_json, {"applied": [m.version for m in applied], "version": LATEST_VERSION}, human)


@db.command("status")
@database_option
@json_option
def status_command(database_url: str | None, as_json: bool) -> None:
    """Show the schema version of the database."""
    with opened_database(database_url, migrate=False) as database:
        version = current_version(database)
    hint = "" if version == LATEST_VERSION else " (run: phonewagon-server db upgrade)"
    emit(
        as_json,
        {"version": version, "latest": LATEST_VERSION},
        f"schema version {version} of {LATEST_VERSION}{hint}",
    )
