"""Read call files (JSON Lines or CSV) into validated rows, and upsert them (`db.calls`).

A file written from `/calls` pages imports as it is: derived fields (`id`, `account_id`,
`company_id`, `campaign_name`) are accepted and ignored. Each bad row is reported with its line
number and reason; it never stops the good rows. Both formats share the same bounds on a field
(`MAX_SID_CHARS`, `MAX_TEXT_CHARS`); a JSON line is read at most `MAX_LINE_BYTES` at a time.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import operator
import re
from collections.abc import Callable, Iterable, Iterator, KeysView, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from phonewagon_server.db import Database
from phonewagon_server.db.callers import remember_callers_after
from phonewagon_server.db.calls import (
    STORED_FIELDS,
    bulk_writes,
    lock_account_imports,
    merge_staged_calls,
    stage_calls,
)
from phonewagon_server.db.companies import list_campaigns
from phonewagon_server.db.engine import Connection, Row
from phonewagon_server.documents import render_fields
from phonewagon_server.models import (
    CALL_BOOLEAN_FIELDS,
    CALL_DEFAULTS,
    CALL_DERIVED_FIELDS,
    CALL_IMPORT_FIELDS,
    CALL_INTEGER_FIELDS,
    CALL_REQUIRED_FIELDS,
    MAX_EPOCH_MS,
    Campaign,
)

FileFormat = Literal["jsonl", "csv"]
_KNOWN_FIELDS = frozenset((*CALL_IMPORT_FIELDS, *CALL_DERIVED_FIELDS))
_INTEGER_FIELDS = tuple(f for f in CALL_INTEGER_FIELDS if f in CALL_IMPORT_FIELDS)
_SID_INDEX = STORED_FIELDS.index("sid")
_FIELD_KINDS = tuple(
    (name, name not in _INTEGER_FIELDS and name not in CALL_BOOLEAN_FIELDS)
    for name in CALL_IMPORT_FIELDS
)
_TEXT_FIELDS = tuple(name for name, is_text in _FIELD_KINDS if is_text)
_texts_of = operator.itemgetter(*_TEXT_FIELDS)
# What a JSON record leaves out, as the API renders it: "" for text, 0, false.
_DEFAULTS: dict[str, Any] = dict(CALL_DEFAULTS)
# Leading zeros, then at most 20 digits: more are beyond every bound (and int() refuses 4301).
_DIGITS = re.compile(r"^0*([0-9]{1,20})$")
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})
MAX_DURATION_SECONDS = 7 * 24 * 3600
MAX_SID_CHARS = 64
MAX_TEXT_CHARS = 8192  # every other text field: landing pages and referrers are URLs
MAX_LINE_BYTES = 128 * 1024  # a JSON line, its line end left out
_SHOWN_CHARS = 80  # of a bad value, quoted in its row's error

# csv.field_size_limit is process-wide, so it is set once, here, to one fixed value: raised
# around a read and restored after, it would change under every other reader and thread while
# the read yields its rows. Far above MAX_TEXT_CHARS, so that a cell too long is its row's error
# (csv's default, 128 KiB, refused the whole file); only a cell beyond 16 MiB still does.
_CSV_FIELD_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(_CSV_FIELD_LIMIT)
_CSV_UNCLOSED_QUOTE = "unexpected end of data"  # csv's error, when strict, at an unclosed quote


class RowError(ValueError):
    """Why one row cannot be imported."""


class FileError(ValueError):
    """Why the file cannot be read at all (not UTF-8, broken CSV): none of it is imported."""


@dataclass(slots=True)
class ImportReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def as_json(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "errors": [{"line": line, "error": error} for line, error in self.errors],
        }


BATCH_SIZE = 5000


def import_calls(
    database: Database,
    account_id: int,
    records: Iterable[tuple[int, Any]],
    *,
    on_wait: Callable[[], None] = lambda: None,
) -> ImportReport:
    """Validate and upsert every record in one transaction: all good rows land, or none do.

    One transaction means a reader never sees half an import and a killed import leaves nothing
    behind; rerunning it is safe because rows are keyed by (account, sid). Imports into one
    account take turns; `on_wait` is told when this one waits for another.
    """
    report = ImportReport()
    with database.transaction(write=True, changing=account_id) as tx, bulk_writes(tx):
        lock_account_imports(tx, account_id, on_wait=on_wait)
        campaigns = {c.id: c for c in list_campaigns(tx, account_id)}
        batch: dict[str, tuple[Any, ...]] = {}
        callers: set[tuple[int, str]] = set()
        with _BatchWriter(tx, account_id, _Tally(report)) as writer:
            for line, record in records:
                try:
                    row, caller = validate_record(record, campaigns)
                except RowError as exc:
                    report.errors.append((line, str(exc)))
                    continue
                batch[row[_SID_INDEX]] = row  # a sid repeated in the batch keeps its last row
                callers.add((row[0], caller))
                if len(batch) >= BATCH_SIZE:
                    writer.write(batch)
                    batch = {}
            writer.write(batch)
    remember_callers_after(database, callers)
    return report


class _Tally:
    """Counts an import's calls, each once however often its sid repeats, in any batches.

    A call counts as its sid's first merge found it: inserted, updated or unchanged; but when a
    later merge changes a call first found unchanged, it moves from unchanged to updated. The
    sids merged so far are kept as hash(sid) only: a 64-bit collision could miscount the report,
    never the stored calls, which are merged by their exact sid.
    """

    def __init__(self, report: ImportReport) -> None:
        self._report = report
        self._merged: set[int] = set()  # hash(sid) of every call merged so far
        self._unchanged: set[int] = set()  # of those counted unchanged

    def add(self, sids: KeysView[str], changed: list[Row]) -> None:
        """Count a merge of the calls `sids`, which inserted or updated those `changed` lists
        (as sid, inserted). A repeated sid is never inserted: its first merge stored it."""
        report = self._report
        batch = set(map(hash, sids))
        if len(changed) == len(batch):  # every call changed, as in a first import
            changed_now = batch
        else:
            changed_now = set(map(hash, map(operator.itemgetter(0), changed)))
        repeated = batch & self._merged
        if repeated:
            # Counted at their first merge; but a call counted unchanged, now changed, moves.
            moved = repeated & changed_now & self._unchanged
            self._unchanged -= moved
            report.unchanged -= len(moved)
            report.updated += len(moved)
            batch, changed_now = batch - repeated, changed_now - repeated
        inserted = sum(map(operator.itemgetter(1), changed))
        report.inserted += inserted
        report.updated += len(changed_now) - inserted
        report.unchanged += len(batch) - len(changed_now)
        if len(changed_now) < len(batch):
            self._unchanged |= batch - changed_now
        self._merged |= batch


class _BatchWriter:
    """Merges each batch on a thread of its own while the next one is read and validated.

    The importing thread stages each batch itself, as loading rows holds the GIL row by row (on
    the writer thread, each row waited for its turn beside the validation). The writer thread
    merges it: one statement that the engine runs without the GIL, while the importing thread
    validates the next batch. On 300,000 calls that made SQLite 1.4x faster and PostgreSQL 1.1x,
    against staging on the writer thread too. One batch at most is in flight, and the
    transaction is never used by both threads at once.
    """

    def __init__(self, tx: Connection, account_id: int, tally: _Tally) -> None:
        self._tx, self._account_id, self._tally = tx, account_id, tally
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self._pending: Future[None] | None = None

    def write(self, batch: dict[str, tuple[Any, ...]]) -> None:
        """Merge `batch` (rows by sid), once the batch before it is merged and counted."""
        self._wait()
        if batch:
            stage_calls(self._tx, list(batch.values()))
            self._pending = self._thread.submit(self._merge, batch.keys())

    def _merge(self, sids: KeysView[str]) -> None:
        self._tally.add(sids, merge_staged_calls(self._tx, self._account_id))

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self._wait()
            elif self._pending is not None:
                # Let the write in flight end before the transaction rolls back under it.
                wait([self._pending])
        finally:
            self._thread.shutdown(wait=True)


def detect_format(path: Path) -> FileFormat:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(
        f"cannot tell the format of {path.name}: name it .jsonl or .csv, or pass --format"
    )


def read_records(stream: BinaryIO, file_format: FileFormat) -> Iterator[tuple[int, Any]]:
    """(line number, parsed record or RowError) for each non-blank line/row of the file."""
    if file_format == "jsonl":
        yield from _read_jsonl(stream)
    else:
        yield from _read_csv(stream)


def _read_jsonl(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    # A line is read MAX_LINE_BYTES + 1 bytes at most: a longer one is never held whole.
    lines = iter(functools.partial(stream.readline, MAX_LINE_BYTES + 1), b"")
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            _skip_line(stream, line)
            yield number, RowError(f"is longer than {MAX_LINE_BYTES // 1024} KiB")
            continue
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)  # as some Windows editors save it
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, RowError(f"not valid JSON: {exc.msg}")


def _skip_line(stream: BinaryIO, start: bytes) -> None:
    """Read past the rest of the line that `start` began, MAX_LINE_BYTES at a time."""
    chunk = start
    while chunk and not chunk.endswith(b"\n"):
        chunk = stream.readline(MAX_LINE_BYTES)


def _read_csv(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    # Strict, a quote left open is an error at the end of the file, rather than closed there
    # silently with every row after it in its cell; so is text after a closing quote.
    reader = csv.reader(text, strict=True)
    number = 0  # the line the last row read ends on
    try:
        header = next(reader, None)
        if header is None:
            return
        number = reader.line_num
        repeated = [name for name in header if header.count(name) > 1]
        if repeated:
            raise FileError(f"line {number}: the header names {_shown(repeated[0])} twice")
        unknown = [name for name in header if name not in _KNOWN_FIELDS]
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if unknown:
                yield number, RowError(f"unknown field {_shown(unknown[0])} in the header")
            elif len(row) != len(header):
                yield number, RowError(f"has {len(row)} cells where the header names {len(header)}")
            else:
                yield number, _CsvRecord(zip(header, row, strict=True))
    except UnicodeDecodeError as exc:
        raise FileError("is not UTF-8 text: save it as UTF-8 and import it again") from exc
    except csv.Error as exc:
        if str(exc) == _CSV_UNCLOSED_QUOTE:
            raise FileError(
                f"line {number + 1}: a quote opened in this row is never closed"
            ) from exc
        raise FileError(f"line {reader.line_num}: {exc}") from exc
    finally:
        text.detach()  # the stream stays the caller's to close


class _CsvRecord(dict[str, str]):
    """A CSV row: every value is text, so types are read from it rather than checked."""


def validate_record(record: Any, campaigns: Mapping[str, Campaign]) -> tuple[tuple[Any, ...], str]:
    """One row of `db.calls.STORED_FIELDS` from a parsed record, and its caller (`from_number`),
    or RowError saying why not."""
    if isinstance(record, RowError):
        raise record
    if not isinstance(record, dict):
        raise RowError("is not a JSON object")
    if not _KNOWN_FIELDS.issuperset(record):
        raise RowError(f"unknown field {_shown(min(set(record) - _KNOWN_FIELDS))}")
    for name in CALL_REQUIRED_FIELDS:
        if record.get(name) in (None, ""):
            raise RowError(f"{name} is required")
    sid = record["sid"]
    if sid.__class__ is not str or len(sid) > MAX_SID_CHARS or " " in sid or not sid.isprintable():
        raise _sid_error(sid)
    from_text = isinstance(record, _CsvRecord)
    call = None if from_text else _clean_json_call(record)
    if call is None:
        call = _read_call(record, from_text=from_text)
    campaign = campaigns.get(call["campaign_id"])
    if campaign is None:
        raise RowError(f"unknown campaign_id {_shown(call['campaign_id'])} for this account")
    row = (
        campaign.company_id,
        campaign.id,
        call["start_time"],
        call["sid"],
        *render_fields(call, campaign),
    )
    return row, str(call.get("from_number") or "")


def _sid_error(sid: Any) -> RowError:
    if not isinstance(sid, str):
        return RowError(f"sid must be a string, not {type(sid).__name__}")
    return RowError(
        f"sid {_shown(sid)} must be 1 to {MAX_SID_CHARS} visible characters, without spaces"
    )


def _shown(value: Any) -> str:
    """`value` quoted for an error message, cut short if long."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _clean_json_call(record: dict[str, Any]) -> dict[str, Any] | None:
    """The call of a JSON record whose every value already has its type, or None to read it
    value by value. Most records are such, and checking them whole costs a third as much."""
    call = _DEFAULTS | record
    texts = _texts_of(call)
    if set(map(type, texts)) != {str}:
        return None
    joined = "".join(texts)
    # All within one field's bound, each is: a longer row is checked field by field.
    if len(joined) > MAX_TEXT_CHARS or "\x00" in joined:
        return None
    duration, start_time = call["duration"], call["start_time"]
    if (
        duration.__class__ is not int
        or start_time.__class__ is not int
        or call["is_first_time_caller"].__class__ is not bool
        or not 0 <= duration <= MAX_DURATION_SECONDS
        or not 0 <= start_time <= MAX_EPOCH_MS
    ):
        return None
    return call


def _read_call(record: dict[str, Any], *, from_text: bool) -> dict[str, Any]:
    get = record.get
    call: dict[str, Any] = {}
    for name, is_plain_string in _FIELD_KINDS:
        raw = get(name)
        # Most values are already clean strings: take them without a call per field.
        if (
            is_plain_string
            and raw.__class__ is str
            and "\x00" not in raw
            and len(raw) <= MAX_TEXT_CHARS
        ):
            call[name] = raw
        else:
            call[name] = _read_value(name, raw, from_text=from_text)
    return call


def _read_value(name: str, raw: Any, *, from_text: bool) -> Any:
    if name in _INTEGER_FIELDS:
        return _read_integer(name, raw, from_text=from_text)
    if name in CALL_BOOLEAN_FIELDS:
        return _read_boolean(name, raw, from_text=from_text)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise RowError(f"{name} must be a string, not {type(raw).__name__}")
    if "\x00" in raw:
        raise RowError(f"{name} contains a NUL character")
    if len(raw) > MAX_TEXT_CHARS:
        raise RowError(f"{name} has {len(raw)} characters, more than the {MAX_TEXT_CHARS} allowed")
    return raw


def _read_integer(name: str, raw: Any, *, from_text: bool) -> int:
    if raw is None or (from_text and raw == ""):
        return 0
    digits = _DIGITS.match(raw.strip()) if from_text and isinstance(raw, str) else None
    if digits:
        value = int(digits[1])
    elif not from_text and isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        raise RowError(f"{name} must be a non-negative integer, not {_shown(raw)}")
    limit = MAX_EPOCH_MS if name == "start_time" else MAX_DURATION_SECONDS
    if not 0 <= value <= limit:
        unit = "epoch milliseconds" if name == "start_time" else "seconds"
        raise RowError(f"{name} {value} is out of range (0 to {limit} {unit})")
    return value


def _read_boolean(name: str, raw: Any, *, from_text: bool) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if from_text and isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise RowError(f"{name} must be true or false, not {_shown(raw)}")
