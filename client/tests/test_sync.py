import csv
import dataclasses
import fcntl
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from fakes import DAY_MS, NOW_MS, FakeAPI, Interrupted, make_call, make_calls
from phonewagon import Call, Page
from phonewagon import sync as sync_module
from phonewagon.export import FileFormat, read_calls, write_calls
from phonewagon.sync import INCOMING_DIR, LOCK_FILE, STATE_FILE, SyncError, sync_calls
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


def feed_params(api: FakeAPI) -> list[dict[str, str]]:
    """The query of the first request of each sync since the requests were last cleared: those
    that carry no `page_size`, which only the server's `next` links add."""
    return [dict(r.url.params) for r in api.calls_requests() if "page_size" not in r.url.params]


def files_in(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.fixture
def api() -> FakeAPI:
    """60 calls an hour apart, the newest at NOW_MS: three UTC days; each last changed as it
    started."""
    return FakeAPI(make_calls(60))


def test_first_sync_follows_the_feed_from_0_into_utc_day_files(
    api: FakeAPI, tmp_path: Path
) -> None:
    summary = sync_calls(api.client(), tmp_path)
    assert (summary.new, summary.updated, summary.unchanged) == (60, 0, 0)
    assert [p.name for p in day_files(tmp_path)] == [
        "2026-11-16.jsonl",
        "2026-11-17.jsonl",
        "2026-11-18.jsonl",
    ]
    assert summary.days_touched == ["2026-11-16", "2026-11-17", "2026-11-18"]
    for path in day_files(tmp_path):
        assert {utc_day(call.start_time) for call in read_calls(path, "jsonl")} == {path.stem}
    assert [call.id for call in synced(tmp_path)] == list(range(60, 0, -1))
    assert feed_params(api) == [{"updated_since": "0"}]
    assert state(tmp_path) == {
        "version": 2,
        "format": "jsonl",
        "newest_updated_at": NOW_MS,
        "newest_id": 60,
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


def test_second_sync_follows_the_feed_from_the_last_call_and_adds_new_calls(
    api: FakeAPI, tmp_path: Path
) -> None:
    sync_calls(api.client(), tmp_path)
    api.calls += [make_call(100 + i, NOW_MS + (i + 1) * HOUR_MS) for i in range(5)]
    api.requests.clear()

    summary = sync_calls(api.client(), tmp_path)

    # After the last call of the first sync: only later changes come.
    assert feed_params(api) == [{"updated_since": str(NOW_MS), "after_id": "60"}]
    assert (summary.new, summary.updated, summary.unchanged) == (5, 0, 0)
    assert summary.days_touched == ["2026-11-18"]
    assert len(synced(tmp_path)) == 65
    assert state(tmp_path)["newest_updated_at"] == NOW_MS + 5 * HOUR_MS


def test_a_recording_that_arrives_ten_days_late_is_picked_up_with_no_look_back(
    api: FakeAPI, tmp_path: Path
) -> None:
    """A call that started ten days before the newest one changes now: the feed brings it, and
    it replaces its record in its own, old, day file, which alone is rewritten."""
    ten_days_before = NOW_MS - 10 * DAY_MS
    api.calls.append(make_call(100, ten_days_before, status="in-progress", duration=0))
    sync_calls(api.client(), tmp_path)
    untouched = {p: p.stat().st_mtime_ns for p in day_files(tmp_path) if p.stem != "2026-11-08"}
    late = api.update_call(
        100, status="completed", duration=321, recording_url="https://rec.test/CA100.mp3"
    )
    api.requests.clear()

    summary = sync_calls(api.client(), tmp_path)

    assert feed_params(api) == [{"updated_since": str(NOW_MS), "after_id": "60"}]  # no window
    assert (summary.new, summary.updated, summary.unchanged) == (0, 1, 0)
    assert summary.days_touched == [utc_day(ten_days_before)] == ["2026-11-08"]
    assert list(read_calls(tmp_path / "calls" / "2026-11-08.jsonl", "jsonl")) == [
        Call.from_dict(late)
    ]
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
    assert state(tmp_path)["newest_updated_at"] == late["updated_at"]
    calls = synced(tmp_path)
    assert len(calls) == len({call.sid for call in calls}) == 61


def test_a_call_changed_while_the_feed_is_followed_is_written_once_in_its_latest_version(
    api: FakeAPI, tmp_path: Path
) -> None:
    """It comes twice, on the first page and again at the end: the last one fetched wins."""
    api.default_page_size = 10

    def change_call_5_once(request: Any) -> None:
        if len(api.requests) == 2:
            api.update_call(5, status="busy", duration=0)

    api.failure = change_call_5_once
    summary = sync_calls(api.client(), tmp_path)

    assert len(api.calls_requests()) == 7  # 61 calls fetched: call 5 twice
    assert (summary.new, summary.updated, summary.unchanged) == (60, 0, 0)
    calls = synced(tmp_path)
    assert len(calls) == len({call.sid for call in calls}) == 60
    assert next(call for call in calls if call.id == 5).status == "busy"


def test_each_day_file_is_written_once_after_the_feed_however_its_pages_mix_the_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed comes in the order of change: every page here holds calls of all three days.
    Pages are staged, then each day file is written once: no rewriting a day per page."""
    calls = make_calls(60)
    for call in calls:  # the hour's calls of all three days change together
        call["updated_at"] = NOW_MS + call["id"] % 24
    api = FakeAPI(calls)
    api.default_page_size = 5
    writes: Counter[str] = Counter()
    real_write_calls = sync_module.write_calls

    def counting_write_calls(calls: Any, destination: Path, file_format: Any) -> int:
        writes[Path(destination).name] += 1
        return real_write_calls(calls, destination, file_format)

    monkeypatch.setattr(sync_module, "write_calls", counting_write_calls)
    day_files_per_page: list[int] = []

    def note(page: Page) -> None:
        assert len({utc_day(call.start_time) for call in page.calls}) > 1
        day_files_per_page.append(len(day_files(tmp_path)))

    summary = sync_calls(api.client(), tmp_path, on_page=note)

    assert summary.new == 60
    assert day_files_per_page == [0] * 12
    assert sorted(writes.values()) == [1, 1, 1]
    assert [call.id for call in synced(tmp_path)] == list(range(60, 0, -1))


def test_a_sync_with_nothing_new_rewrites_no_file(api: FakeAPI, tmp_path: Path) -> None:
    sync_calls(api.client(), tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in day_files(tmp_path)}
    summary = sync_calls(api.client(), tmp_path)
    assert (summary.new, summary.updated, summary.unchanged) == (0, 0, 0)
    assert summary.days_touched == []
    assert {p: p.stat().st_mtime_ns for p in day_files(tmp_path)} == mtimes
    assert state(tmp_path)["newest_updated_at"] == NOW_MS


def test_an_empty_account_syncs_to_an_empty_directory_and_asks_for_everything_again(
    tmp_path: Path,
) -> None:
    api = FakeAPI()
    summary = sync_calls(api.client(), tmp_path, file_format="csv")
    assert (summary.new, summary.days_touched) == (0, [])
    assert day_files(tmp_path) == []
    assert state(tmp_path)["format"] == "csv"
    assert state(tmp_path)["newest_updated_at"] is None
    sync_calls(api.client(), tmp_path)
    assert feed_params(api) == [{"updated_since": "0"}, {"updated_since": "0"}]


def test_calls_either_side_of_utc_midnight_go_to_their_own_day(tmp_path: Path) -> None:
    midnight = NOW_MS - NOW_MS % DAY_MS
    api = FakeAPI([make_call(1, midnight - 1), make_call(2, midnight)])
    sync_calls(api.client(), tmp_path)
    assert {p.name: [c.id for c in read_calls(p, "jsonl")] for p in day_files(tmp_path)} == {
        "2026-11-17.jsonl": [1],
        "2026-11-18.jsonl": [2],
    }


def interrupt_while_merging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the next sync write one day file, then stop it before the second."""
    real_write_calls = sync_module.write_calls
    written: list[Path] = []

    def write_one_then_stop(calls: Any, destination: Path, file_format: Any) -> int:
        if written:
            raise Interrupted(f"interrupted before writing {destination}")
        written.append(destination)
        return real_write_calls(calls, destination, file_format)

    monkeypatch.setattr(sync_module, "write_calls", write_one_then_stop)


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("when", ["fetching", "merging"])
def test_an_interrupted_sync_rerun_ends_like_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_format: FileFormat, when: str
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

    sync_calls(calm.client(), calm_dir)
    with monkeypatch.context() as patched:
        if when == "fetching":
            interrupted.interrupt_at_request = len(interrupted.requests) + 4
        else:
            interrupt_while_merging(patched)
        with pytest.raises(Interrupted):
            sync_calls(interrupted.client(), interrupted_dir)
    assert state(interrupted_dir) == state_before
    interrupted.interrupt_at_request = None
    sync_calls(interrupted.client(), interrupted_dir)

    assert snapshot(interrupted_dir, file_format) == snapshot(calm_dir, file_format)
    calls = synced(calm_dir, file_format)
    assert len(calls) == len({call.sid for call in calls}) == 90
    assert next(call for call in calls if call.id == 55).status == "busy"
    assert not (interrupted_dir / INCOMING_DIR).exists()


def test_an_interrupted_first_sync_rerun_syncs_everything(api: FakeAPI, tmp_path: Path) -> None:
    api.default_page_size = 10
    api.interrupt_at_request = 4
    with pytest.raises(Interrupted):
        sync_calls(api.client(), tmp_path)
    assert not (tmp_path / STATE_FILE).exists()
    assert day_files(tmp_path) == []  # the pages fetched were staged, not merged
    api.interrupt_at_request = None
    summary = sync_calls(api.client(), tmp_path)
    assert (summary.new, summary.updated, summary.unchanged) == (60, 0, 0)
    assert [call.id for call in synced(tmp_path)] == list(range(60, 0, -1))


def test_no_temporary_file_is_left_and_leftovers_are_removed(api: FakeAPI, tmp_path: Path) -> None:
    (tmp_path / "calls").mkdir()
    leftover = tmp_path / "calls" / ".2026-11-18.jsonl.tmp"
    leftover.write_text("half a file")
    (tmp_path / INCOMING_DIR).mkdir()
    staged = tmp_path / INCOMING_DIR / "2026-11-01.jsonl"
    staged.write_text(json.dumps(make_call(999, NOW_MS - 17 * DAY_MS)) + "\n")
    sync_calls(api.client(), tmp_path)
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == sorted(
        [LOCK_FILE, STATE_FILE]
    )
    assert all(not p.name.startswith(".") for p in (tmp_path / "calls").iterdir())
    assert 999 not in {call.id for call in synced(tmp_path)}  # staged by another run: dropped


def test_a_second_sync_of_a_locked_directory_is_refused_and_changes_nothing(
    api: FakeAPI, tmp_path: Path
) -> None:
    """Overlapping cron jobs: the second run must not touch what the first is writing."""
    sync_calls(api.client(), tmp_path)
    (tmp_path / INCOMING_DIR).mkdir()  # as if the running sync were staging
    (tmp_path / INCOMING_DIR / "2026-11-18.jsonl").write_text("being written")
    leftover = tmp_path / "calls" / ".2026-11-18.jsonl.tmp"
    leftover.write_text("being written")
    api.calls.append(make_call(61, start_time=NOW_MS + HOUR_MS))
    before = files_in(tmp_path)
    requests = len(api.requests)
    with open(tmp_path / LOCK_FILE, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SyncError, match=f"another sync of {tmp_path} is running"):
            sync_calls(api.client(), tmp_path)
    assert files_in(tmp_path) == before
    assert len(api.requests) == requests
    summary = sync_calls(api.client(), tmp_path)  # the lock is released
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
    assert feed_params(api) == [{"updated_since": "0", "company_id": "2"}]

    api.requests.clear()
    sync_calls(api.client(), tmp_path)  # no filter given: the directory's own
    assert feed_params(api) == [{"updated_since": str(NOW_MS), "after_id": "1", "company_id": "2"}]
    with pytest.raises(SyncError, match="synced with --company-id 2: drop the filters"):
        sync_calls(api.client(), tmp_path, campaign_id="s1")


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"version": 0}',
        '{"version": true, "format": "jsonl", "company_id": null, "campaign_id": null}',
        '{"version": 2, "format": "xlsx"}',
        '{"version": 2, "format": "jsonl", "newest_updated_at": "1795000000000",'
        ' "company_id": null, "campaign_id": null}',
        "[]",
    ],
)
def test_a_damaged_state_file_is_refused_with_what_to_do(
    api: FakeAPI, tmp_path: Path, content: str
) -> None:
    (tmp_path / STATE_FILE).write_text(content)
    with pytest.raises(SyncError, match="delete it to sync everything again"):
        sync_calls(api.client(), tmp_path)
    assert api.requests == []


def test_a_state_file_of_a_newer_phonewagon_is_refused_asking_for_an_upgrade(
    api: FakeAPI, tmp_path: Path
) -> None:
    (tmp_path / STATE_FILE).write_text('{"version": 3, "format": "jsonl", "cursor": "abc"}')
    with pytest.raises(SyncError, match=r"newer phonewagon \(state version 3\): upgrade"):
        sync_calls(api.client(), tmp_path)
    assert api.requests == []


# --- directories of the look-back sync (state version 1) ----------------------------------------


def strip_updated_at(path: Path, file_format: FileFormat) -> None:
    """Rewrite a day file as the look-back sync wrote it: every field but `updated_at`."""
    if file_format == "parquet":
        pq.write_table(pq.read_table(path).drop_columns(["updated_at"]), path)
    elif file_format == "csv":
        with open(path, encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        with open(path, "w", encoding="utf-8", newline="") as stream:
            names = [name for name in rows[0] if name != "updated_at"]
            writer = csv.DictWriter(stream, names, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    else:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for record in records:
            del record["updated_at"]
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "parquet"])
def test_a_directory_of_the_look_back_sync_is_continued_by_fetching_every_call_again(
    api: FakeAPI, tmp_path: Path, file_format: FileFormat
) -> None:
    """State version 1 remembered a start time, which says nothing of changes: the next run
    follows the feed from 0, keeps the format and filters, and each record gains `updated_at`;
    a record the server no longer lists stays, read as changed at 0."""
    sync_calls(api.client(), tmp_path, file_format=file_format, company_id=1)
    newest_day = tmp_path / "calls" / f"2026-11-18.{file_format}"
    gone = dataclasses.replace(
        Call.from_dict(make_call(999, NOW_MS - 1)), sid="CA-gone", updated_at=0
    )
    write_calls([*read_calls(newest_day, file_format), gone], newest_day, file_format)
    for path in day_files(tmp_path):
        strip_updated_at(path, file_format)
    (tmp_path / STATE_FILE).write_text(
        json.dumps(
            {
                "version": 1,
                "format": file_format,
                "newest_start_time": NOW_MS,
                "company_id": 1,
                "campaign_id": None,
            }
        )
    )
    api.requests.clear()

    summary = sync_calls(api.client(), tmp_path)

    assert feed_params(api) == [{"updated_since": "0", "company_id": "1"}]
    assert summary.describe("DIR").startswith("synced DIR, every call: 0 new, 60 updated")
    assert state(tmp_path) == {
        "version": 2,
        "format": file_format,
        "newest_updated_at": NOW_MS,
        "newest_id": 60,
        "company_id": 1,
        "campaign_id": None,
    }
    calls = synced(tmp_path, file_format)
    assert len(calls) == len({call.sid for call in calls}) == 61
    assert {call.sid: call for call in calls} == {
        gone.sid: gone,
        **{record["sid"]: Call.from_dict(record) for record in api.calls},
    }
