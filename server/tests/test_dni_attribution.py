"""A call to a pool number, rung through the Twilio webhooks, takes the fields of the visit that
held the number when it began: as `GET /calls` shows them, through every later webhook."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dni_kit import POOL, Site, make_pool, page_view, swapped, visitor_id
from live_kit import ACCOUNT_SID, Live, live_deployment, live_settings
from phonewagon_server.db import Database
from phonewagon_server.db import visits as visit_rows
from phonewagon_server.twilio.apply import attach_recording
from phonewagon_server.twilio.simulator import SimulatedCall, Webhook, events, random_call

DAY_MS = 86_400_000
AD_PAGE = (
    "https://www.acme-plumbing.example/emergency?gclid=Cj0KCQiA&utm_source=google&utm_medium=cpc"
    "&utm_campaign=winter&utm_term=burst+pipe&utm_content=ad1&keyword=burst+pipe&matchtype=e"
    "&network=g&device=m&adposition=1t2"
)


@pytest.fixture
def live(database: Database, tmp_path: Path) -> Iterator[Live]:
    yield from live_deployment(database, live_settings(tmp_path / "recordings"))


@pytest.fixture
def site(live: Live) -> Site:
    return make_pool(live.database, live.tenant)


def hooks(number: str, seed: str) -> list[Webhook]:
    call: SimulatedCall = random_call(
        random.Random(seed), to_number=number, final_status="completed", duration=61
    )
    return events(call, account_sid=ACCOUNT_SID, api_base="https://api.twilio.com")


def ring(live: Live, number: str, seed: str = "one") -> dict[str, Any]:
    """Ring `number` (voice, then its status callbacks) and give the call as the API shows it."""
    voice, *statuses, _recording = hooks(number, seed)
    for hook in (voice, *statuses):
        assert live.twilio.send(hook).status_code in (200, 204)
    live.workers.run_until_idle()
    (call,) = [c for c in live.calls() if c["to_number"] == number]
    return call


def test_a_call_to_a_held_number_takes_the_visit_fields_through_every_webhook(
    live: Live, site: Site
) -> None:
    view = page_view(
        live.client,
        visitor=visitor_id(1),
        page=AD_PAGE,
        referrer="https://www.google.com/",
        device="mobile",
        unbounce={"page_id": "u-page", "variant_id": "b", "visitor_id": "u-visitor"},
    )
    (number,) = swapped(view)
    voice, *statuses, _recording = hooks(number, "fields")
    live.twilio.send(voice)
    live.workers.run_until_idle()
    expected = {
        "landing_page": AD_PAGE,
        "referral_value": "https://www.google.com/",
        "gclid": "Cj0KCQiA",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "winter",
        "utm_term": "burst pipe",
        "utm_content": "ad1",
        "keyword": "burst pipe",
        "match_type": "e",
        "network": "g",
        "device": "m",  # the ad's ValueTrack device before the script's guess
        "ad_position": "1t2",
        "unbounce_page_id": "u-page",
        "unbounce_variant_id": "b",
        "unbounce_visitor_id": "u-visitor",
        "user_source": "Google Ads",
        "fbclid": "",
        "msclkid": "",
    }
    (call,) = live.calls()
    assert {name: call[name] for name in expected} == expected
    for hook in (*statuses, voice, *statuses):  # the call's life, then a redelivery of each
        live.twilio.send(hook)
        live.workers.run_until_idle()
    (call,) = live.calls()
    assert call["status"] == "completed"
    assert {name: call[name] for name in expected} == expected
    attach_recording(
        live.database,
        call_sid=call["sid"],
        recording_sid="RE" + "0" * 32,
        stored_as="r.wav",
        content_type="audio/wav",
        size=1,
        url="https://api.phonewagon.test/call-recordings/x/file",
    )
    (call,) = live.calls()
    assert call["recording_url"].endswith("/file")
    assert {name: call[name] for name in expected} == expected


def test_the_visitors_first_touch_gives_the_fields(live: Live, site: Site) -> None:
    first = page_view(live.client, visitor=visitor_id(2), referrer="https://search.yahoo.com/")
    page_view(
        live.client,
        visitor=visitor_id(2),
        page="https://www.acme-plumbing.example/?utm_source=mail",
    )
    call = ring(live, swapped(first)[0])
    assert call["user_source"] == "Yahoo organic"
    assert call["landing_page"] == "https://www.acme-plumbing.example/"
    assert call["utm_source"] == ""


def test_a_paid_click_overrides_an_earlier_organic_visit(live: Live, site: Site) -> None:
    page_view(live.client, visitor=visitor_id(3), referrer="https://www.bing.com/")
    paid = "https://www.acme-plumbing.example/?msclkid=abc123"
    later = page_view(live.client, visitor=visitor_id(3), page=paid)
    page_view(live.client, visitor=visitor_id(3), page=paid.replace("msclkid", "gclid"))
    call = ring(live, swapped(later)[0])
    assert (call["user_source"], call["msclkid"], call["landing_page"]) == (
        "Bing Ads",
        "abc123",
        paid,
    )


def test_a_visit_before_the_attribution_window_gives_nothing(live: Live, site: Site) -> None:
    with live.database.transaction(write=True) as tx:
        visit_rows.insert_visit(
            tx,
            company_id=site.tenant.company.id,
            visitor=visitor_id(4),
            now=int(time.time() * 1000) - 31 * DAY_MS,
            paid=True,
            fields={"user_source": "Google Ads", "gclid": "old"},
        )
    view = page_view(live.client, visitor=visitor_id(4), referrer="https://duckduckgo.com/")
    call = ring(live, swapped(view)[0])
    assert (call["user_source"], call["gclid"]) == ("DuckDuckGo organic", "")


def test_a_direct_visit_is_direct(live: Live, site: Site) -> None:
    view = page_view(live.client, visitor=visitor_id(5))
    call = ring(live, swapped(view)[0])
    assert call["user_source"] == "Direct"
    assert call["landing_page"] == "https://www.acme-plumbing.example/"


def test_a_call_to_a_pool_number_nobody_held_is_ambiguous_in_logs_and_metrics(
    live: Live, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    def ambiguous() -> float:
        text = live.client.get("/metrics").text
        match = re.search(r"^phonewagon_dni_ambiguous_calls_total (\S+)$", text, re.MULTILINE)
        assert match
        return float(match[1])

    before = ambiguous()
    with caplog.at_level(logging.WARNING, logger="phonewagon_server.dni"):
        call = ring(live, POOL[2])
    assert ambiguous() == before + 1
    assert call["user_source"] == site.tenant.campaign.name  # the pool campaign's
    assert call["landing_page"] == call["gclid"] == ""
    assert [r for r in caplog.records if "dni: ambiguous call" in r.getMessage()]
    assert call["sid"] in caplog.text
