"""dlt's `rest_api` source, configured as examples/dlt_phonewagon.py does, loads an account, then
only what changed since: a changed call is updated in DuckDB, never duplicated."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import dlt
import duckdb
import pytest

from live_server import LiveServer
from phonewagon_server.db import Database
from phonewagon_server.imports import import_calls
from server_testkit import World

EXAMPLE = Path(__file__).parents[2] / "examples" / "dlt_phonewagon.py"
CALLS = 3_456  # four pages of 1000


@pytest.fixture(params=["sqlite"])  # dlt sees only HTTP: one database is enough
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url")
    return url


@pytest.fixture
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dlt_phonewagon", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _offline_quiet_dlt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No telemetry, no logs, and no config, state or data outside this test's directory."""
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "WARNING")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt-data"))
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path / "dlt-project"))
    monkeypatch.chdir(tmp_path)


def load(
    example: ModuleType,
    server: LiveServer,
    client: tuple[str, str],
    tmp_path: Path,
    *,
    on_call: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, int]:
    """Run the example's source into DuckDB, telling `on_call` of each call as it is extracted;
    the rows dlt loaded per table, before merging (after the incremental's filtering)."""
    pipeline = dlt.pipeline(
        pipeline_name="phonewagon",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "calls.duckdb")),
        dataset_name="phonewagon",
    )
    source = example.phonewagon_source(server.url, *client)
    if on_call is not None:

        def tell(call: dict[str, Any]) -> dict[str, Any]:
            on_call(call)
            return call

        source.calls.add_map(tell)
    info = pipeline.run(source, loader_file_format="jsonl")
    assert not info.has_failed_jobs
    fetched: dict[str, int] = pipeline.last_trace.last_normalize_info.row_counts
    return fetched


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(tmp_path / "calls.duckdb"), read_only=True) as warehouse:
        return warehouse.sql(sql).fetchall()


def test_the_example_pipeline_loads_every_call_of_the_account_into_duckdb(
    example: ModuleType, database: Database, world: World, tmp_path: Path
) -> None:
    tenant = world.account("Acme Agency")
    rakes, hoes = world.company(tenant, "Rakes"), world.company(tenant, "Hoes")
    google = world.campaign(rakes, "Google Ads", "s2212")
    yelp = world.campaign(hoes, "Yelp")
    # Seven calls a millisecond, so page boundaries fall inside shared milliseconds.
    world.calls(tenant, [1_600_000_000_000 + n // 7 for n in range(CALLS - 100)], google)
    world.calls(tenant, [1_600_000_000_000 + n for n in range(100)], yelp)
    other = world.account("Other Agency")
    world.calls(other, [1] * 50, world.campaign(world.company(other, "Theirs"), "Bing"))

    with LiveServer(database) as server:
        fetched = load(example, server, (tenant.client_id, tenant.secret), tmp_path)

    expected = world.call_ids(tenant)
    assert len(expected) == CALLS
    assert fetched["calls"] == CALLS, "no page fetched twice (merging would hide it)"
    assert rows(tmp_path, "SELECT count(*) FROM phonewagon.calls") == [(CALLS,)]
    loaded = rows(tmp_path, "SELECT id FROM phonewagon.calls")
    assert {row[0] for row in loaded} == set(expected)
    assert rows(tmp_path, "SELECT id, name FROM phonewagon.companies ORDER BY id") == [
        (rakes.id, "Rakes"),
        (hoes.id, "Hoes"),
    ]
    assert sorted(rows(tmp_path, "SELECT id, name FROM phonewagon.campaigns")) == sorted(
        [("s2212", "Google Ads"), (yelp.id, "Yelp")]
    )


def test_the_loaded_calls_keep_the_apis_types(
    example: ModuleType, database: Database, world: World, tmp_path: Path
) -> None:
    tenant = world.account("Acme Agency")
    campaign = world.campaign(world.company(tenant, "Rakes"), "Google Ads")
    [sid] = world.calls(tenant, [1_575_322_416_000], campaign, duration=73, status="no-answer")

    with LiveServer(database) as server:
        load(example, server, (tenant.client_id, tenant.secret), tmp_path)

    columns = dict(
        (name, kind)
        for name, kind, *_ in rows(tmp_path, "DESCRIBE phonewagon.calls")
        if not str(name).startswith("_dlt")
    )
    assert columns["id"] == columns["start_time"] == columns["duration"] == "BIGINT"
    assert columns["updated_at"] == "BIGINT"
    assert columns["is_first_time_caller"] == "BOOLEAN"
    assert columns["sid"] == columns["campaign_id"] == columns["recording_url"] == "VARCHAR"
    assert rows(
        tmp_path, "SELECT sid, start_time, duration, status, recording_url FROM phonewagon.calls"
    ) == [(sid, 1_575_322_416_000, 73, "no-answer", "")]


def reimport(
    database: Database, account_id: int, campaign_id: str, sid: str, **fields: Any
) -> None:
    """Import the call again with `fields` changed, as a late recording arrives; then let the
    database's clock pass the change's millisecond, which the feed shows only once passed."""
    record = {"sid": sid, "campaign_id": campaign_id, "start_time": 1_600_000_000_000} | fields
    assert import_calls(database, account_id, [(1, record)]).updated == 1
    time.sleep(0.002)


def test_running_the_pipeline_again_loads_only_the_changes_updating_calls_in_place(
    example: ModuleType, database: Database, world: World, tmp_path: Path
) -> None:
    tenant = world.account("Acme Agency")
    campaign = world.campaign(world.company(tenant, "Rakes"), "Google Ads")
    sids = world.calls(tenant, [1_600_000_000_000 + n // 3 for n in range(1_500)], campaign)
    credentials = (tenant.client_id, tenant.secret)

    with LiveServer(database) as server:
        assert load(example, server, credentials, tmp_path)["calls"] == 1_500
        late = {"duration": 305, "recording_url": "https://r.test/1"}
        reimport(database, tenant.account_id, campaign.id, sids[0], **late)
        again = load(example, server, credentials, tmp_path)

    assert again.get("calls") == 1, "only the changed call is loaded again"
    assert rows(tmp_path, "SELECT count(*), count(DISTINCT sid) FROM phonewagon.calls") == [
        (1_500, 1_500)
    ]
    assert rows(
        tmp_path, f"SELECT duration, recording_url FROM phonewagon.calls WHERE sid = '{sids[0]}'"
    ) == [(305, "https://r.test/1")]


def test_a_new_call_is_added_and_a_run_with_no_change_loads_no_call(
    example: ModuleType, database: Database, world: World, tmp_path: Path
) -> None:
    tenant = world.account("Acme Agency")
    campaign = world.campaign(world.company(tenant, "Rakes"), "Google Ads")
    world.calls(tenant, [1_600_000_000_000 + n for n in range(10)], campaign)
    credentials = (tenant.client_id, tenant.secret)

    with LiveServer(database) as server:
        load(example, server, credentials, tmp_path)
        idle = load(example, server, credentials, tmp_path)
        [new] = world.calls(tenant, [1_500_000_000_000], campaign)  # started long before the rest
        time.sleep(0.002)
        added = load(example, server, credentials, tmp_path)

    assert idle.get("calls", 0) == 0
    assert added.get("calls") == 1
    assert rows(tmp_path, "SELECT count(*), count(DISTINCT sid) FROM phonewagon.calls") == [
        (11, 11)
    ]
    assert rows(tmp_path, f"SELECT start_time FROM phonewagon.calls WHERE sid = '{new}'") == [
        (1_500_000_000_000,)
    ]


def test_a_call_changed_while_a_run_pages_is_kept_in_its_later_version(
    example: ModuleType, database: Database, world: World, tmp_path: Path
) -> None:
    """The call comes twice in one run, on the first page and again on the last (the feed moved
    it to its end): merging keeps the later, by `updated_at`, whatever order the rows land in."""
    tenant = world.account("Acme Agency")
    campaign = world.campaign(world.company(tenant, "Rakes"), "Google Ads")
    sids = world.calls(tenant, [1_600_000_000_000 + n // 3 for n in range(1_500)], campaign)
    target = sids[0]
    seen: list[dict[str, Any]] = []

    def change_when_first_seen(call: dict[str, Any]) -> None:
        if call["sid"] == target:
            seen.append(call)
            if len(seen) == 1:  # page one is in hand, page two not yet asked for
                reimport(database, tenant.account_id, campaign.id, target, duration=77)

    credentials = (tenant.client_id, tenant.secret)
    with LiveServer(database) as server:
        fetched = load(example, server, credentials, tmp_path, on_call=change_when_first_seen)

    assert [call["duration"] == 77 for call in seen] == [False, True]
    assert fetched["calls"] == 1_501
    assert rows(tmp_path, "SELECT count(*), count(DISTINCT sid) FROM phonewagon.calls") == [
        (1_500, 1_500)
    ]
    assert rows(tmp_path, f"SELECT duration FROM phonewagon.calls WHERE sid = '{target}'") == [
        (77,)
    ]
