"""How each call's caller found the number: the visit fields of each marketing source."""

from __future__ import annotations

import base64
import random
import re
import uuid
from collections.abc import Callable
from typing import Final

from phonewagon_server.demo.catalog import CompanySpec

_UNBOUNCE_SHARE = 0.25  # paid visits that landed on an Unbounce page

_Visit = dict[str, str]


def draw_visit(rng: random.Random, spec: CompanySpec, source: str) -> _Visit:
    """The visit fields of a call to `spec`'s campaign for `source` (a campaign name)."""
    return _VISITS[source](rng, spec)


def _token(rng: random.Random, length: int) -> str:
    """`length` random URL-safe characters, like the click ids ad platforms append."""
    return base64.urlsafe_b64encode(rng.randbytes(length)).decode()[:length]


def _landing(rng: random.Random, spec: CompanySpec) -> _Visit:
    """Where a paid click landed: the company's site, or now and then an Unbounce page."""
    if rng.random() >= _UNBOUNCE_SHARE:
        return {"landing_page": spec.site + rng.choice(spec.pages)}
    page = rng.choice(spec.unbounce_pages)
    return {
        "landing_page": page,
        "unbounce_page_id": str(uuid.uuid5(uuid.NAMESPACE_URL, page)),
        "unbounce_variant_id": rng.choice("ab"),
        "unbounce_visitor_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }


def _google_ads_visit(rng: random.Random, spec: CompanySpec) -> _Visit:
    keyword = rng.choice(spec.keywords)
    return {
        "user_source": "Google Ads",
        "gclid": "Cj0KCQ" + _token(rng, 84),
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": rng.choice(spec.ad_campaigns),
        "utm_term": keyword,
        "keyword": keyword,
        "match_type": rng.choices("epb", weights=(5, 4, 2))[0],
        "ad_position": f"1t{rng.choices((1, 2, 3, 4), weights=(6, 3, 2, 1))[0]}",
        "network": rng.choices("gs", weights=(9, 1))[0],
        "device": rng.choices("mct", weights=(6, 3, 1))[0],
        "referral_value": "https://www.google.com/",
        **_landing(rng, spec),
    }


def _bing_ads_visit(rng: random.Random, spec: CompanySpec) -> _Visit:
    keyword = rng.choice(spec.keywords)
    return {
        "user_source": "Bing Ads",
        "msclkid": f"{rng.getrandbits(128):032x}",
        "utm_source": "bing",
        "utm_medium": "cpc",
        "utm_campaign": rng.choice(spec.ad_campaigns),
        "utm_term": keyword,
        "keyword": keyword,
        "match_type": rng.choices("epb", weights=(4, 4, 3))[0],
        "network": rng.choices("os", weights=(8, 2))[0],
        "device": rng.choices("mct", weights=(4, 5, 1))[0],
        "referral_value": "https://www.bing.com/",
        **_landing(rng, spec),
    }


def _facebook_visit(rng: random.Random, spec: CompanySpec) -> _Visit:
    return {
        "user_source": "Facebook",
        "fbclid": "IwAR" + _token(rng, 57),
        "utm_source": "facebook",
        "utm_medium": "paid_social",
        "utm_campaign": rng.choice(spec.ad_campaigns),
        "utm_content": rng.choice(("video-15s", "carousel", "testimonial", "lead-form")),
        "referral_value": rng.choice(("https://m.facebook.com/", "https://l.facebook.com/")),
        **_landing(rng, spec),
    }


_SEARCH_ENGINES = (
    ("Google organic", "https://www.google.com/", 80),
    ("Bing organic", "https://www.bing.com/", 10),
    ("Yahoo organic", "https://search.yahoo.com/", 6),
    ("DuckDuckGo organic", "https://duckduckgo.com/", 4),
)


def _organic_visit(rng: random.Random, spec: CompanySpec) -> _Visit:
    source, referrer, _ = rng.choices(_SEARCH_ENGINES, weights=[e[2] for e in _SEARCH_ENGINES])[0]
    return _search_visit(rng, spec, source=source, referrer=referrer)


def _yahoo_visit(rng: random.Random, spec: CompanySpec) -> _Visit:
    return _search_visit(rng, spec, source="Yahoo organic", referrer="https://search.yahoo.com/")


def _search_visit(rng: random.Random, spec: CompanySpec, *, source: str, referrer: str) -> _Visit:
    return {
        "user_source": source,
        "referral_value": referrer,
        "landing_page": spec.site + rng.choice(spec.pages),
    }


def _yelp_visit(rng: random.Random, spec: CompanySpec) -> _Visit:
    """A call from the company's Yelp listing: the visit happened on Yelp, not on the site."""
    slug = re.sub(r"[^a-z0-9]+", "-", spec.name.lower().replace("'", "")).strip("-")
    return {"user_source": "Yelp", "referral_value": f"https://www.yelp.com/biz/{slug}"}


def _offline_visit(source: str) -> Callable[[random.Random, CompanySpec], _Visit]:
    """A number seen away from the web (a billboard, typed in directly): only the source."""

    def visit(rng: random.Random, spec: CompanySpec) -> _Visit:
        return {"user_source": source}

    return visit


_VISITS: Final[dict[str, Callable[[random.Random, CompanySpec], _Visit]]] = {
    "Google Ads": _google_ads_visit,
    "Bing Ads": _bing_ads_visit,
    "Facebook": _facebook_visit,
    "Organic search": _organic_visit,
    "Yahoo organic": _yahoo_visit,
    "Yelp": _yelp_visit,
    "Billboard": _offline_visit("Billboard"),
    "Direct": _offline_visit("Direct"),
}
