import fcntl
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes import DAY_MS, NOW_MS, FakeAPI, Interrupted, make_call, make_calls
from phonewagon import Call, Page
from phonewagon.export import FileFormat, read_calls
from phonewagon.sync import LOCK_FILE, STATE_FILE, SyncError, sync_calls
from phonewagon.times import utc_day

HOUR_MS = 3_600_000


def day_files(directory: Path) -> list[Path]:
    return sorted((directory / "calls").iterdir())


def synced(directory: Path, file_format: FileFormat = "jsonl") -> list[Call]:
    """Every call in the directory's day files, newest first."""
    return [
        call for path in reversed(day_files(directory)) for call in read_calls(path, file_format)
    ]


def snapshot(directory: Path, file_format: FileFormat = "jsonl") -> dict[str, Any]:
    files: dict[str, Any] = {p.name: list(read_calls(p, file_format)) for p in day_files(directory)}
    files[STATE_FILE] = json.loads((directory / STATE_FILE).read_text())
    return files


def state(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / STATE_FILE).read_text()))


@pytest.fixture
def api() -> FakeAPI:
    """60 calls an hour apart, the newest at NOW_MS: three UTC days."""
    return FakeAPI(make_calls(60))


def test_first_sync_writes_every_call_into_its_utc_day_file(api: FakeAPI, tmp_path: Path) -> None:
    summary = sync_calls(api.client(), tmp_path)
    assert (summary.new, summary.updated, summary.unchanged) == (60, 0, 0)
    assert [p.name for p in day_files(tmp_path)] == [
        "2026-11-16.jsonl",
        "2026-11-17.jsonl",
        "2026-11-18.jsonl",
    ]
    assert summary.days_touched == ["2026-11-18", "2026-11-17", "2026-11-16"]
    for path in day_files(tmp_path):
        assert {utc_day(call.start_time) for call in read_calls(path, "jsonl")} == {path.stem}
    assert [call.id for call in synced(tmp_path)] == list(range(60, 0, -1))
    assert api.calls_requests()[0].url.params.get("start_time") == "0"
    assert state(tmp_path) == {
        "version": 1,
        "format": "jsonl",
        "newest_start_time": NOW_MS,
        "company_id": None,
        "campaign_id": None,
    }


def test_a_day_file_lists_its_calls_newest_first_one_json_object_a_line(
    api: FakeAPI, tmp_path: Path
) -> None:
    sync_calls(api.client(), tmp_path)
    lines = (tmp_path / "calls" / "2026-11-18.jsonl").read_text(encoding="utf-8").splitlines()
    times = [json.loads(line)["start_time"] for line in lines]
    assert times == sorted(times, reverse=True)
    assert len(lines) == 12  # 00:06:40 ... 11:06:40


def test_second_sync_fetches_from_newest_minus_lookback_and_adds_new_calls(
    api: FakeAPI, tmp_path: Path
) -> None:
    sync_calls(api.client(), tmp_path)
    api.calls += [make_call(100 + i, NOW_MS + (i + 1) * HOUR_MS) for i in range(5)]
    api.requests.clear()

    summary = sync_calls(api.client(), tmp_path, lookback=timedelta(hours=3))

    assert api.calls_requests()[0].url.params["start_time"] == str(NOW_MS - 3 * HOUR_MS)
    assert (summary.new, summary.updated, summary.unchanged) == (5, 0, 4)
    assert summary.days_touched == ["2026-11-18"]
    assert len(synced(tmp_path)) == 65
    assert state(tmp_path)["newest_start_time"] == NOW_MS + 5 * HOUR_MS


def test_a_late_updated_call_inside_the_lookback_replaces_its_record(
    api: FakeAPI, tmp_path: Path
) -> None:
    """Status, duration and recording arriving late: the fetched version wins, written once."""
    sync_calls(api.client(), tmp_path)
    late = api.update_call(
        58, status="completed", duration=321, recording_url="https://rec.test/CA58.mp3"
    )
    api.update_call(59, status="no-answer", duration=0)

    summary = sync_calls(api.client(), tmp_path, lookback=timedelta(days=1))

    assert (summary.new, summary.updated) == (0, 2)
    calls = synced(tmp_path)
    assert len(calls) == 60
    assert Counter(call.sid for call in calls).most_common(1)[0][1] == 1
    assert next(c for c in calls if c.id == 58) == Call.from_dict(late)
    assert next(c for c in calls if c.id == 59).status == "no-answer"
    lines = sum(len(p.read_text().splitlines()) for p in day_files(tmp_path))
    assert lines == 60


def test_a_call_updated_before_the_lookback_window_is_not_fetched_again(
    api: FakeAPI, tmp_path: Path
) -> None:
    """The look-back is the trade: older late updates need a longer --lookback."""
    sync_calls(api.client(), tmp_path)
    api.update_call(1, status="busy")
    summary = sync_calls(api.client(), tmp_path, lookback=timedelta(hours=1))
    assert summary.updated == 0
    assert next(c for c in synced(tmp_path) if c.id == 1).status == "completed"


def test_a_sync_with_nothing_new_rewrites_no_file(api: FakeAPI, tmp_path: Path) -> None:
    sync_calls(api.client(), tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in day_files(tmp_path)}
    summary = sync_calls(api.client(), tmp_path, lookback=timedelta(days=7))
    assert (summary.new, summary.updated, summary.unchanged) == (0, 0, 60)
    assert summary.days_touched == []
    assert {p: p.stat().st_mtime_ns for p in day_files(tmp_path)} == mtimes


def test_an_empty_account_syncs_to_an_empty_directory_and_remembers_its_format(
    tmp_path: Path,
) -> None:
    summary = sync_calls(FakeAPI().client(), tmp_path, file_format="csv")
    assert (summary.new, summary.days_touched) == (0, [])
    assert day_files(tmp_path) == []
    assert state(tmp_path)["format"] == "csv"
    assert state(tmp_path)["newest_start_time"] is None


def test_calls_either_side_of_utc_midnight_go_to_their_own_day(tmp_path: Path) -> None:
    midnight = NOW_MS - NOW_MS % DAY_MS
    api = FakeAPI([make_call(1, midnight - 1), make_call(2, midnight)])
    sync_calls(api.client(), tmp_path)
    assert {p.name: [c.id for c in read_calls(p, "jsonl")] for p in day_files(tmp_path)} == {
        "2026-11-17.jsonl": [1],
        "2026-11-18.jsonl": [2],
    }


def test_a_day_file_is_written_as_soon_as_the_stream_reaches_an_earlier_day(
    api: FakeAPI, tmp_path: Path
) -> None:
    """Only one day is ever held: the newest day is on disk before the oldest is fetched."""
    api.default_page_size = 5
    on_disk_per_page: list[list[str]] = []

    def note(page: Page) -> None:
        folder = tmp_path / "calls"
        on_disk_per_page.append(sorted(p.name for p in folder.iterdir()) if folder.exists() else [])

    sync_calls(api.client(), tmp_path, on_page=note)
    assert len(on_disk_per_page) == 12
    assert on_disk_per_page[0] == []
    assert on_disk_per_page[-1] == ["2026-11-17.jsonl", "2026-11-18.jsonl"]


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "parquet"])
def test_an_interrupted_sync_rerun_ends_like_an_uninterrupted_one(
    tmp_path: Path, file_format: FileFormat
) -> None:
    """The state moves only at the end, and merging by sid makes fetching again harmless."""
    calm, interrupted = FakeAPI(make_calls(60)), FakeAPI(make_calls(60))
    calm_dir, interrupted_dir = tmp_path / "calm", tmp_path / "interrupted"
    for api, directory in ((calm, calm_dir), (interrupted, interrupted_dir)):
        api.default_page_size = 7
        sync_calls(api.client(), directory, file_format=file_format)
        api.calls += [make_call(100 + i, NOW_MS + (i + 1) * HOUR_MS) for i in range(30)]
        api.update_call(55, status="busy", duration=0)
    state_before = state(interrupted_dir)
    lookback = timedelta(hours=12)

    sync_calls(calm.client(), calm_dir, lookback=lookback)
    interrupted.interrupt_at_request = len(interrupted.requests) + 4
    with pytest.raises(Interrupted):
        sync_calls(interrupted.client(), interrupted_dir, lookback=lookback)
    assert state(interrupted_dir) == state_before
    assert (interrupted_dir / "calls" / f"2026-11-19.{file_format}").exists()  # written before
    interrupted.interrupt_at_request = None
    sync_calls(interrupted.client(), interrupted_dir, lookback=lookback)

    assert snapshot(interrupted_dir, file_format) == snapshot(calm_dir, file_format)
    calls = synced(calm_dir, file_format)
    assert len(calls) == len({call.sid for call in calls}) == 90
    assert next(call for call in calls if call.id == 55).status == "busy"


def test_an_interrupted_first_sync_rerun_syncs_everything(api: FakeAPI, tmp_path: Path) -> None:
    api.default_page_size = 10
    api.interrupt_at_request = 4
    with pytest.raises(Interrupted):
        sync_calls(api.client(), tmp_path)
    assert not (tmp_path / STATE_FILE).exists()
    assert day_files(tmp_path)  # the days completed before the interruption are kept
    api.interrupt_at_request = None
    summary = sync_calls(api.client(), tmp_path)
    assert summary.new + summary.unchanged == 60
    assert [call.id for call in synced(tmp_path)] == list(range(60, 0, -1))


def test_no_temporary_file_is_left_and_leftovers_are_removed(api: FakeAPI, tmp_path: Path) -> None:
    (tmp_path / "calls").mkdir()
    leftover = tmp_path / "calls" / ".2026-11-18.jsonl.tmp"
    leftover.write_text("half a file")
    sync_calls(api.client(), tmp_path)
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == sorted(
        [LOCK_FILE, STATE_FILE]
    )
    assert all(not p.name.startswith(".") for p in (tmp_path / "calls").iterdir())


def files_in(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_a_second_sync_of_a_locked_directory_is_refused_and_changes_nothing(
    api: FakeAPI, tmp_path: Path
) -> None:
    """Overlapping cron jobs: the second run must not touch what the first is writing."""
    sync_calls(api.client(), tmp_path)
    leftover = tmp_path / "calls" / ".2026-11-18.jsonl.tmp"  # as if the running sync wrote it
    leftover.write_text("being written")
    api.calls.append(make_call(61, start_time=NOW_MS + HOUR_MS))
    before = files_in(tmp_path)
    requests = len(api.requests)
    with open(tmp_path / LOCK_FILE, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SyncError, match=f"another sync of {tmp_path} is running"):
            sync_calls(api.client(), tmp_path, lookback=timedelta(0))
    assert files_in(tmp_path) == before
    assert len(api.requests) == requests
    summary = sync_calls(api.client(), tmp_path, lookback=timedelta(0))  # the lock is released
    assert summary.new == 1


def test_the_format_is_remembered_and_another_is_refused(api: FakeAPI, tmp_path: Path) -> None:
    sync_calls(api.client(), tmp_path, file_format="csv")
    sync_calls(api.client(), tmp_path)  # no format given: the directory's own
    assert {p.suffix for p in day_files(tmp_path)} == {".csv"}
    with pytest.raises(SyncError, match="synced as csv: drop --format"):
        sync_calls(api.client(), tmp_path, file_format="jsonl")


def test_day_files_of_another_format_are_refused(api: FakeAPI, tmp_path: Path) -> None:
    """A first run interrupted in one format, rerun in another, would hold calls twice."""
    (tmp_path / "calls").mkdir()
    (tmp_path / "calls" / "2026-11-18.csv").write_text("")
    with pytest.raises(SyncError, match=r"already holds \.csv files"):
        sync_calls(api.client(), tmp_path, file_format="jsonl")


def test_filters_are_sent_remembered_and_others_refused(tmp_path: Path) -> None:
    api = FakeAPI([make_call(1, NOW_MS, company_id=2, campaign_id="s9"), make_call(2, NOW_MS)])
    summary = sync_calls(api.client(), tmp_path, company_id=2)
    assert summary.new == 1
    assert api.calls_requests()[0].url.params["company_id"] == "2"

    sync_calls(api.client(), tmp_path)  # no filter given: the directory's own
    assert api.calls_requests()[-1].url.params["company_id"] == "2"
    with pytest.raises(SyncError, match="synced with --company-id 2: drop the filters"):
        sync_calls(api.client(), tmp_path, campaign_id="s1")


@pytest.mark.parametrize(
    "content", ["{not json", '{"version": 9}', '{"version": 1, "format": "xlsx"}', "[]"]
)
def test_a_damaged_state_file_is_refused_with_what_to_do(
    api: FakeAPI, tmp_path: Path, content: str
) -> None:
    (tmp_path / STATE_FILE).write_text(content)
    with pytest.raises(SyncError, match="delete it to sync everything again"):
        sync_calls(api.client(), tmp_path)
    assert api.requests == []
