"""`user_source`: which marketing source a visit came from, by the documented precedence.

1. gclid, gbraid or wbraid: "Google Ads"; 2. msclkid: "Bing Ads";
3. a paid utm_medium (cpc, ppc, cpm, cpv, paid*) with a utm_source: that source's ad network
   ("facebook" → "Facebook Ads"; one we do not know: its value + " Ads");
4. a search engine's referrer: "<Engine> organic"; 5. a social network's referrer: its name;
6. utm_source alone: its value; 7. another site's referrer: its host; 8. nothing: "Direct".
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

GOOGLE_CLICK_IDS = ("gclid", "gbraid", "wbraid")
PAID_MEDIUMS = frozenset({"cpc", "ppc", "cpm", "cpv"})
# utm_source as ad platforms are usually tagged → the ad network's name.
AD_NETWORKS = {
    "google": "Google Ads",
    "adwords": "Google Ads",
    "bing": "Bing Ads",
    "microsoft": "Bing Ads",
    "facebook": "Facebook Ads",
    "fb": "Facebook Ads",
    "meta": "Facebook Ads",
    "instagram": "Instagram Ads",
    "ig": "Instagram Ads",
    "linkedin": "LinkedIn Ads",
    "twitter": "X Ads",
    "x": "X Ads",
    "tiktok": "TikTok Ads",
    "youtube": "YouTube Ads",
    "yahoo": "Yahoo Ads",
    "pinterest": "Pinterest Ads",
    "reddit": "Reddit Ads",
    "snapchat": "Snapchat Ads",
}
# A host matches a site when it is one of its domains or under one; `.*` stands for any
# country's ending (google.com, google.co.uk, yandex.ru).
SEARCH_ENGINES = {
    "Google": ("google.*",),
    "Bing": ("bing.com",),
    "Yahoo": ("yahoo.com", "search.yahoo.*", "yahoo.co.jp"),
    "DuckDuckGo": ("duckduckgo.com",),
    "Yandex": ("yandex.*", "ya.ru"),
    "Baidu": ("baidu.com",),
    "Ecosia": ("ecosia.org",),
    "Brave": ("search.brave.com",),
}
SOCIAL_NETWORKS = {
    "Facebook": ("facebook.com", "fb.com", "fb.me"),
    "Instagram": ("instagram.com",),
    "LinkedIn": ("linkedin.com", "lnkd.in"),
    "X": ("twitter.com", "x.com", "t.co"),
    "YouTube": ("youtube.com", "youtu.be"),
    "Pinterest": ("pinterest.com",),
    "Reddit": ("reddit.com",),
    "TikTok": ("tiktok.com",),
    "Threads": ("threads.net",),
}


def _pattern(domains: tuple[str, ...]) -> re.Pattern[str]:
    any_ending = r"[a-z]{2,3}(\.[a-z]{2})?"
    alternatives = "|".join(re.escape(d).replace(r"\*", any_ending) for d in domains)
    return re.compile(rf"(.+\.)?({alternatives})")


_ENGINES = [(name, _pattern(domains)) for name, domains in SEARCH_ENGINES.items()]
_NETWORKS = [(name, _pattern(domains)) for name, domains in SOCIAL_NETWORKS.items()]


def referrer_host(referrer: str, page: str) -> str:
    """The referrer's host, lowercased; "" for none, one that is not a web page's, one we
    cannot read, or the page's own."""
    try:
        parts = urlsplit(referrer)
        host = (parts.hostname or "") if parts.scheme in ("http", "https") else ""
        own = urlsplit(page).hostname or ""
    except ValueError:
        return ""
    return "" if host == own.lower() else host.lower().rstrip(".")


def is_paid_medium(medium: str) -> bool:
    medium = medium.strip().lower()
    return medium in PAID_MEDIUMS or medium.startswith("paid")


def user_source(query: dict[str, str], referrer_host: str) -> str:
    """The visit's source, from the page's parameters (by call field) and the referrer's host."""
    if any(query.get(name) for name in GOOGLE_CLICK_IDS):
        return "Google Ads"
    if query.get("msclkid"):
        return "Bing Ads"
    source = query.get("utm_source", "").strip()
    if source and is_paid_medium(query.get("utm_medium", "")):
        return AD_NETWORKS.get(source.lower(), f"{source} Ads")
    if referrer_host:
        for engine, pattern in _ENGINES:
            if pattern.fullmatch(referrer_host):
                return f"{engine} organic"
        for network, pattern in _NETWORKS:
            if pattern.fullmatch(referrer_host):
                return network
    if source:
        return source
    return referrer_host or "Direct"


def is_paid(query: dict[str, str]) -> bool:
    """A paid click: a Google or Microsoft click id, or a paid utm_medium."""
    return any(query.get(name) for name in (*GOOGLE_CLICK_IDS, "msclkid")) or is_paid_medium(
        query.get("utm_medium", "")
    )
