"""`users create|disable`: the people of an account who sign in to the web app."""

from __future__ import annotations

import secrets
import sys

import click

from phonewagon_server.cli.options import (
    database_option,
    emit,
    json_option,
    now_ms,
    opened_database,
)
from phonewagon_server.config import Settings
from phonewagon_server.db import accounts as account_rows
from phonewagon_server.db import users as user_rows
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.passwords import hash_password, normalize_email, password_problem
from phonewagon_server.web.sessions import hash_token
from phonewagon_server.web.signin import SET_PASSWORD_PREFIX

LINK_HOURS = 72


@click.group()
def users() -> None:
    """People of an account who sign in to the web app at PUBLIC_URL/app/."""


@users.command("create")
@click.option("--account", "account_id", type=int, required=True, help="Account id.")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (its first line). Without it, print a"
    f" one-time link to set one, valid {LINK_HOURS} hours.",
)
@database_option
@json_option
def create_user(
    account_id: int, email: str, password_stdin: bool, database_url: str | None, as_json: bool
) -> None:
    """Create a person who signs in to the account's web app."""
    address = normalize_email(email)
    if address is None:
        raise click.BadParameter("is not an email address", param_hint="EMAIL")
    password_hash = ""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if (problem := password_problem(password)) is not None:
            raise click.BadParameter(problem, param_hint="--password-stdin")
        password_hash = hash_password(password)
    try:
        public_url = Settings.from_env().public_url
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    token = None if password_stdin else SET_PASSWORD_PREFIX + secrets.token_urlsafe(32)
    now = now_ms()
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        if account_rows.get_account(tx, account_id) is None:
            raise click.ClickException(f"there is no account {account_id}")
        user = user_rows.create_user(
            tx, account_id=account_id, email=address, password_hash=password_hash, now=now
        )
        if user is None:
            raise click.ClickException(f"{address} is already a user")
        if token is not None:
            expires_at = now + LINK_HOURS * 3_600_000
            user_rows.insert_password_link(tx, user.id, hash_token(token), expires_at=expires_at)
    payload: dict[str, object] = {"id": user.id, "account_id": account_id, "email": address}
    human = f"Created {address} in account {account_id}."
    if token is not None:
        link = f"{public_url}/app/set-password?token={token}"
        payload["set_password_url"] = link
        human += (
            f"\nSend them this link to set their password (it works once, for {LINK_HOURS}"
            f" hours):\n  {link}"
        )
    else:
        human += f"\nThey sign in at {public_url}/app/login"
    emit(as_json, payload, human)


@users.command("disable")
@click.argument("email")
@database_option
@json_option
def disable_user(email: str, database_url: str | None, as_json: bool) -> None:
    """Disable a person: every session of theirs ends at once, and they cannot sign in."""
    address = normalize_email(email) or email.strip().lower()
    with opened_database(database_url) as database, database.transaction(write=True) as tx:
        user = user_rows.disable_user(tx, address, now=now_ms())
    if user is None:
        raise click.ClickException(f"there is no user {address}")
    emit(
        as_json,
        {
            "id": user.id,
            "account_id": user.account_id,
            "email": address,
            "disabled_at": user.disabled_at,
        },
        f"Disabled {address}; their sessions have ended.",
    )
