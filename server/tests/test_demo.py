"""The demo data set: deterministic, reusable, and as consistent as real call-tracking data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from phonewagon_server import credentials, demo
from phonewagon_server.db import accounts, migrations
from phonewagon_server.db.calls import DOCUMENT, read_page
from phonewagon_server.db.engine import Database, open_database
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.models import CallQuery

NOW = 1_764_000_000_000  # 2025-11-24T16:00:00Z
MIDNIGHT = NOW - NOW % demo.DAY_MS
SEED_EXAMPLE_END_TIME = 1_573_072_575_990  # the seed's `calls?campaign_id=s2212&end_time=...`
SMALL = 0.05

Call = dict[str, Any]


def open_migrated(path: Path) -> Database:
    database = open_database(f"sqlite:///{path}")
    migrations.upgrade(database)
    return database


def read_calls(database: Database, account_id: int) -> list[Call]:
    """Every call of the account as the API renders it, oldest first, but when it was written
    (`updated_at`, the database's clock)."""
    with database.transaction() as tx:
        rows = tx.fetchall(
            f"SELECT {DOCUMENT} FROM calls c WHERE c.account_id = ? ORDER BY c.start_time, c.id",
            (account_id,),
        )
    calls = [orjson.loads(document) for (document,) in rows]
    return [{k: v for k, v in call.items() if k != "updated_at"} for call in calls]


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, demo.DemoData]]:
    database = open_migrated(tmp_path_factory.mktemp("demo") / "full.db")
    yield database, demo.load_demo(database, now_ms=NOW)
    database.close()


@pytest.fixture(scope="module")
def full_calls(full: tuple[Database, demo.DemoData]) -> list[Call]:
    database, data = full
    return read_calls(database, data.account_id)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Database]:
    database = open_migrated(tmp_path / "small.db")
    yield database
    database.close()


def test_demo_is_identical_on_fresh_databases_the_same_day(tmp_path: Path) -> None:
    """Two loads with the same seed on the same UTC day write the very same rows."""
    first, second = open_migrated(tmp_path / "a.db"), open_migrated(tmp_path / "b.db")
    morning = demo.load_demo(first, now_ms=MIDNIGHT + 1, scale=SMALL)
    evening = demo.load_demo(second, now_ms=MIDNIGHT + demo.DAY_MS - 1, scale=SMALL)
    assert morning.calls == evening.calls > 500
    assert read_calls(first, morning.account_id) == read_calls(second, evening.account_id)
    first.close()
    second.close()


def test_another_seed_gives_other_calls(tmp_path: Path) -> None:
    """The seed, not the clock, decides the calls."""
    first, second = open_migrated(tmp_path / "a.db"), open_migrated(tmp_path / "b.db")
    one = demo.load_demo(first, now_ms=NOW, scale=SMALL)
    other = demo.load_demo(second, now_ms=NOW, seed=1, scale=SMALL)
    sids = {c["sid"] for c in read_calls(first, one.account_id)}
    assert sids.isdisjoint(c["sid"] for c in read_calls(second, other.account_id))
    first.close()
    second.close()


def test_loading_again_reuses_the_demo_account(small: Database) -> None:
    """A second load finds the demo account and adds nothing."""
    created = demo.load_demo(small, now_ms=NOW, scale=SMALL)
    reused = demo.load_demo(small, now_ms=NOW + 3 * demo.DAY_MS, scale=SMALL)
    assert (created.created, reused.created) == (True, False)
    assert reused == demo.DemoData(**{**vars(created), "created": False})
    assert len(read_calls(small, created.account_id)) == created.calls
    with small.transaction() as tx:
        assert [a.name for a in accounts.list_accounts(tx)] == [demo.DEMO_ACCOUNT_NAME]


def test_demo_loads_and_is_reused_on_every_database(database: Database) -> None:
    """SQLite and PostgreSQL both take the demo and find it again."""
    created = demo.load_demo(database, now_ms=NOW, scale=SMALL)
    reused = demo.load_demo(database, now_ms=NOW, scale=SMALL)
    assert (created.created, reused.created) == (True, False)
    assert reused.calls == created.calls == len(read_calls(database, created.account_id))


def test_loading_over_a_revoked_demo_credential_says_to_use_a_fresh_database(
    small: Database,
) -> None:
    """A demo whose credential was revoked is not silently duplicated."""
    demo.load_demo(small, now_ms=NOW, scale=SMALL)
    with small.transaction(write=True) as tx:
        accounts.revoke_credential(tx, demo.DEMO_CLIENT_ID, now=NOW)
    with pytest.raises(ConfigurationError, match="fresh database"):
        demo.load_demo(small, now_ms=NOW, scale=SMALL)


def test_demo_credential_verifies(full: tuple[Database, demo.DemoData]) -> None:
    """The printed client id and secret authenticate as the demo account."""
    database, data = full
    assert data.client_id.startswith("pwid_")
    assert data.client_secret.startswith("pwsk_")
    assert len(data.client_secret) >= 40
    with database.transaction() as tx:
        found = accounts.find_active_secret_hash(tx, data.client_id)
    assert found is not None
    assert found[0] == data.account_id
    assert credentials.verify_secret(data.client_secret, found[1])


def test_companies_and_campaigns_follow_the_seed(full: tuple[Database, demo.DemoData]) -> None:
    """Phonewagon and Jake's rake company come first; each has 3-6 campaigns."""
    _, data = full
    assert [c.name for c in data.companies][:2] == ["Phonewagon", "Jake's rake company"]
    assert len(data.companies) == 3
    for company in data.companies:
        assert 3 <= sum(1 for k in data.campaigns if k.company_id == company.id) <= 6
    s2212 = next(k for k in data.campaigns if k.id == "s2212")
    assert (s2212.name, s2212.company_id) == ("Facebook", data.companies[0].id)


def test_seed_example_request_finds_a_call(full: tuple[Database, demo.DemoData]) -> None:
    """`calls?campaign_id=s2212&end_time=1573072575990&page_size=1` answers with one call."""
    database, data = full
    query = CallQuery(
        account_id=data.account_id,
        start_time=0,
        end_time=SEED_EXAMPLE_END_TIME,
        page_size=1,
        campaign_id="s2212",
    )
    with database.transaction() as tx:
        page = read_page(tx, query)
    assert page.count == 1
    call = orjson.loads(page.documents)
    assert call["campaign_name"] == "Facebook"
    assert call["start_time"] <= SEED_EXAMPLE_END_TIME


def test_volume_is_quiet_since_2019_then_busy(
    full: tuple[Database, demo.DemoData], full_calls: list[Call]
) -> None:
    """About 40,000 calls, most of them in the last 120 days, none after today's midnight."""
    _, data = full
    assert data.calls == len(full_calls)
    assert 35_000 <= data.calls <= 45_000
    assert full_calls[0]["start_time"] >= demo.HISTORY_START_MS
    assert full_calls[-1]["start_time"] < MIDNIGHT
    busy_from = MIDNIGHT - demo.BUSY_DAYS * demo.DAY_MS
    assert sum(c["start_time"] >= busy_from for c in full_calls) > 0.8 * data.calls


def test_calls_follow_business_hours_and_weekdays(full_calls: list[Call]) -> None:
    """Daytime and weekdays are far busier than nights and weekends."""
    hours = [c["start_time"] // 3_600_000 % 24 for c in full_calls]
    weekdays = [(c["start_time"] // demo.DAY_MS + 3) % 7 for c in full_calls]
    assert sum(15 <= h <= 23 for h in hours) > 5 * sum(5 <= h <= 11 for h in hours)
    assert sum(d < 5 for d in weekdays) / 5 > 2 * sum(d >= 5 for d in weekdays) / 2


def test_some_calls_share_a_timestamp(full_calls: list[Call]) -> None:
    """Shared milliseconds are common enough to exercise paging."""
    times = [c["start_time"] for c in full_calls]
    assert len(times) - len(set(times)) > 100


def test_sids_are_unique_twilio_call_sids(full_calls: list[Call]) -> None:
    """Every sid is `CA` and 32 lowercase hex digits, and no two are equal."""
    sids = [c["sid"] for c in full_calls]
    assert len(set(sids)) == len(sids)
    assert all(re.fullmatch(r"CA[0-9a-f]{32}", sid) for sid in sids)


def test_numbers_are_fictional_e164(full_calls: list[Call]) -> None:
    """Callers dial from 555-01XX numbers; each campaign has one 844-555 tracking number."""
    assert all(re.fullmatch(r"\+1[2-9]\d\d55501\d\d", c["from_number"]) for c in full_calls)
    tracking: dict[str, set[str]] = {}
    for call in full_calls:
        tracking.setdefault(call["campaign_id"], set()).add(call["to_number"])
    assert all(len(numbers) == 1 for numbers in tracking.values())
    assert all(re.fullmatch(r"\+1844555\d{4}", n) for (n,) in tracking.values())
    assert len({n for (n,) in tracking.values()}) == len(tracking)


def test_first_time_flag_marks_each_numbers_first_call(full_calls: list[Call]) -> None:
    """Only a number's earliest call is a first-time call; some numbers call again."""
    seen: set[str] = set()
    for call in full_calls:
        assert call["is_first_time_caller"] == (call["from_number"] not in seen)
        seen.add(call["from_number"])
    assert 0.3 < len(seen) / len(full_calls) < 0.8


def test_status_decides_duration_and_recording(full_calls: list[Call]) -> None:
    """Completed calls last and are recorded; the others last 0 s and have no recording."""
    for call in full_calls:
        completed = call["status"] == "completed"
        assert (call["duration"] > 0) == completed
        expected = f"http://127.0.0.1:8000/call-recordings/{call['sid']}/file" if completed else ""
        assert call["recording_url"] == expected
        assert call["direction"] == "inbound"
    statuses = [c["status"] for c in full_calls]
    assert set(statuses) == {"completed", "no-answer", "busy", "failed", "canceled"}
    assert 0.75 < statuses.count("completed") / len(statuses) < 0.92


def test_click_ids_and_utm_match_the_source(full_calls: list[Call]) -> None:
    """A click id comes with its network's UTM tags and user source, and only then."""
    for call in full_calls:
        source = call["user_source"]
        assert bool(call["gclid"]) == (source == "Google Ads") == (call["utm_source"] == "google")
        assert bool(call["fbclid"]) == (source == "Facebook") == (call["utm_source"] == "facebook")
        assert bool(call["msclkid"]) == (source == "Bing Ads") == (call["utm_source"] == "bing")
        if call["gclid"]:
            assert call["utm_medium"] == "cpc"
            assert call["keyword"] == call["utm_term"] != ""
            assert call["match_type"] in ("e", "p", "b")
            assert re.fullmatch(r"1t\d", call["ad_position"])
            assert call["network"] in ("g", "s")
            assert call["device"] in ("m", "c", "t")
        if call["fbclid"]:
            assert call["utm_medium"] == "paid_social"


def test_unpaid_calls_carry_no_ad_fields(full_calls: list[Call]) -> None:
    """Organic calls show a referrer only; Direct and Billboard calls show nothing."""
    ad_fields = ("gclid", "fbclid", "msclkid", "utm_source", "utm_medium", "keyword", "device")
    visit_fields = (*ad_fields, "landing_page", "referral_value", "unbounce_page_id")
    for call in full_calls:
        if call["user_source"].endswith("organic"):
            assert call["referral_value"].startswith("https://")
            assert not any(call[f] for f in ad_fields)
        if call["user_source"] in ("Direct", "Billboard"):
            assert not any(call[f] for f in visit_fields)


def test_some_paid_calls_landed_on_unbounce_pages(full_calls: list[Call]) -> None:
    """Unbounce ids appear together, on a fraction of paid calls only."""
    paid = [c for c in full_calls if c["gclid"] or c["fbclid"] or c["msclkid"]]
    unbounce = [c for c in full_calls if c["unbounce_page_id"]]
    assert 0.1 < len(unbounce) / len(paid) < 0.4
    assert all(c["gclid"] or c["fbclid"] or c["msclkid"] for c in unbounce)
    assert all(c["unbounce_variant_id"] and c["unbounce_visitor_id"] for c in unbounce)


def test_unknown_values_are_empty_strings(full_calls: list[Call]) -> None:
    """No stored field is ever None."""
    assert all(value is not None for call in full_calls for value in call.values())
    named = sum(bool(c["contact_name"]) for c in full_calls)
    assert 0.5 < named / len(full_calls) < 0.95
