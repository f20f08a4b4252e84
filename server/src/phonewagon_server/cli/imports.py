"""`phonewagon-server calls import FILE --account ID`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import click

from phonewagon_server.cli.options import (
    database_option,
    emit,
    json_option,
    opened_database,
    tell_waiting,
)
from phonewagon_server.db.accounts import get_account
from phonewagon_server.imports import (
    FileError,
    FileFormat,
    ImportReport,
    detect_format,
    import_calls,
    read_records,
)

SHOWN_ERRORS = 20


@click.group()
def calls() -> None:
    """Calls of an account."""


@calls.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", "account_id", type=int, required=True, help="Account id.")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["jsonl", "csv"]),
    help="Default: from the file name (.jsonl, .ndjson, .json or .csv).",
)
@database_option
@json_option
def import_command(
    file: Path,
    account_id: int,
    file_format: FileFormat | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Import calls from JSON Lines or CSV, keyed by sid: rerunning it never duplicates a call.

    Each line or row is a call with the API's field names plus campaign_id; sid, campaign_id and
    start_time (epoch ms) are required. Bad rows are reported with their line number and skipped;
    the good rows are written together, in one transaction. Exit status 1 if any row was rejected.
    """
    try:
        file_format = file_format or detect_format(file)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    with opened_database(database_url) as database:
        with database.transaction() as tx:
            if get_account(tx, account_id) is None:
                raise click.ClickException(f"there is no account {account_id}")
        with file.open("rb") as stream:
            show_progress = not as_json and sys.stderr.isatty()
            records = read_records(stream, file_format)
            try:
                if show_progress:
                    with click.progressbar(
                        length=file.stat().st_size, label=f"Importing {file.name}", file=sys.stderr
                    ) as bar:
                        report = import_calls(
                            database,
                            account_id,
                            _tracked(records, stream, bar),
                            on_wait=tell_waiting,
                        )
                else:
                    report = import_calls(database, account_id, records, on_wait=tell_waiting)
            except FileError as exc:
                raise click.ClickException(f"{file.name} {exc}; nothing was imported") from exc
    emit(as_json, report.as_json(), _summary(report))
    if report.rejected:
        sys.exit(1)


def _tracked(
    records: Iterator[tuple[int, Any]], stream: BinaryIO, bar: Any
) -> Iterator[tuple[int, Any]]:
    for count, record in enumerate(records, start=1):
        yield record
        if count % 2000 == 0:
            bar.update(stream.tell() - bar.pos)
    bar.update(bar.length - bar.pos)


def _summary(report: ImportReport) -> str:
    lines = [
        f"{report.inserted} inserted, {report.updated} updated, {report.unchanged} unchanged,"
        f" {report.rejected} rejected"
    ]
    for line, error in report.errors[:SHOWN_ERRORS]:
        lines.append(f"  line {line}: {error}")
    if report.rejected > SHOWN_ERRORS:
        lines.append(f"  … and {report.rejected - SHOWN_ERRORS} more (use --json for all)")
    return "\n".join(lines)
