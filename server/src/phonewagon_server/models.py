"""The vocabulary of the API: accounts, credentials, companies, campaigns and calls (no I/O)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """A call as it is written: every field the API shows of it, with its type and default, but
    those the server derives (`id` and `updated_at` from the database; `account_id`,
    `company_id` and `campaign_name` from the campaign). The one definition that imports,
    webhooks, the demo and the tests build calls from; `documents.render_call` turns it into
    what the API sends."""

    sid: str
    campaign_id: str
    start_time: int  # epoch milliseconds
    duration: int = 0  # seconds
    is_first_time_caller: bool = False
    ad_position: str = ""
    contact_name: str = ""
    device: str = ""
    direction: str = ""
    fbclid: str = ""
    from_number: str = ""
    gclid: str = ""
    keyword: str = ""
    landing_page: str = ""
    match_type: str = ""
    msclkid: str = ""
    network: str = ""
    recording_url: str = ""
    referral_value: str = ""
    status: str = ""
    to_number: str = ""
    unbounce_page_id: str = ""
    unbounce_variant_id: str = ""
    unbounce_visitor_id: str = ""
    user_source: str = ""
    utm_campaign: str = ""
    utm_content: str = ""
    utm_medium: str = ""
    utm_source: str = ""
    utm_term: str = ""


_RECORD = dataclasses.fields(Call)
# What a call's writer sets, and what it leaves out: "" for text, 0, false.
CALL_IMPORT_FIELDS: Final = tuple(sorted(f.name for f in _RECORD))
CALL_DEFAULTS: Final = {f.name: f.default for f in _RECORD if f.default is not dataclasses.MISSING}
CALL_REQUIRED_FIELDS: Final = tuple(f.name for f in _RECORD if f.name not in CALL_DEFAULTS)
# Every string field of a call but `campaign_id`, alphabetical as in the seed's example.
CALL_STRING_FIELDS: Final = tuple(
    sorted(f.name for f in _RECORD if f.type == "str" and f.name != "campaign_id")
)
CALL_BOOLEAN_FIELDS: Final = tuple(f.name for f in _RECORD if f.type == "bool")
# What the server derives: from the database (`id`, and `updated_at`, epoch ms of the last
# change of what the API shows), and from the campaign.
CALL_DERIVED_FIELDS: Final = ("id", "account_id", "company_id", "campaign_name", "updated_at")
CALL_INTEGER_FIELDS: Final = (
    "id",
    "account_id",
    "company_id",
    "updated_at",
    *sorted(f.name for f in _RECORD if f.type == "int"),
)
# Every field of a call as the API renders it, alphabetical as in the seed's example.
# `campaign_id` is our addition beside `campaign_name`.
CALL_FIELDS: Final = tuple(sorted((*CALL_IMPORT_FIELDS, *CALL_DERIVED_FIELDS)))

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
    name: str = ""
    last_used_at: int | None = None  # the start of the hour it was last used in (decision 14)
    # While a roll's grace lasts, the previous secret works until then (epoch ms).
    previous_secret_expires_at: int | None = None

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


@dataclass(frozen=True, slots=True)
class ChangeQuery:
    """One page of the change feed (`/calls?updated_since=`), validated: the account's calls
    changed at or after `updated_since`, oldest change first.

    `after_id` narrows the calls changed at exactly `updated_since` to those with a larger id:
    it is how a `next` link resumes inside a millisecond that many changes share.
    """

    account_id: int
    updated_since: int
    page_size: int
    after_id: int | None = None
    company_id: int | None = None
    campaign_id: str | None = None
    start_time: int | None = None
    end_time: int | None = None
