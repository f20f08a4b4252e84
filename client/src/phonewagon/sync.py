"""Incremental pulls into a directory of day files that never holds a call twice.

    DIR/.phonewagon-sync.json      where the last sync got to (written last, atomically)
    DIR/.phonewagon-sync.lock      held (flock) for the whole run: one sync of DIR at a time
    DIR/calls/2026-11-27.jsonl     the calls that started on that UTC day, newest first

Each run fetches from `newest start_time synced - lookback` to now and merges what it gets into
the day files by `sid`: a call fetched again (its status, duration or recording updated late)
replaces its earlier record. An interrupted run leaves the state untouched, so rerunning it
fetches the same window again and ends with the same files.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import groupby
from pathlib import Path
from typing import Any, get_args

from phonewagon.client import Client
from phonewagon.errors import PhonewagonError
from phonewagon.export import FileFormat, read_calls, replacing, write_calls
from phonewagon.models import Call, Page, calls_of
from phonewagon.times import from_epoch_ms, utc_day

STATE_FILE = ".phonewagon-sync.json"
LOCK_FILE = ".phonewagon-sync.lock"
CALLS_DIR = "calls"
STATE_VERSION = 1
DEFAULT_LOOKBACK = timedelta(days=3)


class SyncError(PhonewagonError):
    """The directory cannot be synced as asked (another format or filter, a damaged state file,
    another sync of it running)."""


@dataclass(frozen=True, slots=True)
class SyncState:
    file_format: FileFormat
    newest_start_time: int | None = None
    company_id: int | None = None
    campaign_id: str | None = None


@dataclass(slots=True)
class SyncSummary:
    start_time: int
    newest_start_time: int | None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    days_touched: list[str] = field(default_factory=list)

    def describe(self, directory: str | os.PathLike[str]) -> str:
        """One line for people: `synced DIR from WHEN: 3 new, 1 updated, ...; 2 days touched`."""
        since = "the first call"
        if self.start_time:
            since = from_epoch_ms(self.start_time).strftime("%Y-%m-%d %H:%M:%S UTC")
        days = sorted(self.days_touched)
        touched = f"{len(days)} day{'' if len(days) == 1 else 's'} touched"
        if len(days) > 4:
            touched += f" ({days[0]} … {days[-1]})"
        elif days:
            touched += f" ({', '.join(days)})"
        return (
            f"synced {directory} from {since}: {self.new:,} new, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged; {touched}"
        )


def sync_calls(
    client: Client,
    directory: str | os.PathLike[str],
    *,
    lookback: timedelta = DEFAULT_LOOKBACK,
    file_format: FileFormat | None = None,
    company_id: int | None = None,
    campaign_id: str | None = None,
    on_page: Callable[[Page], None] | None = None,
) -> SyncSummary:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        return _sync_locked(
            client,
            root,
            lookback=lookback,
            file_format=file_format,
            company_id=company_id,
            campaign_id=campaign_id,
            on_page=on_page,
        )


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on `root` for the block, or refuse at once if another run holds it.

    The lock file stays: removing it would let a third run lock a new file while the second
    still holds the old one.
    """
    descriptor = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncError(
                f"another sync of {root} is running: wait for it to finish, then try again"
            ) from None
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _sync_locked(
    client: Client,
    root: Path,
    *,
    lookback: timedelta,
    file_format: FileFormat | None,
    company_id: int | None,
    campaign_id: str | None,
    on_page: Callable[[Page], None] | None,
) -> SyncSummary:
    previous = read_state(root)
    state = _requested_state(previous, file_format, company_id=company_id, campaign_id=campaign_id)
    calls_dir = root / CALLS_DIR
    calls_dir.mkdir(parents=True, exist_ok=True)
    _refuse_other_formats(calls_dir, state.file_format)
    _remove_leftover_temporaries(calls_dir)

    newest = state.newest_start_time
    start_time = 0 if newest is None else max(0, newest - lookback // timedelta(milliseconds=1))
    pages = client.pages(
        company_id=state.company_id, campaign_id=state.campaign_id, start_time=start_time
    )
    summary = SyncSummary(start_time=start_time, newest_start_time=newest)
    # Calls come newest first, so a day is complete as soon as a call of an earlier day arrives:
    # one day at a time is in memory, never the whole window.
    for day, day_calls in groupby(calls_of(pages, on_page), key=lambda c: utc_day(c.start_time)):
        fetched = list(day_calls)
        summary.newest_start_time = max(
            summary.newest_start_time or 0, max(call.start_time for call in fetched)
        )
        if _merge_day(
            calls_dir / f"{day}.{state.file_format}", fetched, state.file_format, summary
        ):
            summary.days_touched.append(day)

    write_state(root, replace(state, newest_start_time=summary.newest_start_time))
    return summary


def _merge_day(
    path: Path, fetched: list[Call], file_format: FileFormat, summary: SyncSummary
) -> bool:
    """Merge `fetched` into the day file at `path` (the fetched version wins); True if rewritten."""
    by_sid = {call.sid: call for call in read_calls(path, file_format)} if path.exists() else {}
    changed = False
    for call in fetched:
        earlier = by_sid.get(call.sid)
        if earlier is None:
            summary.new += 1
        elif earlier == call:
            summary.unchanged += 1
            continue
        else:
            summary.updated += 1
        by_sid[call.sid] = call
        changed = True
    if changed:
        newest_first = sorted(by_sid.values(), key=lambda c: (c.start_time, c.id), reverse=True)
        with replacing(path) as temporary:
            write_calls(newest_first, temporary, file_format)
    return changed


def _remove_leftover_temporaries(calls_dir: Path) -> None:
    for leftover in calls_dir.glob(".*.tmp"):
        leftover.unlink()


def _refuse_other_formats(calls_dir: Path, file_format: FileFormat) -> None:
    others = {p.suffix for p in calls_dir.iterdir() if not p.name.startswith(".")}
    others -= {f".{file_format}"}
    if others:
        raise SyncError(
            f"{calls_dir} already holds {', '.join(sorted(others))} files: "
            f"sync as {file_format} into another directory"
        )


# --- State --------------------------------------------------------------------------------------


def read_state(directory: Path) -> SyncState | None:
    path = directory / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise SyncError(
            f"cannot read {path} ({error}): delete it to sync everything again"
        ) from None
    try:
        return _state_from_json(raw)
    except (KeyError, TypeError, ValueError) as error:
        raise SyncError(
            f"{path} is damaged ({error}): delete it to sync everything again"
        ) from None


def _state_from_json(raw: Any) -> SyncState:
    if raw["version"] != STATE_VERSION:
        raise ValueError(f"version {raw['version']!r}, expected {STATE_VERSION}")
    if raw["format"] not in get_args(FileFormat):
        raise ValueError(f"unknown format {raw['format']!r}")
    newest, company_id, campaign_id = (
        raw["newest_start_time"],
        raw["company_id"],
        raw["campaign_id"],
    )
    for name, value, kind in (
        ("newest_start_time", newest, int),
        ("company_id", company_id, int),
        ("campaign_id", campaign_id, str),
    ):
        if value is not None and (type(value) is not kind):
            raise TypeError(f"{name} must be {kind.__name__} or null, not {value!r}")
    return SyncState(raw["format"], newest, company_id, campaign_id)


def write_state(directory: Path, state: SyncState) -> None:
    body = {
        "version": STATE_VERSION,
        "format": state.file_format,
        "newest_start_time": state.newest_start_time,
        "company_id": state.company_id,
        "campaign_id": state.campaign_id,
    }
    text = json.dumps(body, indent=2) + "\n"
    with replacing(directory / STATE_FILE) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _requested_state(
    previous: SyncState | None,
    file_format: FileFormat | None,
    *,
    company_id: int | None,
    campaign_id: str | None,
) -> SyncState:
    """The state to continue from: what is asked for must agree with what the directory holds."""
    if previous is None:
        return SyncState(file_format or "jsonl", company_id=company_id, campaign_id=campaign_id)
    if file_format not in (None, previous.file_format):
        raise SyncError(
            f"this directory is synced as {previous.file_format}: "
            f"drop --format or sync as {file_format} into another directory"
        )
    asked = (company_id, campaign_id)
    if asked != (None, None) and asked != (previous.company_id, previous.campaign_id):
        raise SyncError(
            f"this directory is synced with {_describe_filters(previous)}: "
            "drop the filters to continue it, or sync other filters into another directory"
        )
    return previous


def _describe_filters(state: SyncState) -> str:
    filters = [
        f"--company-id {state.company_id}" if state.company_id is not None else "",
        f"--campaign-id {state.campaign_id}" if state.campaign_id is not None else "",
    ]
    return " ".join(f for f in filters if f) or "no filter"
