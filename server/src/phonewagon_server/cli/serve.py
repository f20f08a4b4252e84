"""`phonewagon-server serve` and `phonewagon-server demo`."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import logging.config
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import uvicorn
from starlette.types import ASGIApp

from phonewagon_server.api import create_app
from phonewagon_server.api.metrics import count_in_shared_directory
from phonewagon_server.background import background_process
from phonewagon_server.cli.options import database_option, now_ms, opened_database
from phonewagon_server.config import SETTINGS, Settings, plain
from phonewagon_server.demo import DemoData, load_demo
from phonewagon_server.demo.catalog import COMPANIES
from phonewagon_server.demo.live import DEMO_TWILIO_ACCOUNT_SID, DEMO_TWILIO_AUTH_TOKEN, DemoCalls
from phonewagon_server.demo.recordings import write_tones
from phonewagon_server.demo.website import (
    SITE_KEY,
    DemoVisitors,
    landing_page_app,
    site_instructions,
)
from phonewagon_server.dni.snippet import snippet
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.logs import logging_config
from phonewagon_server.memory import keep_page_memory
from phonewagon_server.transport import BoundedHttpToolsProtocol
from phonewagon_server.twilio.simulator import recordings_app, serve_in_thread

DEMO_DATABASE_URL = "sqlite:///phonewagon-demo.db"
DEMO_RECORDINGS_DIR = Path("phonewagon-demo-recordings")
SEED_CALLS_QUERY = "campaign_id=s2212&end_time=1573072575990&page_size=1"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
logger = logging.getLogger("phonewagon_server.serve")


def server_options(function: click.decorators.FC) -> click.decorators.FC:
    """The flags of SETTINGS but --database-url (`serve` and `demo` each have their own); the
    settings that only a variable sets are told in the command's help, after its own text."""
    for setting in reversed(SETTINGS):
        if setting.flag and setting.name != "database_url":
            function = setting.click_option()(function)
    variables_alone = [
        f"{setting.variable}: {plain(setting.help)} [default: {plain(setting.default)}]"
        for setting in SETTINGS
        if not setting.flag
    ]
    function.__doc__ = "\n\n".join(
        [
            inspect.cleandoc(function.__doc__ or ""),
            "Settings with no flag, set by their variable:",
            *variables_alone,
        ]
    )
    return function


@click.command()
@server_options
@database_option
def serve(host: str, port: int, log_level: str, database_url: str | None, **flags: Any) -> None:
    """Serve the API (migrating the database first if it needs it).

    Logs are JSON lines on stderr, one per request and one per event, each with its request id.
    With --workers N, the workers add up their metrics in PROMETHEUS_MULTIPROC_DIR: a temporary
    directory removed at exit, unless you set one (empty) yourself.
    """
    settings = _settings(database_url, host=host, port=port, flags=flags, log_format="json")
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
@click.option("--no-live-calls", is_flag=True, help="Serve without simulated calls ringing.")
def demo(
    host: str,
    port: int,
    log_level: str,
    database_url: str,
    no_serve: bool,
    no_live_calls: bool,
    **flags: Any,
) -> None:
    """Create (or reuse) a realistic demo database, print credentials and curl lines, serve it
    while simulated calls ring its numbers through the Twilio webhooks."""
    settings = _settings(
        database_url,
        host=host,
        port=port,
        flags=flags,
        log_format="text",
        recordings_dir=DEMO_RECORDINGS_DIR,
    )
    twilio_api, stop_twilio_api = serve_in_thread(
        recordings_app(DEMO_TWILIO_ACCOUNT_SID, [DEMO_TWILIO_AUTH_TOKEN])
    )
    settings = dataclasses.replace(
        settings,
        twilio_account_sid=DEMO_TWILIO_ACCOUNT_SID,
        twilio_auth_tokens=(DEMO_TWILIO_AUTH_TOKEN,),
        twilio_api_base=twilio_api,
        # The simulated visitors come through loopback, each with an address of its own.
        trusted_proxies=settings.trusted_proxies or ("127.0.0.1",),
    )
    site_url, stop_site = serve_in_thread(
        landing_page_app(snippet(settings.public_url, SITE_KEY)), port=_free_or_any(port + 1)
    )
    with opened_database(settings.database_url) as database:
        try:
            data = load_demo(database, now_ms=now_ms(), public_url=settings.public_url)
        except ConfigurationError as exc:
            raise click.UsageError(str(exc)) from exc
    write_tones(settings.recordings_dir)
    click.echo(_demo_instructions(data, settings.public_url, site_url, live=not no_live_calls))
    sys.stdout.flush()  # before the server's logs, even when stdout is a pipe
    if no_serve:
        stop_twilio_api()
        stop_site()
        return
    calls = DemoCalls(
        f"http://{_visible_host(host)}:{port}",
        public_url=settings.public_url,
        api_base=twilio_api,
        numbers=[c.tracking_number for spec in COMPANIES for c in spec.campaigns],
    )
    visitors = DemoVisitors(calls.server_url, site_url=site_url, ring=calls.ring)
    if not no_live_calls:
        calls.start()
        visitors.start()
    try:
        _run(settings, host=host, port=port, log_level=log_level)
    finally:
        visitors.stop()
        calls.stop()
        stop_twilio_api()
        stop_site()


def _settings(
    database_url: str | None,
    *,
    host: str,
    port: int,
    flags: dict[str, Any],
    log_format: str,
    **defaults: Any,
) -> Settings:
    """Flags win over PHONEWAGON_* variables; `next` links default to the address served."""
    default_public_url = f"http://{_visible_host(host)}:{port}"
    try:
        return Settings.from_env(
            flags={**flags, "database_url": database_url},
            defaults={"public_url": default_public_url, "log_format": log_format, **defaults},
        )
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc


def _free_or_any(port: int) -> int:
    """`port` if nothing listens on it on loopback, else 0 (any free port)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _visible_host(host: str) -> str:
    """A host a client can reach: a wildcard bind address is shown as loopback."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding to it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _run(settings: Settings, *, host: str, port: int, log_level: str) -> None:
    log_config = logging_config(settings.log_format, log_level)
    logging.config.dictConfig(log_config)
    listen: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "log_config": log_config,
    }
    with opened_database(settings.database_url, writers_wait=False) as database:
        logger.info(
            "serving %s on http://%s:%d with %d worker(s) (next links: %s; rate limit: %s%s)",
            settings.database_url,  # the log formatter masks its password
            _visible_host(host),
            port,
            settings.workers,
            settings.public_url,
            settings.rate_limit,
            ", shared in Redis" if settings.redis_url else "",
        )
        if settings.workers == 1:
            with _shared_metrics(settings), _background(settings, log_level=log_level):
                app = create_app(settings, database, background=False)
                run_uvicorn(app, settings, **listen)
            return
    # Each worker process rebuilds the settings from the environment and opens its own pool.
    os.environ.update(settings.as_env())
    with _shared_metrics(settings), _background(settings, log_level=log_level):
        run_uvicorn("phonewagon_server.api.asgi:app_from_env", settings, **listen)


def _background(settings: Settings, *, log_level: str) -> contextlib.AbstractContextManager[None]:
    """The `work` process beside the web workers, unless the operator runs it elsewhere."""
    if settings.background_work == "none":
        return contextlib.nullcontext()
    return background_process(settings, log_level=log_level)


@contextlib.contextmanager
def _shared_metrics(settings: Settings) -> Iterator[None]:
    """A fresh directory where the Prometheus counts of the web workers and of the `work`
    process meet, removed at exit.

    An operator's own `PROMETHEUS_MULTIPROC_DIR` is used as it is (and must start empty).
    """
    alone = settings.workers == 1 and settings.background_work == "none"
    if not settings.metrics or alone or MULTIPROCESS_DIR in os.environ:
        yield
        return
    directory = tempfile.mkdtemp(prefix="phonewagon-metrics-")
    count_in_shared_directory(directory)
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def run_uvicorn(
    app: ASGIApp | str,
    settings: Settings,
    *,
    host: str,
    port: int,
    log_level: str,
    log_config: dict[str, Any],
) -> None:
    """Serve `app` (or the factory it names) as `serve` does: bench/small_requests.py runs a
    bare app through this too, so the two differ only in the app."""
    keep_page_memory()  # workers, started afresh, do it in app_from_env
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config,
        access_log=False,  # the app logs each request itself, with its id
        workers=settings.workers,
        factory=isinstance(app, str),
        http=BoundedHttpToolsProtocol,
        # Without trusted proxies X-Forwarded-For is ignored: anyone could write one.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


def _demo_instructions(data: DemoData, public_url: str, site_url: str, *, live: bool) -> str:
    auth = f"{data.client_id}:{data.client_secret}"
    ringing = [
        "Simulated calls ring the demo's tracking numbers every few seconds, through the",
        "Twilio webhooks; watch them arrive and change in the change feed:",
        f'  curl -u {auth} "{public_url}/calls?updated_since={now_ms()}"',
        "",
    ]
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
            "",
            f"The web app: {public_url}/app/ (sign in as {data.user_email},"
            f" password {data.user_password})",
            f"  open {public_url}/docs",
            "",
            *site_instructions(site_url, live=live),
            *(ringing if live else []),
        ]
    )
