"""Streaming writers (and readers) of calls: CSV, JSON Lines, Parquet and a terminal table.

Every writer consumes an iterable of calls one at a time and returns how many it wrote; none
holds more than one Parquet row group in memory.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal, TextIO, get_type_hints

from phonewagon.errors import PhonewagonError
from phonewagon.models import CALL_FIELDS, Call
from phonewagon.times import from_epoch_ms

FileFormat = Literal["csv", "jsonl", "parquet"]
Format = Literal["table", "csv", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("table", "csv", "jsonl", "parquet")
FILE_FORMATS: tuple[FileFormat, ...] = ("jsonl", "csv", "parquet")
FORMAT_BY_SUFFIX: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "table",
}
PARQUET_ROW_GROUP_SIZE = 10_000
ARROW_BATCH_SIZE = 1_000
Destination = str | os.PathLike[str]
# mimalloc, pyarrow's allocator, otherwise keeps what each Parquet row group freed for later.
ARROW_ALLOCATOR_SETTINGS = {
    "MIMALLOC_PURGE_DELAY": "0",  # return freed memory to the system at once, not 10 ms later
    "MIMALLOC_ARENA_EAGER_COMMIT": "0",  # take memory from the system as it is used, not ahead
}


class MissingDependencyError(PhonewagonError):
    """An optional dependency (pyarrow, for Parquet) is not installed."""


def format_of_path(path: Destination) -> Format | None:
    return FORMAT_BY_SUFFIX.get(Path(path).suffix.lower())


@cache
def call_field_types() -> dict[str, type]:
    """Each call field's Python type (int, bool or str), in CALL_FIELDS order."""
    hints = get_type_hints(Call)
    return {name: hints[name] for name in CALL_FIELDS}


# --- JSON Lines ---------------------------------------------------------------------------------


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def write_jsonl(calls: Iterable[Call], stream: TextIO) -> int:
    """One compact JSON object per line, UTF-8 as is (no \\u escapes), keys in CALL_FIELDS order."""
    count = 0
    for call in calls:
        stream.write(_JSON.encode(call.to_dict()) + "\n")
        count += 1
    return count


def read_jsonl(path: Destination, defaults: Mapping[str, Any] | None = None) -> Iterator[Call]:
    with open(path, encoding="utf-8", newline="\n") as stream:
        for line in stream:
            if line.strip():
                yield Call.from_dict({**(defaults or {}), **json.loads(line)})


# --- CSV ----------------------------------------------------------------------------------------


def write_csv(calls: Iterable[Call], stream: TextIO) -> int:
    """RFC 4180 CSV, header = CALL_FIELDS, booleans `true`/`false`; `stream` opened newline=""."""
    writer = csv.writer(stream)
    writer.writerow(CALL_FIELDS)
    count = 0
    for call in calls:
        writer.writerow(_csv_cell(value) for value in call.to_dict().values())
        count += 1
    return count


def _csv_cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def read_csv(path: Destination, defaults: Mapping[str, Any] | None = None) -> Iterator[Call]:
    parsers: dict[type, Callable[[str], Any]] = {int: int, bool: _parse_bool, str: str}
    types = call_field_types()
    with open(path, encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream):
            record = {name: parsers[types[name]](value) for name, value in row.items()}
            yield Call.from_dict({**(defaults or {}), **record})


def _parse_bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text == "true"


# --- Parquet ------------------------------------------------------------------------------------


def require_pyarrow() -> None:
    """Fail early, before any request, when Parquet is asked for but pyarrow is missing."""
    _import_pyarrow()


def _import_pyarrow() -> Any:
    try:
        # Imported here, not at the top: only Parquet users install pyarrow.
        import pyarrow  # type: ignore[import-untyped]  # pyarrow ships no type hints
        import pyarrow.parquet  # type: ignore[import-untyped]
    except ImportError:
        raise MissingDependencyError(
            "Parquet needs pyarrow: pip install 'phonewagon[parquet]'"
        ) from None
    return pyarrow


def economise_arrow_memory() -> None:
    """Have pyarrow's allocator give memory back as soon as it is freed; the environment wins.

    pyarrow reads these settings once, when it is imported: after that this does nothing. For a
    process that writes Parquet and ends (the command line); a program that imports the library
    keeps its own. The command's Parquet export of 2,000,000 calls peaked at 96 MB with them,
    111 MB without (107 MB on the C library's malloc instead).
    """
    if "pyarrow" not in sys.modules:
        for name, value in ARROW_ALLOCATOR_SETTINGS.items():
            os.environ.setdefault(name, value)


def parquet_schema() -> Any:
    """The pyarrow schema of a call: int64, bool and string columns in CALL_FIELDS order."""
    pa = _import_pyarrow()
    arrow_types = {int: pa.int64(), bool: pa.bool_(), str: pa.string()}
    return pa.schema(
        [
            pa.field(name, arrow_types[kind], nullable=False)
            for name, kind in call_field_types().items()
        ]
    )


def write_parquet(
    calls: Iterable[Call],
    destination: Destination | IO[bytes],
    *,
    row_group_size: int = PARQUET_ROW_GROUP_SIZE,
) -> int:
    """Parquet with an explicit schema, one row group per `row_group_size` calls.

    The row group being filled is held as Arrow columns, built `ARROW_BATCH_SIZE` calls at a
    time, never as a row group of Python objects. Only the footer, written last, grows with the
    file: by ~28 KB a row group.
    """
    pa = _import_pyarrow()
    schema = parquet_schema()
    remaining = iter(calls)
    count = 0
    with pa.parquet.ParquetWriter(destination, schema) as writer:
        batches: list[Any] = []
        buffered = 0
        while chunk := list(islice(remaining, min(ARROW_BATCH_SIZE, row_group_size - buffered))):
            batches.append(_record_batch(chunk, schema))
            buffered += len(chunk)
            count += len(chunk)
            if buffered == row_group_size:
                writer.write_table(pa.Table.from_batches(batches, schema))
                batches, buffered = [], 0
        if batches or count == 0:
            writer.write_table(pa.Table.from_batches(batches, schema))
    return count


def _record_batch(calls: Sequence[Call], schema: Any) -> Any:
    pa = _import_pyarrow()
    columns = [[getattr(call, name) for call in calls] for name in schema.names]
    return pa.record_batch(columns, schema=schema)


def read_parquet(path: Destination, defaults: Mapping[str, Any] | None = None) -> Iterator[Call]:
    pa = _import_pyarrow()
    for batch in pa.parquet.ParquetFile(path).iter_batches():
        for row in batch.to_pylist():
            yield Call.from_dict({**(defaults or {}), **row})


# --- Terminal table -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: int
    align_right: bool = False

    def render(self, text: str) -> str:
        if len(text) > self.width:
            text = text[: self.width - 1] + "…"
        return text.rjust(self.width) if self.align_right else text.ljust(self.width)


def write_table(rows: Iterable[Sequence[str]], columns: Sequence[Column], stream: TextIO) -> int:
    """A fixed-width table: the widths are chosen up front, so rows print as they arrive."""
    stream.write(_table_line([c.title for c in columns], columns))
    stream.write(_table_line(["─" * c.width for c in columns], columns))
    count = 0
    for row in rows:
        stream.write(_table_line(row, columns))
        count += 1
    return count


def _table_line(cells: Sequence[str], columns: Sequence[Column]) -> str:
    return "  ".join(c.render(cell) for c, cell in zip(columns, cells, strict=True)).rstrip() + "\n"


CALL_TABLE_COLUMNS = (
    Column("started (UTC)", 19),
    Column("duration", 8, align_right=True),
    Column("status", 11),
    Column("from", 16),
    Column("campaign", 20),
    Column("source", 20),
)


def write_calls_table(calls: Iterable[Call], stream: TextIO) -> int:
    return write_table((_call_row(call) for call in calls), CALL_TABLE_COLUMNS, stream)


def _call_row(call: Call) -> tuple[str, ...]:
    started = from_epoch_ms(call.start_time).strftime("%Y-%m-%d %H:%M:%S")
    minutes, seconds = divmod(call.duration, 60)
    return (
        started,
        f"{minutes}:{seconds:02d}",
        call.status,
        call.from_number,
        call.campaign_name,
        call.user_source,
    )


def write_records(rows: Sequence[dict[str, Any]], output_format: Format, stream: TextIO) -> int:
    """Companies or campaigns (`{"id", "name"}` rows): a table sized to fit, CSV or JSON Lines."""
    fields = ["id", "name"]
    if output_format == "table":
        widths = [max([len(f), *(len(str(row[f])) for row in rows)]) for f in fields]
        columns = [Column(f, min(w, 60)) for f, w in zip(fields, widths, strict=True)]
        return write_table(([str(row[f]) for f in fields] for row in rows), columns, stream)
    if output_format == "csv":
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    else:
        stream.writelines(_JSON.encode(row) + "\n" for row in rows)
    return len(rows)


# --- By name ------------------------------------------------------------------------------------


def write_calls(calls: Iterable[Call], destination: Destination, file_format: Format) -> int:
    """Write `calls` to the file at `destination` in `file_format`."""
    if file_format == "parquet":
        return write_parquet(calls, destination)
    with open(destination, "w", encoding="utf-8", newline="") as stream:
        return TEXT_WRITERS[file_format](calls, stream)


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` that becomes `path` only when the block succeeds.

    The temporary is flushed to disk before it is swapped in atomically, so `path` holds either
    the old or the whole new content, even after a crash; on failure it is removed. A `path` that
    exists but is not a regular file (/dev/stdout, a FIFO) is written directly.
    """
    if path.exists() and not path.is_file():
        yield path
        return
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        yield temporary
        with open(temporary, "r+b") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except OSError as error:
        if error.filename == str(temporary):
            error.filename = str(path)  # the caller asked for `path`, not for our temporary
        raise
    finally:
        temporary.unlink(missing_ok=True)


def read_calls(
    path: Destination, file_format: FileFormat, defaults: Mapping[str, Any] | None = None
) -> Iterator[Call]:
    """The calls of a file written by `write_calls`; `defaults` fills fields a record lacks (an
    older file's)."""
    readers = {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}
    return readers[file_format](path, defaults)


TEXT_WRITERS: dict[str, Callable[[Iterable[Call], TextIO], int]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "table": write_calls_table,
}
