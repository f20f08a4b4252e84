"""Incremental pulls into a directory of day files that never holds a call twice.

    DIR/.phonewagon-sync.json      where the last sync got to (written last, atomically)
    DIR/.phonewagon-sync.lock      held (flock) for the whole run: one sync of DIR at a time
    DIR/.phonewagon-sync.incoming/ the run's changes, one JSON Lines file a day, until merged
    DIR/calls/2026-11-27.jsonl     the calls that started on that UTC day, newest first

Each run follows the change feed (`Client.change_pages`) from the largest `updated_at` synced so
far, the first run from 0 (every call), and merges what it gets into the day files by `sid`: a
call that changed since (its status, duration or recording arrived late, however late; its
campaign was renamed) replaces its earlier record. There is no look-back window: the feed gives
every change at least once, and the calls of the saved `updated_at`, which it gives again, are
merged as unchanged.

The feed comes in the order of change, not of day: while it is followed, each page's calls are
appended to their day's file in DIR/.phonewagon-sync.incoming/, and once it has ended each day
file is rewritten once, its incoming calls merged in (the last one fetched of a sid wins). Only
then does the state move: an interrupted run leaves it untouched, so rerunning it fetches the
same changes again and ends with the same files.

A directory synced by the look-back sync (state version 1, no `updated_at` in its day files) is
continued: its next run fetches every call again, which gives each record its `updated_at`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, get_args

from phonewagon.client import Client
from phonewagon.errors import PhonewagonError
from phonewagon.export import (
    FileFormat,
    read_calls,
    read_jsonl,
    replacing,
    write_calls,
    write_jsonl,
)
from phonewagon.models import Call, Page
from phonewagon.times import from_epoch_ms, utc_day

STATE_FILE = ".phonewagon-sync.json"
LOCK_FILE = ".phonewagon-sync.lock"
INCOMING_DIR = ".phonewagon-sync.incoming"
CALLS_DIR = "calls"
STATE_VERSION = 2  # 1: the look-back sync by start_time, continued by fetching every call again
# Day files written by the look-back sync have no `updated_at`: 0, before every change.
LEGACY_FIELDS: Final = {"updated_at": 0}


class SyncError(PhonewagonError):
    """The directory cannot be synced as asked (another format or filter, a damaged state file,
    another sync of it running)."""


@dataclass(frozen=True, slots=True)
class SyncState:
    file_format: FileFormat
    newest_updated_at: int | None = None  # the last call synced: its `updated_at`; None: none yet
    company_id: int | None = None
    campaign_id: str | None = None
    newest_id: int | None = None  # and its `id`: the next run asks for what came after it


@dataclass(slots=True)
class SyncSummary:
    updated_since: int | None  # where the run followed the feed from; None: every call
    newest_updated_at: int | None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    days_touched: list[str] = field(default_factory=list)

    def describe(self, directory: str | os.PathLike[str]) -> str:
        """One line for people: `synced DIR, changes since WHEN: 3 new, 1 updated, ...`."""
        since = "every call"
        if self.updated_since is not None:
            moment = from_epoch_ms(self.updated_since).strftime("%Y-%m-%d %H:%M:%S UTC")
            since = f"changes since {moment}"
        days = sorted(self.days_touched)
        touched = f"{len(days)} day{'' if len(days) == 1 else 's'} touched"
        if len(days) > 4:
            touched += f" ({days[0]} … {days[-1]})"
        elif days:
            touched += f" ({', '.join(days)})"
        return (
            f"synced {directory}, {since}: {self.new:,} new, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged; {touched}"
        )


def sync_calls(
    client: Client,
    directory: str | os.PathLike[str],
    *,
    file_format: FileFormat | None = None,
    company_id: int | None = None,
    campaign_id: str | None = None,
    on_page: Callable[[Page], None] | None = None,
) -> SyncSummary:
    """Bring `directory` up to date with the account's calls (see the module's docstring)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        return _sync_locked(
            client,
            root,
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
    incoming = root / INCOMING_DIR
    if incoming.exists():  # an interrupted run's: its changes are fetched again below
        shutil.rmtree(incoming)
    incoming.mkdir()

    since = state.newest_updated_at
    pages = client.change_pages(
        since or 0,
        after_id=state.newest_id if since is not None else None,
        company_id=state.company_id,
        campaign_id=state.campaign_id,
    )
    summary = SyncSummary(updated_since=since, newest_updated_at=since)
    last = (since, state.newest_id)
    for page in pages:
        if on_page is not None:
            on_page(page)
        _stage(incoming, page.calls)
        if page.calls:  # the feed's order: the page's last call is the newest change
            last = (page.calls[-1].updated_at, page.calls[-1].id)
    summary.newest_updated_at = last[0]

    for staged in sorted(incoming.iterdir()):
        day = staged.stem
        path = calls_dir / f"{day}.{state.file_format}"
        if _merge_day(path, read_jsonl(staged), state.file_format, summary):
            summary.days_touched.append(day)
        staged.unlink()

    write_state(root, replace(state, newest_updated_at=last[0], newest_id=last[1]))
    incoming.rmdir()
    return summary


def _stage(incoming: Path, calls: Iterable[Call]) -> None:
    """Append `calls` to their UTC days' files in `incoming`, in the order they came."""
    by_day: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_day[utc_day(call.start_time)].append(call)
    for day, day_calls in by_day.items():
        with open(incoming / f"{day}.jsonl", "a", encoding="utf-8", newline="") as stream:
            write_jsonl(day_calls, stream)


def _merge_day(
    path: Path, fetched: Iterable[Call], file_format: FileFormat, summary: SyncSummary
) -> bool:
    """Merge `fetched` into the day file at `path`, the last fetched version of a sid winning
    over earlier ones and over the file's; True if the file was rewritten."""
    latest = {call.sid: call for call in fetched}
    by_sid: dict[str, Call] = {}
    if path.exists():
        by_sid = {call.sid: call for call in read_calls(path, file_format, LEGACY_FIELDS)}
    changed = False
    for sid, call in latest.items():
        earlier = by_sid.get(sid)
        if earlier is None:
            summary.new += 1
        elif earlier == call:
            summary.unchanged += 1
            continue
        else:
            summary.updated += 1
        by_sid[sid] = call
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
    version = raw["version"]
    if type(version) is int and version > STATE_VERSION:
        raise SyncError(
            f"this directory was synced by a newer phonewagon (state version {version}): "
            "upgrade phonewagon to continue it"
        )
    if type(version) is not int or version not in (1, STATE_VERSION):
        raise ValueError(f"version {version!r}, expected {STATE_VERSION}")
    if raw["format"] not in get_args(FileFormat):
        raise ValueError(f"unknown format {raw['format']!r}")
    # Version 1 remembered the newest start_time, which says nothing of changes: every call again.
    newest = raw["newest_updated_at"] if version == STATE_VERSION else None
    newest_id = raw.get("newest_id") if version == STATE_VERSION else None
    company_id, campaign_id = raw["company_id"], raw["campaign_id"]
    for name, value, kind in (
        ("newest_updated_at", newest, int),
        ("newest_id", newest_id, int),
        ("company_id", company_id, int),
        ("campaign_id", campaign_id, str),
    ):
        if value is not None and (type(value) is not kind):
            raise TypeError(f"{name} must be {kind.__name__} or null, not {value!r}")
    return SyncState(raw["format"], newest, company_id, campaign_id, newest_id)


def write_state(directory: Path, state: SyncState) -> None:
    body = {
        "version": STATE_VERSION,
        "format": state.file_format,
        "newest_updated_at": state.newest_updated_at,
        "newest_id": state.newest_id,
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
