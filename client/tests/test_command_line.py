import csv
import io
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from fakes import BASE_URL, CLIENT_ID, CLIENT_SECRET, NOW_MS, FakeAPI, make_calls
from phonewagon import CALL_FIELDS, Call
from phonewagon.cli import main


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@dataclass
class Result:
    status: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEWAGON_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PHONEWAGON_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("PHONEWAGON_BASE_URL", BASE_URL)


@pytest.fixture
def api() -> FakeAPI:
    """60 calls an hour apart, the newest at NOW_MS."""
    return FakeAPI(make_calls(60))


@pytest.fixture
def run(api: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `phonewagon ARGS` on the fake API; stdout and stderr are pipes unless told otherwise."""

    def run(*argv: str, stdout_tty: bool = False, stderr_tty: bool = False) -> Result:
        out = Terminal() if stdout_tty else io.StringIO()
        err = Terminal() if stderr_tty else io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        status = main(list(argv), make_client=api.make_client())
        return Result(status, out.getvalue(), err.getvalue())

    return run


def api_calls(api: FakeAPI) -> list[Call]:
    """The fake's calls as the API serves them: newest first."""
    return sorted(
        (Call.from_dict(c) for c in api.calls), key=lambda c: (c.start_time, c.id), reverse=True
    )


# --- companies and campaigns --------------------------------------------------------------------


def test_companies_print_a_table_on_a_terminal(run: Any) -> None:
    result = run("companies", stdout_tty=True)
    assert result.status == 0
    assert result.out.splitlines() == [
        "id  name",
        "──  ─────────────",
        "1   Acme Plumbing",
        "2   Zoë's Bakery",
    ]


def test_companies_print_json_lines_in_a_pipe(run: Any) -> None:
    result = run("companies")
    assert result.out == '{"id":1,"name":"Acme Plumbing"}\n{"id":2,"name":"Zoë\'s Bakery"}\n'


def test_campaigns_of_one_company_as_csv(run: Any, api: FakeAPI) -> None:
    result = run("campaigns", "--company-id", "1", "--format", "csv")
    assert result.out == "id,name\r\ns1,Search\r\ns2,Facebook\r\n"
    assert api.requests[-1].url.params["company_id"] == "1"


def test_campaigns_of_an_unknown_company_say_not_found(run: Any) -> None:
    result = run("campaigns", "--company-id", "7")
    assert (result.status, result.out) == (1, "")
    assert result.err == "phonewagon: not found: There is no company 7.\n"


# --- calls --------------------------------------------------------------------------------------


def test_calls_in_a_pipe_are_json_lines_of_every_call_newest_first(run: Any, api: FakeAPI) -> None:
    api.default_page_size = 25
    result = run("calls")
    assert result.status == 0
    assert [Call.from_dict(json.loads(line)) for line in result.out.splitlines()] == api_calls(api)
    assert len(api.calls_requests()) == 3


def test_calls_on_a_terminal_are_a_table(run: Any) -> None:
    result = run("calls", stdout_tty=True)
    lines = result.out.splitlines()
    assert lines[0].startswith("started (UTC)        duration  status")
    assert lines[2].startswith("2026-11-18 11:06:40      1:00  completed")
    assert len(lines) == 62


def test_calls_send_every_filter(run: Any, api: FakeAPI) -> None:
    result = run(
        "calls",
        "--company-id", "1",
        "--campaign-id", "s1",
        "--start-time", "2026-11-17",
        "--end-time", "2026-11-18T10:00:00+01:00",
        "--page-size", "10",
    )  # fmt: skip
    assert result.status == 0
    params = api.calls_requests()[0].url.params
    assert dict(params) == {
        "company_id": "1",
        "campaign_id": "s1",
        "start_time": "1794873600000",
        "end_time": "1794992400000",
        "page_size": "10",
    }
    times = [json.loads(line)["start_time"] for line in result.out.splitlines()]
    assert min(times) >= 1_794_873_600_000
    assert max(times) <= 1_794_992_400_000
    assert len(times) == 33


def test_calls_updated_since_follow_the_change_feed_oldest_change_first(
    run: Any, api: FakeAPI
) -> None:
    """Only the calls changed at or after WHEN, in the order of change: a call that started
    days ago and changed last comes last, and the filters still apply."""
    api.default_page_size = 3
    api.update_call(1, status="no-answer", duration=0)
    result = run(
        "calls", "--updated-since", "2026-11-18T09:00:00Z", "--campaign-id", "s1", "-o", "-"
    )
    assert result.status == 0
    changed = [Call.from_dict(json.loads(line)) for line in result.out.splitlines()]
    assert [call.id for call in changed] == [58, 59, 60, 1]
    assert changed[-1].status == "no-answer"
    requests = api.calls_requests()
    assert dict(requests[0].url.params) == {"updated_since": "1794992400000", "campaign_id": "s1"}
    assert [r.url.params["after_id"] for r in requests[1:]] == ["60"]


def test_calls_accept_epoch_milliseconds(run: Any, api: FakeAPI) -> None:
    result = run("calls", "--start-time", str(NOW_MS - 3_600_000), "--end-time", str(NOW_MS))
    assert len(result.out.splitlines()) == 2
    assert api.calls_requests()[0].url.params["end_time"] == str(NOW_MS)


def test_calls_to_a_csv_file_take_the_format_from_the_extension(
    run: Any, api: FakeAPI, tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    result = run("calls", "--output", str(path))
    assert (result.status, result.out) == (0, "")
    with open(path, encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == list(CALL_FIELDS)
    assert len(rows) == 61
    assert rows[1][CALL_FIELDS.index("is_first_time_caller")] == "false"


@pytest.mark.parametrize("name", ["calls.jsonl", "calls.ndjson", "calls"])
def test_calls_to_a_file_without_a_table_extension_are_json_lines(
    run: Any, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    assert run("calls", "-o", str(path)).status == 0
    assert len(path.read_text(encoding="utf-8").splitlines()) == 60
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["id"] == 60


def test_calls_to_parquet_read_back_the_same(run: Any, api: FakeAPI, tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    assert run("calls", "--output", str(path)).status == 0
    rows = pq.read_table(path).to_pylist()
    assert [Call.from_dict(row) for row in rows] == api_calls(api)


def bytes_written_per_request(api: FakeAPI, directory: Path) -> list[int]:
    """How many bytes `directory` holds as each request arrives (the fake fills the list)."""
    sizes: list[int] = []

    def note(request: httpx.Request) -> None:
        sizes.append(sum(p.stat().st_size for p in directory.iterdir()))

    api.failure = note
    return sizes


@pytest.mark.parametrize("name", ["calls.jsonl", "calls.csv"])
def test_calls_reach_the_file_while_later_pages_are_still_being_fetched(
    run: Any, api: FakeAPI, tmp_path: Path, name: str
) -> None:
    """Streamed: each page is written out before the next one is asked for."""
    api.calls = make_calls(2_100, spacing_ms=1_000)
    sizes = bytes_written_per_request(api, tmp_path)
    assert run("calls", "--page-size", "100", "--output", str(tmp_path / name)).status == 0
    assert len(sizes) == 21
    assert all(earlier < later for earlier, later in itertools.pairwise(sizes))


def test_parquet_is_written_a_row_group_of_10000_calls_at_a_time(
    run: Any, api: FakeAPI, tmp_path: Path
) -> None:
    """When page 11 is asked for, pages 1-10 are in the file as its first row group."""
    api.calls = make_calls(21_000, spacing_ms=1_000)
    sizes = bytes_written_per_request(api, tmp_path)
    path = tmp_path / "calls.parquet"
    assert run("calls", "--output", str(path)).status == 0
    assert len(sizes) == 21
    assert sizes[0] == sizes[9] < sizes[10] == sizes[19] < sizes[20]
    metadata = pq.ParquetFile(path).metadata
    row_groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert row_groups == [10_000, 10_000, 1_000]


def test_parquet_to_standard_output_is_a_usage_error(run: Any, api: FakeAPI) -> None:
    result = run("calls", "--format", "parquet")
    assert result.status == 2
    assert "parquet needs a file: add --output calls.parquet" in result.err
    assert api.requests == []


def test_a_format_contradicting_the_extension_is_a_usage_error(run: Any, tmp_path: Path) -> None:
    result = run("calls", "--format", "csv", "--output", str(tmp_path / "calls.parquet"))
    assert result.status == 2
    assert "--format csv does not match" in result.err


def test_an_explicit_format_wins_over_the_terminal(run: Any) -> None:
    result = run("calls", "--format", "jsonl", stdout_tty=True)
    assert json.loads(result.out.splitlines()[0])["id"] == 60


def test_a_failed_pull_leaves_the_output_file_as_it_was(
    run: Any, api: FakeAPI, tmp_path: Path
) -> None:
    """The file is written beside and moved in at the end: never half a download."""
    path = tmp_path / "calls.csv"
    path.write_text("yesterday's export\n")
    api.default_page_size = 10
    api.failure = lambda r: api.problem(401, "?") if len(api.requests) > 2 else None
    result = run("calls", "--output", str(path))
    assert result.status == 1
    assert path.read_text() == "yesterday's export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["calls.csv"]


def test_parquet_without_pyarrow_says_what_to_install_before_any_request(
    run: Any, api: FakeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = run("calls", "--output", str(tmp_path / "calls.parquet"))
    assert result.status == 1
    assert result.err == "phonewagon: Parquet needs pyarrow: pip install 'phonewagon[parquet]'\n"
    assert api.requests == []


def test_an_unwritable_output_names_the_file_asked_for(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "missing" / "calls.csv"
    result = run("calls", "--output", str(path))
    assert result.status == 1
    assert result.err == f"phonewagon: No such file or directory: {path}\n"


def test_an_explicit_table_in_a_pipe_still_counts_progress(run: Any) -> None:
    result = run("calls", "--format", "table", stderr_tty=True)
    assert "60 calls, 1 page" in result.err
    assert result.out.startswith("started (UTC)")


# --- Progress -----------------------------------------------------------------------------------


def test_progress_counts_calls_pages_and_rate_limit_waits_on_a_terminal(
    run: Any, api: FakeAPI
) -> None:
    api.default_page_size = 25
    api.rate_limit_requests = {2}
    result = run("calls", stderr_tty=True)
    assert result.status == 0
    assert "25 calls, 1 page · waiting 7 s for the rate limit" in result.err
    assert "60 calls, 3 pages" in result.err
    assert result.err.endswith("\r\x1b[K60 calls in 3 pages\n")
    assert api.time.sleeps == [7.0]
    assert len(result.out.splitlines()) == 60


def test_no_progress_when_stderr_is_not_a_terminal(run: Any, api: FakeAPI) -> None:
    api.rate_limit_requests = {1}
    result = run("calls")
    assert result.status == 0
    assert result.err == ""


def test_a_table_on_the_terminal_shows_waits_but_no_counts(run: Any, api: FakeAPI) -> None:
    """The table shows what has arrived; a wait is shown, then cleared; the total at the end."""
    api.default_page_size = 25
    api.rate_limit_requests = {2}
    result = run("calls", stdout_tty=True, stderr_tty=True)
    assert result.err == "\r\x1b[Kwaiting 7 s for the rate limit\r\x1b[K60 calls in 3 pages\n"


def test_retries_are_shown_with_their_cause(run: Any, api: FakeAPI) -> None:
    api.answer(api.problem(503, "?"))
    result = run("companies", stderr_tty=True)
    assert result.status == 0
    assert "waiting 1 s to retry after HTTP 503 (attempt 1)" in result.err


# --- Errors -------------------------------------------------------------------------------------


def test_wrong_credentials_say_which_settings_to_check(run: Any) -> None:
    result = run("--client-secret", "wrong", "calls")
    assert result.status == 1
    assert result.err == (
        "phonewagon: authentication failed: check PHONEWAGON_CLIENT_ID and "
        "PHONEWAGON_CLIENT_SECRET (or --client-id and --client-secret)\n"
    )


def test_connection_options_work_after_the_command_too(run: Any, api: FakeAPI) -> None:
    assert run("companies", "--client-secret", "wrong").status == 1
    assert run("companies", "--client-id", CLIENT_ID).status == 0


def test_missing_credentials_are_a_usage_error(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHONEWAGON_CLIENT_SECRET")
    result = run("companies")
    assert result.status == 2
    assert "PHONEWAGON_CLIENT_SECRET" in result.err
    assert result.err.count("\n") == 1


def test_a_bad_request_lists_each_parameter_the_server_named(run: Any, api: FakeAPI) -> None:
    errors = [
        {"name": "end_time", "in": "query", "detail": "must be at most 253402300799999"},
        {"name": "page_size", "in": "query", "detail": "must be at least 1"},
    ]
    api.failure = lambda request: api.problem(400, "Check.", errors=errors)
    result = run("calls")
    assert result.status == 1
    assert result.err == (
        "phonewagon: bad request: end_time: must be at most 253402300799999; "
        "page_size: must be at least 1\n"
    )


def test_a_server_that_keeps_failing_is_a_server_error(run: Any, api: FakeAPI) -> None:
    api.failure = lambda request: api.problem(503, "The database is down.")
    result = run("calls")
    assert result.status == 1
    assert result.err == ("phonewagon: server error 503: The database is down. (try again later)\n")
    assert len(api.requests) == 7  # the first try and six retries


def test_an_unreachable_server_is_a_connection_error(run: Any, api: FakeAPI) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    api.failure = refuse
    result = run("companies")
    assert result.status == 1
    assert result.err.startswith("phonewagon: cannot reach the server: Could not reach ")
    assert result.err.count("\n") == 1


def test_a_rate_limit_that_never_lifts_is_reported(run: Any, api: FakeAPI) -> None:
    def always_limited(request: httpx.Request) -> httpx.Response:
        response = api.problem(429, "Over the limit.")
        response.headers["Retry-After"] = "60"
        return response

    api.failure = always_limited
    result = run("companies")
    assert result.status == 1
    assert result.err.startswith("phonewagon: rate limited: Over the limit.")


def test_an_answer_that_is_not_the_api_says_so(run: Any, api: FakeAPI) -> None:
    api.failure = lambda request: httpx.Response(200, html="<html>Welcome</html>")
    result = run("companies")
    assert result.status == 1
    assert "answered 200 with a body that is not JSON; is base_url" in result.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calls", "--start-time", "2026-01-31T09:00"], "has no timezone: add an offset"),
        (["calls", "--end-time", "1769817600"], "looks like epoch seconds"),
        (["calls", "--page-size", "0"], "'0' is not a positive whole number"),
        (["calls", "--format", "xlsx"], "invalid choice: 'xlsx'"),
        (["calls", "--start-time", "2026-02-01", "--end-time", "2026-01-31"], "must not be after"),
        (["calls", "--updated-since", "yesterday"], "'yesterday' is not a time"),
        (["calls", "--updated-since", "1795000000"], "looks like epoch seconds"),
        (["sync", "out", "--lookback", "3d"], "--lookback is gone: sync follows the change feed"),
        (["campaigns", "--format", "parquet"], "invalid choice: 'parquet'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_before_any_request(
    run: Any, api: FakeAPI, argv: list[str], message: str
) -> None:
    result = run(*argv)
    assert result.status == 2
    assert message in result.err
    assert result.err.startswith("usage: phonewagon")
    assert api.requests == []


def test_version_and_help_exit_0(run: Any) -> None:
    assert run("--version").out.startswith("phonewagon ")
    result = run("calls", "--help")
    assert result.status == 0
    assert "--start-time WHEN" in result.out


def test_a_reader_closing_the_pipe_ends_the_command_quietly(
    run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`phonewagon calls | head -1`: no traceback, nothing on stderr."""
    fake_stdout_file = open(tmp_path / "stdout", "w")  # noqa: SIM115 -- closed below

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            return fake_stdout_file.fileno()

    err = io.StringIO()
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    monkeypatch.setattr(sys, "stderr", err)
    try:
        status = main(["calls"], make_client=FakeAPI(make_calls(3)).make_client())
    finally:
        fake_stdout_file.close()
    assert status == 1
    assert err.getvalue() == ""


# --- sync ---------------------------------------------------------------------------------------


def test_sync_prints_what_it_did(run: Any, api: FakeAPI, tmp_path: Path) -> None:
    result = run("sync", str(tmp_path / "out"))
    assert result.status == 0
    assert result.out == (
        f"synced {tmp_path / 'out'}, every call: 60 new, 0 updated, 0 unchanged; "
        "3 days touched (2026-11-16, 2026-11-17, 2026-11-18)\n"
    )
    api.update_call(1, status="busy")
    result = run("sync", str(tmp_path / "out"))
    assert result.out == (
        f"synced {tmp_path / 'out'}, changes since 2026-11-18 11:06:40 UTC: 0 new, 1 updated, "
        "0 unchanged; 1 day touched (2026-11-16)\n"
    )


def test_sync_as_parquet_with_progress(run: Any, api: FakeAPI, tmp_path: Path) -> None:
    api.default_page_size = 20
    result = run("sync", str(tmp_path), "--format", "parquet", stderr_tty=True)
    assert result.status == 0
    assert "60 calls, 3 pages" in result.err
    assert sorted(p.name for p in (tmp_path / "calls").iterdir()) == [
        "2026-11-16.parquet",
        "2026-11-17.parquet",
        "2026-11-18.parquet",
    ]


def test_sync_in_another_format_is_refused(run: Any, tmp_path: Path) -> None:
    assert run("sync", str(tmp_path)).status == 0
    result = run("sync", str(tmp_path), "--format", "csv")
    assert result.status == 2
    assert result.err == (
        "phonewagon: this directory is synced as jsonl: "
        "drop --format or sync as csv into another directory\n"
    )
