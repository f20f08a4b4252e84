"""Telling bots from people: by what the user agent says, and by how fast they go.

A bot gets `swaps: []` and is not recorded: a crawler's page views are not visits, and a
script loading pages in a loop must not take the pool's numbers from people.
"""

from __future__ import annotations

import re
import time

from phonewagon_server.config import Rate, Settings
from phonewagon_server.ratelimit import Clock, Limiter, build_limiter

# Crawlers, headless browsers, HTTP libraries, link previewers and uptime monitors.
BOT_MARKERS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|headless|phantomjs|selenium|webdriver|puppeteer|playwright"
    r"|lighthouse|pagespeed|python-|python/|curl/|wget/|httpx|aiohttp|go-http-client|java/"
    r"|okhttp|axios|node-fetch|undici|libwww|scrapy|facebookexternalhit|preview|monitor"
    r"|pingdom|uptime|feedfetcher|mediapartners|^mozilla/\d\.\d$",
    re.IGNORECASE,
)
# More new visitors than this from one address: a script clearing its storage in a loop.
NEW_VISITORS_PER_ADDRESS = Rate(limit=5, window=60)
# More page views than this from one visitor: faster than a person reads.
PAGE_VIEWS_PER_VISITOR = Rate(limit=10, window=10)


def is_bot_agent(user_agent: str) -> bool:
    return not user_agent.strip() or BOT_MARKERS.search(user_agent) is not None


class Behaviour:
    """The two behaviour limits, shared between workers through Redis like the rate limits."""

    def __init__(self, settings: Settings, *, clock: Clock = time.monotonic) -> None:
        self._new_visitors: Limiter = build_limiter(NEW_VISITORS_PER_ADDRESS, settings, clock=clock)
        self._page_views: Limiter = build_limiter(PAGE_VIEWS_PER_VISITOR, settings, clock=clock)

    def too_fast(self, *, company_id: int, address: str, visitor: str | None) -> bool:
        """Count this page view; whether its address or visitor goes faster than people do."""
        if visitor is None:
            return not self._new_visitors.hit(f"dni-new:{company_id}:{address}").allowed
        return not self._page_views.hit(f"dni-views:{company_id}:{visitor}").allowed
