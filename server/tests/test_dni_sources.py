"""`user_source` of a page view, row by row of the documented precedence (docs/dni.md)."""

from __future__ import annotations

import pytest

from phonewagon_server.dni.fields import read_page_view
from phonewagon_server.dni.sources import is_paid, referrer_host, user_source

SITE = "https://www.acme-plumbing.example/landing"


def source_of(query: str, referrer: str = "") -> str:
    view = read_page_view(
        {"key": "pwk_" + "k" * 24, "page": f"{SITE}?{query}", "referrer": referrer}
    )
    return user_source(view.query, referrer_host(view.referrer, view.page))


@pytest.mark.parametrize(
    ("query", "referrer", "source"),
    [
        # 1. a Google click id, whatever else the visit carries
        ("gclid=Cj0KCQ", "https://www.bing.com/", "Google Ads"),
        ("gbraid=0AAAAA", "", "Google Ads"),
        ("wbraid=CjkKCQ", "", "Google Ads"),
        ("gclid=Cj0&msclkid=abc&utm_source=facebook&utm_medium=cpc", "", "Google Ads"),
        # 2. a Microsoft click id
        ("msclkid=7f1e", "https://www.google.com/", "Bing Ads"),
        ("msclkid=7f1e&utm_source=facebook&utm_medium=paid_social", "", "Bing Ads"),
        # 3. a paid utm_medium names its utm_source's ad network
        ("utm_source=facebook&utm_medium=cpc", "https://l.facebook.com/", "Facebook Ads"),
        ("utm_source=google&utm_medium=ppc", "https://www.google.com/", "Google Ads"),
        ("utm_source=Facebook&utm_medium=paidsocial", "", "Facebook Ads"),
        ("utm_source=linkedin&utm_medium=paid", "", "LinkedIn Ads"),
        ("utm_source=bing&utm_medium=CPC", "", "Bing Ads"),
        ("utm_source=tiktok&utm_medium=cpm", "", "TikTok Ads"),
        ("utm_source=localnews&utm_medium=paid_display", "", "localnews Ads"),
        ("utm_medium=cpc", "https://duckduckgo.com/", "DuckDuckGo organic"),  # no source named
        # 4. a search engine's referrer
        ("", "https://www.google.com/", "Google organic"),
        ("", "https://www.google.co.uk/search?q=plumber", "Google organic"),
        ("", "https://search.yahoo.com/search?p=plumber", "Yahoo organic"),
        ("", "https://www.bing.com/search?q=plumber", "Bing organic"),
        ("", "https://duckduckgo.com/", "DuckDuckGo organic"),
        ("", "https://yandex.ru/search/?text=x", "Yandex organic"),
        ("", "https://www.baidu.com/s?wd=x", "Baidu organic"),
        ("", "https://www.ecosia.org/search?q=x", "Ecosia organic"),
        ("utm_source=newsletter", "https://www.google.com/", "Google organic"),
        # 5. a social network's referrer
        ("", "https://l.facebook.com/l.php?u=x", "Facebook"),
        ("", "https://www.instagram.com/", "Instagram"),
        ("", "https://www.linkedin.com/feed/", "LinkedIn"),
        ("", "https://t.co/abc", "X"),
        ("", "https://twitter.com/acme", "X"),
        ("", "https://x.com/acme", "X"),
        ("fbclid=IwAR0", "https://m.facebook.com/", "Facebook"),
        # 6. utm_source alone
        ("utm_source=newsletter&utm_medium=email", "", "newsletter"),
        ("utm_source=yelp", "https://partner.example/", "yelp"),
        # 7. another site's referrer: its host
        ("", "https://www.plumbing-directory.example/best", "www.plumbing-directory.example"),
        ("fbclid=IwAR0", "", "Direct"),  # a click id of no paid kind, no referrer
        # 8. nothing
        ("", "", "Direct"),
        ("", "https://www.acme-plumbing.example/about", "Direct"),  # our own page
        ("", "android-app://com.example/", "Direct"),  # a referrer with no host we can read
    ],
)
def test_user_source_follows_the_precedence(query: str, referrer: str, source: str) -> None:
    assert source_of(query, referrer) == source


def test_a_look_alike_of_an_engine_is_just_a_host() -> None:
    assert source_of("", "https://notgoogle.example/") == "notgoogle.example"
    assert source_of("", "https://google.evil.example/") == "google.evil.example"


@pytest.mark.parametrize(
    ("query", "paid"),
    [
        ({"gclid": "x"}, True),
        ({"gbraid": "x"}, True),
        ({"msclkid": "x"}, True),
        ({"utm_medium": "cpc"}, True),
        ({"utm_medium": "paidsocial"}, True),
        ({"fbclid": "x"}, False),
        ({"utm_medium": "email"}, False),
        ({}, False),
    ],
)
def test_a_paid_click_is_a_click_id_or_a_paid_medium(query: dict[str, str], paid: bool) -> None:
    assert is_paid(query) is paid
