"""The demo's website: a landing page of the first demo company carrying the DNI snippet, and
simulated visitors who browse it, are handed pool numbers, and now and then call one.

The visitors post to `/dni/visits` as the script does, each from an address of its own (the
demo trusts the loopback proxy's `X-Forwarded-For`: a real site's visitors do not share one), and
call through the demo's simulated Twilio, so their calls arrive attributed to their visits.
"""

from __future__ import annotations

import html
import logging
import random
import threading
import uuid
from collections.abc import Callable
from typing import Final

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from phonewagon_server.db import Connection
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db import numbers as number_rows
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.numbers import TrackingNumber
from phonewagon_server.demo.catalog import COMPANIES
from phonewagon_server.models import Company

logger = logging.getLogger("phonewagon_server.demo")

SITE: Final = COMPANIES[0]
POOL_CAMPAIGN_ID: Final = "s2290"
POOL_NAME: Final = "Website visitors"
POOL_NUMBERS: Final = tuple(f"+1844555{line:04d}" for line in range(200, 208))
SITE_KEY: Final = "pwk_demo" + "site" * 5  # printed on every page of the site, as keys are
MEAN_SECONDS_BETWEEN_VISITORS: Final = 4.0
CALLING_SHARE: Final = 0.35
BROWSER: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0 Safari/537.36"
)

# Where the demo's visitors come from: the page's query and the referrer, by weight.
ARRIVALS: Final = (
    (0.30, "?gclid={click}&utm_source=google&utm_medium=cpc&utm_campaign=brand", ""),
    (0.10, "?msclkid={click}&utm_source=bing&utm_medium=cpc", ""),
    (0.12, "?utm_source=facebook&utm_medium=paid_social&fbclid={click}", ""),
    (0.18, "", "https://www.google.com/"),
    (0.08, "", "https://search.yahoo.com/search?p=call+tracking"),
    (0.07, "", "https://www.facebook.com/"),
    (0.05, "?utm_source=newsletter", ""),
    (0.10, "", ""),
)


def add_website_pool(tx: Connection, company: Company, *, now: int) -> None:
    """The site's pool (its numbers swap the business number) and key, unless they are there."""
    if not company_rows.campaign_exists(tx, POOL_CAMPAIGN_ID):
        company_rows.create_campaign(
            tx, company=company, name=POOL_NAME, campaign_id=POOL_CAMPAIGN_ID, now=now
        )
        pool_rows.set_swap_target(tx, POOL_CAMPAIGN_ID, SITE.business_number)
    for number in POOL_NUMBERS:
        tracking = TrackingNumber(
            number=number,
            account_id=company.account_id,
            company_id=company.id,
            campaign_id=POOL_CAMPAIGN_ID,
            forward_to=SITE.business_number,
            source="",
        )
        number_rows.add_number(tx, tracking, now=now)  # one there already is left as it is
    pool_rows.add_site(tx, company.id, SITE_KEY, now=now)


def landing_page_app(snippet: str, number: str = SITE.business_number) -> Starlette:
    """The company's landing page, with its business number in text and in a link, and the
    `snippet` that `dni snippet` prints."""
    shown = f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(SITE.name)}: call tracking</title>
<style>body{{font:18px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}}
.call{{font-size:1.6em;font-weight:600}}</style>
{snippet}
</head><body>
<h1>Know which ad made the phone ring</h1>
<p>This is the demo company's website. The script swaps its business number for a number of
its pool, held for you while the page is open; call it and the call carries this visit's source.
Try it with
<a href="?gclid=demo-click&amp;utm_source=google&amp;utm_medium=cpc">an ad click</a>.</p>
<p class="call">Call us: <a href="tel:{number}">{shown}</a></p>
<p>Or write it down: {number[2:5]}-{number[5:8]}-{number[8:]}.</p>
</body></html>
"""

    def landing(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", landing)])


class DemoVisitors:
    """Visitors arriving every few seconds from the sources of ARRIVALS; some call the number
    they were given (through `ring`, the demo's simulated Twilio)."""

    def __init__(self, server_url: str, *, site_url: str, ring: Callable[[str], None]) -> None:
        self.server_url = server_url
        self.site_url = site_url
        self.ring = ring
        self._stopping = threading.Event()
        self._rng = random.Random()  # noqa: S311 - made-up visitors
        self._thread = threading.Thread(target=self._run, name="demo-visitors", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        with httpx.Client(base_url=self.server_url, timeout=10) as client:
            while not self._stopping.wait(self._rng.expovariate(1 / MEAN_SECONDS_BETWEEN_VISITORS)):
                try:
                    self._visit(client)
                except httpx.HTTPError as exc:
                    logger.warning("demo visitor: %s", exc)

    def _visit(self, client: httpx.Client) -> None:
        weights = [weight for weight, _, _ in ARRIVALS]
        _, query, referrer = self._rng.choices(ARRIVALS, weights)[0]
        address = f"198.51.100.{self._rng.randrange(1, 255)}"  # documentation addresses
        answer = client.post(
            "/dni/visits",
            content=orjson.dumps(
                {
                    "key": SITE_KEY,
                    "visitor": None,
                    "page": self.site_url + "/" + query.format(click=uuid.uuid4().hex[:24]),
                    "referrer": referrer,
                    "device": self._rng.choice(("desktop", "desktop", "mobile", "tablet")),
                }
            ),
            headers={
                "Content-Type": "text/plain",
                "Origin": self.site_url,
                "User-Agent": BROWSER,
                "X-Forwarded-For": address,
            },
        )
        swaps = answer.json().get("swaps", []) if answer.status_code == 200 else []
        if swaps and self._rng.random() < CALLING_SHARE:
            number = swaps[0]["number"]
            threading.Timer(self._rng.uniform(1, 5), self.ring, args=(number,)).start()


def site_instructions(site_url: str, *, live: bool) -> list[str]:
    """What the demo prints of the website."""
    visitors = [
        "Simulated visitors browse it, and some call the number they were given: their calls",
        "arrive with their visit's source (Google Ads, Yahoo organic...).",
    ]
    return [
        f"{SITE.name}'s website shows a pool number instead of its business number, held for",
        "each visitor (dynamic number insertion):",
        f"  open {site_url}/?gclid=demo-click&utm_source=google&utm_medium=cpc",
        *(visitors if live else []),
        "",
    ]
