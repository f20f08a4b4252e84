"""dlt's `rest_api` source, configured as examples/dlt_phonewagon.py does, loads an account."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

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
    example: ModuleType, server: LiveServer, client: tuple[str, str], tmp_path: Path
) -> dict[str, int]:
    """Run the example's source into DuckDB; the rows dlt fetched per table, before merging."""
    pipeline = dlt.pipeline(
        pipeline_name="phonewagon",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "calls.duckdb")),
        dataset_name="phonewagon",
    )
    info = pipeline.run(example.phonewagon_source(server.url, *client), loader_file_format="jsonl")
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
    assert columns["is_first_time_caller"] == "BOOLEAN"
    assert columns["sid"] == columns["campaign_id"] == columns["recording_url"] == "VARCHAR"
    assert rows(
        tmp_path, "SELECT sid, start_time, duration, status, recording_url FROM phonewagon.calls"
    ) == [(sid, 1_575_322_416_000, 73, "no-answer", "")]


def test_running_the_pipeline_again_updates_changed_calls_without_duplicating_any(
    example: ModuleType, database: Database, world: World, tmp_path: Path
) -> None:
    tenant = world.account("Acme Agency")
    campaign = world.campaign(world.company(tenant, "Rakes"), "Google Ads")
    sids = world.calls(tenant, [1_600_000_000_000 + n // 3 for n in range(1_500)], campaign)
    credentials = (tenant.client_id, tenant.secret)

    with LiveServer(database) as server:
        load(example, server, credentials, tmp_path)
        world.calls(tenant, [1_600_000_001_000], campaign)
        late_recording = {  # re-imported with its duration and recording, as they arrived late
            "sid": sids[0],
            "campaign_id": campaign.id,
            "start_time": 1_600_000_000_000,
            "duration": 305,
            "recording_url": "https://r.test/1",
        }
        assert import_calls(database, tenant.account_id, [(1, late_recording)]).updated == 1
        load(example, server, credentials, tmp_path)

    assert rows(tmp_path, "SELECT count(*), count(DISTINCT id) FROM phonewagon.calls") == [
        (1_501, 1_501)
    ]
    assert rows(
        tmp_path, f"SELECT duration, recording_url FROM phonewagon.calls WHERE sid = '{sids[0]}'"
    ) == [(305, "https://r.test/1")]
