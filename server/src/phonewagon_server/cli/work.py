"""`phonewagon-server work`: the background work, in this process, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging.config
import signal
import threading
from typing import Any

import click

from phonewagon_server.background import STOP_SIGNALS, run_work
from phonewagon_server.cli.options import database_option, opened_database
from phonewagon_server.config import LOG_LEVELS, Settings
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.logs import logging_config


@click.command()
@database_option
@click.option(
    "--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True,
    help="Log lines of this level and above.",
)  # fmt: skip
# `serve` passes its own process id: the work stops once that process is gone.
@click.option("--stop-with", type=int, hidden=True)
def work(database_url: str | None, log_level: str, stop_with: int | None) -> None:
    """Apply accepted Twilio webhooks to the calls and fetch their recordings.

    `serve` runs this in a process of its own; with PHONEWAGON_BACKGROUND_WORK=none it does
    not, and you run it yourself (on any machine that reaches the database and the recordings
    directory; several may run). Configured by the same PHONEWAGON_* variables as `serve`.
    """
    try:
        settings = Settings.from_env(flags={"database_url": database_url})
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    logging.config.dictConfig(logging_config(settings.log_format, log_level))
    stop = threading.Event()

    def stop_on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, stop_on_signal)
    with opened_database(settings.database_url, writers_wait=False) as database:
        run_work(settings, database, stop, parent=stop_with)
