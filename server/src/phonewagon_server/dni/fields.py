"""The JSON a page view or a heartbeat posts, validated: every field typed and bounded.

Unknown keys are ignored (the contract lets a newer script send more), but nothing nested
is read but `unbounce`, and every string is checked before anything is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from phonewagon_server.errors import Forbidden, InvalidField

MAX_URL_CHARS = 2048
MAX_UNBOUNCE_CHARS = 128
DEVICES = ("desktop", "mobile", "tablet")
KEY_SHAPE = re.compile(r"pwk_[A-Za-z0-9_-]{24}")
VISITOR_SHAPE = re.compile(r"[A-Za-z0-9_-]{22,64}")
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,128}")
# The parameters read from the page's query, each as the call field it fills.
QUERY_FIELDS = {
    "gclid": "gclid",
    "gbraid": "gbraid",
    "wbraid": "wbraid",
    "fbclid": "fbclid",
    "msclkid": "msclkid",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "keyword": "keyword",
    "matchtype": "match_type",
    "network": "network",
    "device": "ad_device",  # ValueTrack's m/c/t; the call's `device` prefers it
    "adposition": "ad_position",
}
UNBOUNCE_FIELDS = ("page_id", "variant_id", "visitor_id")


@dataclass(frozen=True, slots=True)
class PageView:
    key: str
    visitor: str | None
    page: str
    referrer: str
    device: str  # "" when the script did not say
    unbounce: dict[str, str]

    @property
    def query(self) -> dict[str, str]:
        """The page's known parameters, by the field each fills (the first of a repeated one)."""
        found: dict[str, str] = {}
        for name, value in parse_qsl(urlsplit(self.page).query, keep_blank_values=False):
            field = QUERY_FIELDS.get(name.lower())
            if field and field not in found and value.strip():
                found[field] = value.strip()
        return found


@dataclass(frozen=True, slots=True)
class Heartbeat:
    key: str
    visitor: str
    visit: str


def read_key(body: dict[str, Any]) -> str:
    """The site key; 403 for one that cannot be any company's."""
    key = body.get("key")
    if not isinstance(key, str):
        raise InvalidField("key", "must be the site key of the snippet, a string")
    if not KEY_SHAPE.fullmatch(key):
        raise Forbidden("This site key is not known here.")
    return key


def read_page_view(body: dict[str, Any]) -> PageView:
    visitor = body.get("visitor")
    if visitor is not None:
        visitor = _shaped(body, "visitor", VISITOR_SHAPE, "22 to 64 letters, digits, - or _")
    return PageView(
        key=read_key(body),
        visitor=visitor,
        page=_http_url(body),
        referrer=_text(body, "referrer", MAX_URL_CHARS, default=""),
        device=_device(body),
        unbounce=_unbounce(body.get("unbounce")),
    )


def read_heartbeat(body: dict[str, Any]) -> Heartbeat:
    return Heartbeat(
        key=read_key(body),
        visitor=_shaped(body, "visitor", VISITOR_SHAPE, "22 to 64 letters, digits, - or _"),
        visit=_shaped(body, "visit", TOKEN_SHAPE, "the visit token the page view was given"),
    )


def _text(
    body: dict[str, Any], name: str, limit: int, *, default: str | None = None, label: str = ""
) -> str:
    value = body.get(name, default)
    label = label or name
    if not isinstance(value, str):
        raise InvalidField(label, "must be a string")
    if len(value) > limit:
        raise InvalidField(label, f"is longer than {limit} characters")
    if not value.isprintable():  # NUL and other controls: no database or log line needs them
        raise InvalidField(label, "contains control characters")
    return value


def _shaped(body: dict[str, Any], name: str, shape: re.Pattern[str], what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise InvalidField(name, f"must be {what}")
    return value


def _http_url(body: dict[str, Any]) -> str:
    page = _text(body, "page", MAX_URL_CHARS)
    try:
        parts = urlsplit(page)
    except ValueError:
        raise InvalidField("page", "is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField("page", "must be the page's http(s) URL")
    return page


def _device(body: dict[str, Any]) -> str:
    device = body.get("device", "")
    if device != "" and device not in DEVICES:
        raise InvalidField("device", f"must be one of {', '.join(DEVICES)}")
    return str(device)


def _unbounce(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField("unbounce", "must be an object of page_id, variant_id, visitor_id")
    return {
        name: _text(value, name, MAX_UNBOUNCE_CHARS, default="", label=f"unbounce.{name}")
        for name in UNBOUNCE_FIELDS
    }
