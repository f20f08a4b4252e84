"""The `phonewagon` command: companies, campaigns and calls as a table, CSV, JSON Lines or Parquet,
the calls changed since a time, and `sync DIR` for incremental pulls. Exit status: 0 done, 1 an
error, 2 a usage error."""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

from phonewagon import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConfigurationError,
    NotFoundError,
    Page,
    PhonewagonError,
    RateLimitError,
    ServerError,
    Wait,
)
from phonewagon._version import __version__
from phonewagon.client import CallFilters
from phonewagon.export import (
    FILE_FORMATS,
    FORMATS,
    Format,
    economise_arrow_memory,
    format_of_path,
    replacing,
    require_pyarrow,
    write_parquet,
    write_records,
)
from phonewagon.export import TEXT_WRITERS as CALL_WRITERS
from phonewagon.models import calls_of
from phonewagon.retry import parse_retry_after
from phonewagon.sync import SyncError, sync_calls
from phonewagon.times import parse_time

MakeClient = Callable[..., Client]
USAGE_ERROR = 2


class UsageError(Exception):
    """A request the command line refuses before asking the server anything."""


def main(argv: Sequence[str] | None = None, *, make_client: MakeClient = Client) -> int:
    """Run the command; `make_client` is the seam tests use to serve canned answers."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and on usage errors
        return exit_.code if isinstance(exit_.code, int) else USAGE_ERROR
    progress = Progress(sys.stderr, live=sys.stderr.isatty())
    try:
        return int(args.run(args, progress, make_client))
    except UsageError as error:
        parser.print_usage(sys.stderr)
        return _fail(progress, f"error: {error}", status=USAGE_ERROR)
    except (ConfigurationError, SyncError) as error:
        return _fail(progress, str(error), status=USAGE_ERROR)
    except PhonewagonError as error:  # MissingDependencyError included
        return _fail(progress, describe_error(error))
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            return _stop_writing_to_closed_pipe()
        return _fail(progress, f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
    except KeyboardInterrupt:
        return _fail(progress, "interrupted", status=130)
    finally:
        progress.finish()


def build_parser() -> argparse.ArgumentParser:
    credentials = argparse.ArgumentParser(add_help=False)
    group = credentials.add_argument_group("connection")
    # SUPPRESS: given before or after the command, the value is kept (a subparser default
    # would overwrite one given before the command).
    group.add_argument("--client-id", default=argparse.SUPPRESS, help="or PHONEWAGON_CLIENT_ID")
    group.add_argument(
        "--client-secret", default=argparse.SUPPRESS, help="or PHONEWAGON_CLIENT_SECRET"
    )
    group.add_argument("--base-url", default=argparse.SUPPRESS, help="or PHONEWAGON_BASE_URL")

    parser = argparse.ArgumentParser(
        prog="phonewagon",
        description="Pull companies, campaigns and calls from a Phonewagon account.",
        parents=[credentials],
    )
    parser.add_argument("--version", action="version", version=f"phonewagon {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    companies = commands.add_parser("companies", parents=[credentials], help="list companies")
    _add_output_options(companies, formats=("table", "csv", "jsonl"))
    companies.set_defaults(run=run_companies)

    campaigns = commands.add_parser("campaigns", parents=[credentials], help="list campaigns")
    campaigns.add_argument("--company-id", type=_positive_int, help="only this company's")
    _add_output_options(campaigns, formats=("table", "csv", "jsonl"))
    campaigns.set_defaults(run=run_campaigns)

    calls = commands.add_parser(
        "calls",
        parents=[credentials],
        help="every matching call, newest first, or those changed since a time",
        description="Every matching call, newest first; with --updated-since, the calls changed "
        "at or after WHEN (started, ended, their recording arrived, their campaign renamed), "
        "oldest change first. WHEN is a date (2026-01-31, UTC midnight), an ISO datetime with an "
        "offset or Z (2026-01-31T09:30:00+01:00), or epoch milliseconds. Both bounds are "
        "inclusive.",
    )
    _add_filter_options(calls)
    calls.add_argument("--start-time", type=_time, metavar="WHEN", help="from (default: the first)")
    calls.add_argument(
        "--end-time",
        type=_time,
        metavar="WHEN",
        help="until (default: now, or no bound with --updated-since)",
    )
    calls.add_argument(
        "--updated-since",
        type=_time,
        metavar="WHEN",
        help="only calls changed at or after WHEN, oldest change first: poll again from the "
        "largest updated_at received",
    )
    calls.add_argument("--page-size", type=_positive_int, metavar="N", help="calls per request")
    _add_output_options(calls, formats=FORMATS)
    calls.set_defaults(run=run_calls)

    sync = commands.add_parser(
        "sync",
        parents=[credentials],
        help="pull new and changed calls into DIR",
        description="Pull every call changed since the last sync into "
        "DIR/calls/YYYY-MM-DD.<format>, one file per UTC day (the day it started): new calls, "
        "and older ones whose status, duration or recording arrived late, however late. A call "
        "fetched again replaces its earlier record. Rerun an interrupted sync.",
    )
    sync.add_argument("directory", metavar="DIR", type=Path)
    # Gone: the change feed has no window to widen. Refused by name rather than as unknown.
    sync.add_argument("--lookback", help=argparse.SUPPRESS)
    sync.add_argument("--format", choices=FILE_FORMATS, help="day file format (default: jsonl)")
    _add_filter_options(sync)
    sync.set_defaults(run=run_sync)
    return parser


def _add_filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--company-id", type=_positive_int, metavar="N")
    parser.add_argument("--campaign-id", metavar="ID")


def _add_output_options(parser: argparse.ArgumentParser, *, formats: Sequence[str]) -> None:
    parser.add_argument(
        "--format",
        choices=formats,
        help="default: from the --output extension, else table on a terminal and jsonl in a pipe",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="default (or -): standard output")


# --- Commands -----------------------------------------------------------------------------------


def run_companies(args: argparse.Namespace, progress: Progress, make_client: MakeClient) -> int:
    output_format = choose_format(args.format, args.output)
    with _connect(args, progress, make_client) as client:
        companies = client.companies()
    with _open_text_output(args.output) as stream:
        write_records([company.to_dict() for company in companies], output_format, stream)
    return 0


def run_campaigns(args: argparse.Namespace, progress: Progress, make_client: MakeClient) -> int:
    output_format = choose_format(args.format, args.output)
    with _connect(args, progress, make_client) as client:
        campaigns = client.campaigns(company_id=args.company_id)
    with _open_text_output(args.output) as stream:
        write_records([campaign.to_dict() for campaign in campaigns], output_format, stream)
    return 0


def run_calls(args: argparse.Namespace, progress: Progress, make_client: MakeClient) -> int:
    output_format = choose_format(args.format, args.output)
    if output_format == "parquet":
        economise_arrow_memory()
        require_pyarrow()
    if None not in (args.start_time, args.end_time) and args.start_time > args.end_time:
        raise UsageError("--start-time must not be after --end-time")
    # Counting lines would scroll the table away: on a terminal the table is the progress.
    progress.count = not (output_format == "table" and _is_stdout(args.output) and _stdout_tty())
    with _connect(args, progress, make_client) as client:
        filters: CallFilters = {
            "company_id": args.company_id,
            "campaign_id": args.campaign_id,
            "start_time": args.start_time,
            "end_time": args.end_time,
            "page_size": args.page_size,
        }
        if args.updated_since is None:
            pages = client.pages(**filters)
        else:
            pages = client.change_pages(args.updated_since, **filters)
        calls = calls_of(pages, progress.on_page)
        if output_format == "parquet":
            with replacing(Path(args.output)) as path:
                write_parquet(calls, path)
        else:
            with _open_text_output(args.output) as stream:
                CALL_WRITERS[output_format](calls, stream)
    progress.done(f"{progress.calls:,} calls in {_pages(progress.pages)}")
    return 0


def run_sync(args: argparse.Namespace, progress: Progress, make_client: MakeClient) -> int:
    if args.lookback is not None:
        raise UsageError(
            "--lookback is gone: sync follows the change feed, which brings every call changed "
            "since the last sync however late the change; drop the option"
        )
    if args.format == "parquet":
        economise_arrow_memory()
        require_pyarrow()
    with _connect(args, progress, make_client) as client:
        summary = sync_calls(
            client,
            args.directory,
            file_format=args.format,
            company_id=args.company_id,
            campaign_id=args.campaign_id,
            on_page=progress.on_page,
        )
    progress.finish()
    print(summary.describe(args.directory))
    return 0


# --- Output -------------------------------------------------------------------------------------


def choose_format(requested: Format | None, output: str | None) -> Format:
    """The explicit --format, else the --output extension's, else table on a terminal or jsonl."""
    by_extension = None if _is_stdout(output) else format_of_path(str(output))
    if requested is not None and by_extension not in (None, requested):
        raise UsageError(f"--format {requested} does not match {output}: choose one")
    chosen = requested or by_extension
    if chosen is None:
        chosen = "table" if _is_stdout(output) and _stdout_tty() else "jsonl"
    if chosen == "parquet" and _is_stdout(output):
        raise UsageError("parquet needs a file: add --output calls.parquet")
    return chosen


def _is_stdout(output: str | None) -> bool:
    return output in (None, "-")


def _stdout_tty() -> bool:
    return sys.stdout.isatty()


@contextmanager
def _open_text_output(output: str | None) -> Iterator[TextIO]:
    if _is_stdout(output):
        if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.encoding.lower() != "utf-8":
            sys.stdout.reconfigure(encoding="utf-8")
        yield sys.stdout
        sys.stdout.flush()
        return
    with (
        replacing(Path(str(output))) as path,
        open(path, "w", encoding="utf-8", newline="") as stream,
    ):
        yield stream


# --- Progress -----------------------------------------------------------------------------------


class Progress:
    """Counts of calls and pages, and waits for the rate limit, on a terminal's stderr.

    Each update rewrites one line in place; when stderr is not a terminal nothing is written.
    """

    def __init__(self, stream: TextIO, *, live: bool) -> None:
        self.stream = stream
        self.live = live
        self.count = True
        self.calls = 0
        self.pages = 0
        self._showing = False

    def on_page(self, page: Page) -> None:
        self.pages += 1
        self.calls += len(page.calls)
        if self.count:
            self._show(self._counts())
        else:
            self.finish()

    def on_wait(self, wait: Wait) -> None:
        seconds = math.ceil(wait.seconds)
        if wait.reason == "rate-limit":
            waiting = f"waiting {seconds} s for the rate limit"
        else:
            waiting = f"waiting {seconds} s to retry after {wait.cause} (attempt {wait.attempt})"
        self._show(f"{self._counts()} · {waiting}" if self.count else waiting)

    def done(self, message: str) -> None:
        self.finish()
        if self.live:
            self.stream.write(message + "\n")

    def finish(self) -> None:
        if self._showing:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._showing = False

    def _counts(self) -> str:
        return f"{self.calls:,} calls, {_pages(self.pages)}"

    def _show(self, text: str) -> None:
        if self.live:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self._showing = True


def _pages(count: int) -> str:
    return f"{count:,} page" if count == 1 else f"{count:,} pages"


# --- Connection and errors ----------------------------------------------------------------------


@contextmanager
def _connect(
    args: argparse.Namespace, progress: Progress, make_client: MakeClient
) -> Iterator[Client]:
    client = make_client(
        client_id=getattr(args, "client_id", None),
        client_secret=getattr(args, "client_secret", None),
        base_url=getattr(args, "base_url", None),
        on_wait=progress.on_wait,
    )
    with client:
        yield client


def describe_error(error: Exception) -> str:
    """One line that says what went wrong and what to do about it."""
    match error:
        case AuthenticationError():
            return (
                "authentication failed: check PHONEWAGON_CLIENT_ID and PHONEWAGON_CLIENT_SECRET "
                "(or --client-id and --client-secret)"
            )
        case BadRequestError(errors=[_, *_] as errors):
            return "bad request: " + "; ".join(
                f"{e.get('name', '?')}: {e.get('detail', '')}" for e in errors
            )
        case BadRequestError():
            return f"bad request: {error}"
        case NotFoundError():
            return f"not found: {error}"
        case RateLimitError():
            seconds = error.retry_after or parse_retry_after(error.headers)
            later = f" (try again in {math.ceil(seconds)} s)" if seconds else " (try again later)"
            return f"rate limited: {error}{later}"
        case ServerError(status=status):
            return f"server error {status}: {error} (try again later)"
        case APIConnectionError():
            return f"cannot reach the server: {error}"
    return str(error)


def _fail(progress: Progress, message: str, *, status: int = 1) -> int:
    progress.finish()
    print(f"phonewagon: {message}", file=sys.stderr)
    return status


def _stop_writing_to_closed_pipe() -> int:
    """`phonewagon calls | head`: the reader left; stop quietly (Python's documented recipe)."""
    with suppress(OSError, ValueError):  # no descriptor behind stdout: nothing to flush at exit
        stdout = sys.stdout.fileno()
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout)
    return 1


# --- Argument types -----------------------------------------------------------------------------


def _time(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)
