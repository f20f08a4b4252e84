"""The vocabulary of the API: accounts, credentials, companies, campaigns and calls (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Every field of a call as the API renders it, in the (alphabetical) order of the seed's example.
# `campaign_id` is our addition beside `campaign_name`.
CALL_STRING_FIELDS: Final = (
    "ad_position",
    "contact_name",
    "device",
    "direction",
    "fbclid",
    "from_number",
    "gclid",
    "keyword",
    "landing_page",
    "match_type",
    "msclkid",
    "network",
    "recording_url",
    "referral_value",
    "sid",
    "status",
    "to_number",
    "unbounce_page_id",
    "unbounce_variant_id",
    "unbounce_visitor_id",
    "user_source",
    "utm_campaign",
    "utm_content",
    "utm_medium",
    "utm_source",
    "utm_term",
)
CALL_INTEGER_FIELDS: Final = ("id", "account_id", "company_id", "duration", "start_time")
CALL_BOOLEAN_FIELDS: Final = ("is_first_time_caller",)
CALL_DERIVED_FIELDS: Final = ("id", "account_id", "company_id", "campaign_name")
CALL_FIELDS: Final = tuple(
    sorted(
        (
            *CALL_STRING_FIELDS,
            *CALL_INTEGER_FIELDS,
            *CALL_BOOLEAN_FIELDS,
            "campaign_id",
            "campaign_name",
        )
    )
)

# What an import row may set: everything but what the server derives.
CALL_IMPORT_FIELDS: Final = tuple(f for f in CALL_FIELDS if f not in CALL_DERIVED_FIELDS)

MAX_EPOCH_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_ID: Final = 2**63 - 1
MAX_PAGE_SIZE: Final = 1000


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Credential:
    client_id: str
    account_id: int
    created_at: int
    revoked_at: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class Company:
    id: int
    account_id: int
    name: str


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    company_id: int
    account_id: int
    name: str


@dataclass(frozen=True, slots=True)
class CallQuery:
    """One page request of `/calls`, validated. Both time bounds are inclusive.

    `before_id` narrows the calls at exactly `end_time` to those with a smaller id: it is how a
    `next` link resumes inside a millisecond that many calls share.
    """

    account_id: int
    start_time: int
    end_time: int
    page_size: int
    company_id: int | None = None
    campaign_id: str | None = None
    before_id: int | None = None
