import csv
import dataclasses
import io
import itertools
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fakes import as_calls, make_call, make_calls
from phonewagon import CALL_FIELDS, Call
from phonewagon.export import (
    MissingDependencyError,
    read_calls,
    write_calls,
    write_calls_table,
    write_csv,
    write_jsonl,
    write_parquet,
)

UNUSUAL = [
    'say "hi", then leave',
    "line one\nline two\r\nline three",
    "Zoë Ünicode — ñandú",
    "emoji 📞☎️👍🏽",
    "separator\u2028inside",
    "tab\tand, comma",
    " leading and trailing spaces ",
    "=SUM(A1:A2)",
    "",
]


def unusual_calls() -> list[Call]:
    return as_calls(
        make_call(i + 1, 1_795_000_000_000 - i, contact_name=text, landing_page=f"{text}?q=1")
        for i, text in enumerate(UNUSUAL)
    )


def test_jsonl_is_one_compact_utf8_object_per_line_in_field_order() -> None:
    """Non-ASCII and emoji are written as themselves; newlines inside values are escaped."""
    call = Call.from_dict(make_call(7, 1_795_000_000_000, contact_name='Zoë "📞", x\ny'))
    stream = io.StringIO()
    assert write_jsonl([call], stream) == 1
    line = stream.getvalue()
    assert line.endswith("}\n")
    assert line.count("\n") == 1
    assert '"contact_name":"Zoë \\"📞\\", x\\ny"' in line
    assert line.index('"account_id"') < line.index('"ad_position"') < line.index('"utm_term"')
    assert list(json.loads(line)) == list(CALL_FIELDS)


def test_jsonl_round_trips_unusual_strings(tmp_path: Path) -> None:
    calls = unusual_calls()
    path = tmp_path / "calls.jsonl"
    write_calls(calls, path, "jsonl")
    assert path.read_bytes().count(b"\n") == len(calls)
    assert list(read_calls(path, "jsonl")) == calls


def test_csv_has_the_fields_as_header_and_booleans_as_true_false() -> None:
    calls = as_calls(
        [
            make_call(1, 1_795_000_000_000, is_first_time_caller=True, duration=0),
            make_call(2, 1_795_000_000_001, is_first_time_caller=False, contact_name='A, "B"'),
        ]
    )
    stream = io.StringIO(newline="")
    assert write_csv(calls, stream) == 2
    lines = stream.getvalue().split("\r\n")
    assert lines[0] == ",".join(CALL_FIELDS)
    first = dict(zip(CALL_FIELDS, lines[1].split(","), strict=True))
    assert first["is_first_time_caller"] == "true"
    assert first["duration"] == "0"
    assert first["start_time"] == "1795000000000"
    assert ',"A, ""B""",' in lines[2]
    assert lines[2].split(",")[CALL_FIELDS.index("is_first_time_caller") + 1] == "false"
    assert lines[3] == ""


def test_csv_round_trips_unusual_strings(tmp_path: Path) -> None:
    """Quotes, commas, CR/LF inside values, non-ASCII and emoji survive a spreadsheet-style CSV."""
    calls = unusual_calls()
    path = tmp_path / "calls.csv"
    write_calls(calls, path, "csv")
    with open(path, encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["contact_name"] for row in rows] == UNUSUAL
    assert list(read_calls(path, "csv")) == calls


def test_parquet_has_an_explicit_schema_and_round_trips(tmp_path: Path) -> None:
    calls = unusual_calls()
    path = tmp_path / "calls.parquet"
    assert write_calls(calls, path, "parquet") == len(calls)
    table = pq.read_table(path)
    assert table.schema.names == list(CALL_FIELDS)
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("start_time").type == pa.int64()
    assert table.schema.field("is_first_time_caller").type == pa.bool_()
    assert table.schema.field("contact_name").type == pa.string()
    assert [Call.from_dict(row) for row in table.to_pylist()] == calls
    assert list(read_calls(path, "parquet")) == calls


def test_parquet_writes_one_row_group_per_batch(tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    assert write_parquet(as_calls(make_calls(25)), path, row_group_size=10) == 25
    metadata = pq.ParquetFile(path).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [10, 10, 5]


def test_parquet_row_groups_need_not_be_a_multiple_of_the_arrow_batch() -> None:
    sink = io.BytesIO()
    assert write_parquet(synthetic_calls(6_000), sink, row_group_size=2_500) == 6_000
    metadata = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [2_500, 2_500, 1_000]


def test_parquet_of_no_calls_is_a_valid_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    assert write_parquet([], path) == 0
    assert pq.read_table(path).num_rows == 0
    assert pq.read_table(path).schema.names == list(CALL_FIELDS)


def test_parquet_writes_to_a_binary_stream() -> None:
    stream = io.BytesIO()
    write_parquet(as_calls(make_calls(3)), stream)
    assert pq.read_table(io.BytesIO(stream.getvalue())).num_rows == 3


def test_parquet_without_pyarrow_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'phonewagon\[parquet\]'"):
        write_parquet(as_calls(make_calls(1)), tmp_path / "calls.parquet")


def test_table_shows_key_columns_and_truncates_long_values() -> None:
    call = Call.from_dict(
        make_call(
            1,
            1_795_000_000_000,
            duration=754,
            campaign_name="A campaign name far too long for its column",
            user_source="Yahoo organic",
        )
    )
    stream = io.StringIO()
    assert write_calls_table([call], stream) == 1
    header, rule, row = stream.getvalue().splitlines()
    assert header.split() == [
        "started",
        "(UTC)",
        "duration",
        "status",
        "from",
        "campaign",
        "source",
    ]
    assert set(rule.replace(" ", "")) == {"─"}
    assert row.startswith("2026-11-18 11:06:40     12:34  completed    +15555550100")
    assert "A campaign name far…  Yahoo organic" in row
    assert len(header) <= 120


def synthetic_calls(count: int) -> Iterator[Call]:
    template = Call.from_dict(make_call(0, 0, contact_name="Somebody Somewhere"))
    for i in range(count):
        yield dataclasses.replace(template, id=i, sid=f"CA{i:032x}", start_time=i)


class CountingSink(io.TextIOBase):
    """A text stream that keeps nothing but the number of characters written."""

    def __init__(self) -> None:
        self.characters = 0

    def write(self, text: str) -> int:
        self.characters += len(text)
        return len(text)


def checked_lockstep(calls: Iterator[Call], written: Callable[[], int]) -> Iterator[Call]:
    """Yield `calls`, failing if the writer asks for the next call before writing the last one."""
    before = written()
    for call in calls:
        yield call
        after = written()
        assert after > before, f"call {call.id} was not written before the next was asked for"
        before = after


@pytest.mark.parametrize(
    ("writer", "count"), [(write_jsonl, 100_000), (write_csv, 100_000), (write_calls_table, 10_000)]
)
def test_text_writers_write_each_call_before_taking_the_next(
    writer: Callable[[Iterable[Call], TextIO], int], count: int
) -> None:
    """Nothing accumulates: each call is out before the next one is read from the iterator."""
    sink = CountingSink()
    calls = checked_lockstep(synthetic_calls(count), lambda: sink.characters)
    assert writer(calls, sink) == count  # type: ignore[arg-type]


@pytest.mark.parametrize("writer", [write_jsonl, write_csv])
def test_text_writers_peak_memory_does_not_grow_with_the_calls(
    writer: Callable[[Iterable[Call], TextIO], int],
) -> None:
    """10,000 calls (~5 MB of output) pass through with a peak of a few kilobytes."""
    sink = CountingSink()
    tracemalloc.start()
    try:
        count = writer(synthetic_calls(10_000), sink)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert sink.characters > 150 * 10_000
    assert peak < 500_000


def test_parquet_holds_at_most_one_row_group_of_calls() -> None:
    """The file grows every `row_group_size` calls: never more than one row group is buffered."""
    sink = io.BytesIO()
    sizes: list[int] = []

    def calls() -> Iterator[Call]:
        for call in synthetic_calls(5_000):
            if call.id % 1_000 == 0:
                sizes.append(sink.tell())
            yield call

    write_parquet(calls(), sink, row_group_size=1_000)
    assert all(later > earlier for earlier, later in itertools.pairwise(sizes))


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("", {"MIMALLOC_PURGE_DELAY": "50", "MIMALLOC_ARENA_EAGER_COMMIT": "0"}),
        ("import pyarrow", {"MIMALLOC_PURGE_DELAY": "50", "MIMALLOC_ARENA_EAGER_COMMIT": None}),
    ],
)
def test_arrow_memory_settings_come_before_pyarrow_and_after_the_environment(
    first: str, expected: dict[str, str | None]
) -> None:
    """Set for a pyarrow not yet imported (it reads them then); a value already set is kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    env["MIMALLOC_PURGE_DELAY"] = "50"
    script = (
        f"{first}\n"
        "import json, os\n"
        "from phonewagon.export import ARROW_ALLOCATOR_SETTINGS, economise_arrow_memory\n"
        "economise_arrow_memory()\n"
        "print(json.dumps({name: os.environ.get(name) for name in ARROW_ALLOCATOR_SETTINGS}))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(answer.stdout) == expected
