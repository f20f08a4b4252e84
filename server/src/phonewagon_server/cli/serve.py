"""`phonewagon-server serve` and `phonewagon-server demo`."""

from __future__ import annotations

import logging
import os
import sys

import click
import uvicorn
from starlette.types import ASGIApp

from phonewagon_server.api import create_app
from phonewagon_server.cli.options import database_option, now_ms, opened_database
from phonewagon_server.config import Rate, Settings
from phonewagon_server.demo import DemoData, load_demo
from phonewagon_server.errors import ConfigurationError

DEMO_DATABASE_URL = "sqlite:///phonewagon-demo.db"
SEED_CALLS_QUERY = "campaign_id=s2212&end_time=1573072575990&page_size=1"


def server_options(function: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind."),
            click.option("--port", default=8000, show_default=True, type=int, help="Port to bind."),
            click.option(
                "--public-url",
                metavar="URL",
                help="Base of the `next` links [env: PHONEWAGON_PUBLIC_URL;"
                " default: http://HOST:PORT]",
            ),
            click.option(
                "--rate-limit",
                metavar="N/PERIOD",
                help="Requests per account [env: PHONEWAGON_RATE_LIMIT; default: 50/minute]",
            ),
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                help="Worker processes [env: PHONEWAGON_WORKERS; default: 1];"
                " more than one needs --redis-url",
            ),
            click.option(
                "--redis-url",
                metavar="URL",
                help="Redis that shares the rate limit between workers and machines"
                " [env: PHONEWAGON_REDIS_URL]",
            ),
            click.option(
                "--log-level",
                default="info",
                show_default=True,
                type=click.Choice(["debug", "info", "warning", "error"]),
            ),
        ]
    ):
        function = option(function)
    return function


@click.command()
@server_options
@database_option
def serve(
    host: str,
    port: int,
    public_url: str | None,
    rate_limit: str | None,
    workers: int | None,
    redis_url: str | None,
    log_level: str,
    database_url: str | None,
) -> None:
    """Serve the API (migrating the database first if it needs it)."""
    settings = _settings(
        database_url,
        host=host,
        port=port,
        public_url=public_url,
        rate=rate_limit,
        workers=workers,
        redis_url=redis_url,
    )
    _run(settings, host=host, port=port, log_level=log_level)


@click.command()
@server_options
@click.option(
    "--database-url",
    default=DEMO_DATABASE_URL,
    show_default=True,
    metavar="URL",
    help="Where the demo data lives; reused when it exists.",
)
@click.option("--no-serve", is_flag=True, help="Create the demo data and print how to use it.")
def demo(
    host: str,
    port: int,
    public_url: str | None,
    rate_limit: str | None,
    workers: int | None,
    redis_url: str | None,
    log_level: str,
    database_url: str,
    no_serve: bool,
) -> None:
    """Create (or reuse) a realistic demo database, print credentials and curl lines, serve it."""
    settings = _settings(
        database_url,
        host=host,
        port=port,
        public_url=public_url,
        rate=rate_limit,
        workers=workers,
        redis_url=redis_url,
    )
    with opened_database(settings.database_url) as database:
        try:
            data = load_demo(database, now_ms=now_ms())
        except ConfigurationError as exc:
            raise click.UsageError(str(exc)) from exc
    click.echo(_demo_instructions(data, settings.public_url))
    sys.stdout.flush()  # before the server's logs, even when stdout is a pipe
    if not no_serve:
        _run(settings, host=host, port=port, log_level=log_level)


def _settings(
    database_url: str | None,
    *,
    host: str,
    port: int,
    public_url: str | None,
    rate: str | None,
    workers: int | None,
    redis_url: str | None,
) -> Settings:
    """Flags win over PHONEWAGON_* variables; `next` links default to the address served."""
    default_public_url = f"http://{_visible_host(host)}:{port}"
    try:
        return Settings.from_env(
            database_url=database_url,
            public_url=public_url or os.environ.get("PHONEWAGON_PUBLIC_URL") or default_public_url,
            rate_limit=Rate.parse(rate) if rate else None,
            workers=workers,
            redis_url=redis_url,
        )
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc


def _visible_host(host: str) -> str:
    """A host a client can reach: a wildcard bind address is shown as loopback."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding to it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _run(settings: Settings, *, host: str, port: int, log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    with opened_database(settings.database_url) as database:
        click.echo(
            f"Serving {settings.database_url.split('@')[-1]} on http://{_visible_host(host)}:{port}"
            f" with {settings.workers} worker(s) (next links: {settings.public_url};"
            f" rate limit: {settings.rate_limit}"
            f"{', shared in Redis' if settings.redis_url else ''})",
            err=True,
        )
        if settings.workers == 1:
            _uvicorn(create_app(settings, database), host=host, port=port, log_level=log_level)
            return
    # Each worker process rebuilds the settings from the environment and opens its own pool.
    os.environ.update(settings.as_env())
    _uvicorn(
        "phonewagon_server.api.asgi:app_from_env",
        host=host,
        port=port,
        log_level=log_level,
        workers=settings.workers,
    )


def _uvicorn(app: ASGIApp | str, *, host: str, port: int, log_level: str, workers: int = 1) -> None:
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
        factory=isinstance(app, str),
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


def _demo_instructions(data: DemoData, public_url: str) -> str:
    auth = f"{data.client_id}:{data.client_secret}"
    company = data.companies[0].id
    verb = "Created" if data.created else "Reusing"
    return "\n".join(
        [
            f"{verb} the demo account {data.account_id}: {len(data.companies)} companies,"
            f" {len(data.campaigns)} campaigns, {data.calls} calls.",
            "",
            f"  client id:     {data.client_id}",
            f"  client secret: {data.client_secret}",
            "",
            "Try (the seed's curl commands, pointed here):",
            f'  curl -u {auth} "{public_url}/companies"',
            f'  curl -u {auth} "{public_url}/campaigns?company_id={company}"',
            f'  curl -u {auth} "{public_url}/calls?{SEED_CALLS_QUERY}"',
            f'  curl -u {auth} "{public_url}/calls?page_size=2"',
            f"  open {public_url}/docs",
            "",
        ]
    )
