"""Website visits end to end, in a real browser (Debian's Chromium, driven by Playwright): a
landing page on its own origin carries the snippet `dni snippet` prints, `/dni.js` from a real
`phonewagon-server serve` swaps the business number for a pool number, the Twilio simulator
calls that number, and the call in `/calls` carries the visit's fields and source."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from browser_kit import needs_chromium
from phonewagon_server.demo.website import landing_page_app
from phonewagon_server.twilio.simulator import TwilioSender, events, random_call, serve_in_thread
from server_testkit import clean_env
from test_e2e_serve import Server, cli

pytestmark = needs_chromium
ACCOUNT_SID = "AC" + "e4" * 16
AUTH_TOKEN = "d" * 32
BUSINESS = "+15035550100"
POOL = ("+18445550131", "+18445550132")
# A person's browser: a headless one says so in its user agent, and bots get no number.
BROWSER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0 Safari/537.36"
)


@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A server with an account whose company has a website pool, and the company's landing
    page (the snippet pasted) served from another origin."""
    env = clean_env() | {
        "PHONEWAGON_DATABASE_URL": database_url,
        "PHONEWAGON_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "PHONEWAGON_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PHONEWAGON_RECORDINGS_DIR": str(tmp_path / "recordings"),
    }
    account = cli("accounts", "create", "Visits Agency", env=env)
    company = cli("companies", "create", "--account", str(account["account_id"]), "Acme", env=env)
    cli(
        "campaigns", "create", "--company", str(company["id"]), "Website", "--id", "w1",
        "--swap-target", BUSINESS, env=env,
    )  # fmt: skip
    for number in POOL:
        cli("numbers", "add", number, "--campaign", "w1", "--forward-to", BUSINESS, env=env)
    server = Server(["serve"], env)
    snippet = cli("dni", "snippet", "--company", str(company["id"]), env=env)["snippet"]
    # `dni snippet` names the public URL of its environment: point it at this server.
    snippet = snippet.replace("http://127.0.0.1:8000", server.url)
    assert f'src="{server.url}/dni.js"' in snippet
    site_url, stop_site = serve_in_thread(landing_page_app(snippet, BUSINESS))
    try:
        yield {"server": server, "account": account, "site_url": site_url}
    finally:
        stop_site()
        server.stop()


def swapped_number(page: Page) -> str:
    """The pool number the page shows once the script swapped it, in text and in the link."""
    link = page.get_by_role("link", name=re.compile(r"\(844\) 555-01"))
    expect(link).to_be_visible(timeout=15_000)
    href = link.get_attribute("href")
    assert href is not None
    number = href.removeprefix("tel:")
    assert number in POOL
    shown = f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    expect(link).to_have_text(shown)
    expect(
        page.get_by_text(f"Or write it down: {number[2:5]}-{number[5:8]}-{number[8:]}.")
    ).to_be_visible()
    return number


def call(server: Server, number: str, seed: int) -> str:
    ringing = random_call(random.Random(seed), to_number=number, final_status="busy")
    with TwilioSender(server.url, auth_token=AUTH_TOKEN) as sender:
        answers = sender.deliver(events(ringing, account_sid=ACCOUNT_SID, api_base="https://x.t"))
    assert {answer.status_code for answer in answers} == {200}
    return ringing.sid


def stored_call(server: Server, account: dict[str, Any], sid: str) -> dict[str, Any]:
    auth = (account["client_id"], account["client_secret"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = httpx.get(f"{server.url}/calls", params={"page_size": 100}, auth=auth, timeout=10)
        assert page.status_code == 200, page.text
        found = [c for c in page.json()["calls"] if c["sid"] == sid]
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"call {sid} was not stored within 30 s")


def test_an_ad_click_and_a_yahoo_search_each_ring_a_pool_number_and_are_attributed(
    browser: Browser, site: dict[str, Any]
) -> None:
    server, account, site_url = site["server"], site["account"], site["site_url"]
    errors: list[str] = []

    paid = browser.new_context(user_agent=BROWSER_AGENT)
    paid_page = paid.new_page()
    paid_page.on("pageerror", lambda error: errors.append(str(error)))
    landing = (
        f"{site_url}/?gclid=EAIaIQobChMI-test&utm_source=google&utm_medium=cpc&utm_campaign=spring"
    )
    paid_page.goto(landing)
    paid_number = swapped_number(paid_page)

    organic = browser.new_context(user_agent=BROWSER_AGENT)  # another person: storage of its own
    organic_page = organic.new_page()
    organic_page.goto(f"{site_url}/", referer="https://search.yahoo.com/search?p=acme+plumbing")
    organic_number = swapped_number(organic_page)
    assert organic_number != paid_number  # the first visitor still holds theirs

    paid_call = stored_call(server, account, call(server, paid_number, seed=1))
    assert paid_call["user_source"] == "Google Ads"
    assert paid_call["gclid"] == "EAIaIQobChMI-test"
    assert paid_call["utm_source"] == "google"
    assert paid_call["utm_medium"] == "cpc"
    assert paid_call["utm_campaign"] == "spring"
    assert paid_call["landing_page"] == landing
    assert paid_call["device"] == "desktop"
    assert paid_call["campaign_id"] == "w1"
    assert paid_call["to_number"] == paid_number

    organic_call = stored_call(server, account, call(server, organic_number, seed=2))
    assert organic_call["user_source"] == "Yahoo organic"
    assert organic_call["referral_value"].startswith("https://search.yahoo.com/")
    assert organic_call["gclid"] == ""
    assert organic_call["landing_page"] == f"{site_url}/"

    # The first visitor comes back: same number, kept while the hold lasts.
    paid_page.reload()
    assert swapped_number(paid_page) == paid_number
    assert errors == []
    paid.close()
    organic.close()
