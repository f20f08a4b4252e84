"""Options and output shared by every command."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import orjson

from phonewagon_server.config import DEFAULT_DATABASE_URL, setting_named
from phonewagon_server.db import Database, check_reachable, open_database
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.errors import ConfigurationError, DatabaseUnavailable, WriteConflict

F = TypeVar("F", bound=Callable[..., Any])


def database_option(function: F) -> F:
    return setting_named("database_url").click_option()(function)


def json_option(function: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object on stdout, nothing else."
    )(function)


@contextlib.contextmanager
def opened_database(
    database_url: str | None, *, migrate: bool = True, writers_wait: bool = True
) -> Iterator[Database]:
    """The database of `--database-url`, else PHONEWAGON_DATABASE_URL, else the default file;
    migrated unless told not to. Its errors become clean CLI errors. A write waits for another
    writer (a running import) to finish, saying so, unless `writers_wait` is off (`serve`)."""
    variable = setting_named("database_url").variable
    url = database_url or os.environ.get(variable) or DEFAULT_DATABASE_URL
    try:
        check_reachable(url)
        database = open_database(url, on_lock_wait=tell_waiting if writers_wait else None)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except DatabaseUnavailable as exc:
        raise _unreachable(url, exc) from exc
    try:
        if migrate:
            upgrade(database)
        yield database
    except WriteConflict as exc:
        raise click.ClickException(
            f"the database rolled this command back ({exc.reason}) for another writer's sake;"
            " nothing of it was written, and running it again is safe"
        ) from exc
    except DatabaseUnavailable as exc:
        raise _unreachable(url, exc) from exc
    finally:
        database.close()


def tell_waiting() -> None:
    click.echo(
        "Waiting: another writer, such as an import, is using the database;"
        " this command goes on when it is done (Ctrl-C to give up, nothing is written).",
        err=True,
    )


def _unreachable(url: str, exc: DatabaseUnavailable) -> click.ClickException:
    reason = f": {exc.reason}" if exc.reason else ""
    return click.ClickException(f"cannot use the database at {_redacted(url)}{reason}")


def emit(as_json: bool, payload: dict[str, Any], human: str) -> None:
    click.echo(orjson.dumps(payload).decode() if as_json else human)


def now_ms() -> int:
    return int(time.time() * 1000)


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***{at}{host}"
    return url
