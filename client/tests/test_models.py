"""Typed records: every documented field, the API's order, tolerant of what a server may add."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from phonewagon import CALL_FIELDS, Call, Campaign, Company

# The seed documentation's example call, with its two trailing-comma typos fixed.
SEED_EXAMPLE = json.loads("""
{
  "account_id": 696,
  "ad_position": "",
  "campaign_name": "Dummy name",
  "company_id": 1386,
  "contact_name": "Bronx        Ny",
  "device": "",
  "direction": "inbound",
  "duration": 54,
  "fbclid": "",
  "from_number": "+19295559999",
  "gclid": "",
  "id": 6315,
  "is_first_time_caller": false,
  "keyword": "",
  "landing_page": "http://tommy123.com/staging.html",
  "match_type": "",
  "msclkid": "",
  "network": "",
  "recording_url": "https://core-api.phonewagon.com/call-recordings/CA9d0462dd32f10134829dde342c1ec85c/file?cb=1575395046734",
  "referral_value": "http://yahoo.com/yahoo.html",
  "sid": "CA9d0462dd32f10134829dde342c1ec85c",
  "start_time": 1575322416000,
  "status": "completed",
  "to_number": "+18445551234",
  "unbounce_page_id": "",
  "unbounce_variant_id": "",
  "unbounce_visitor_id": "",
  "user_source": "Yahoo organic",
  "utm_campaign": "",
  "utm_content": "",
  "utm_medium": "",
  "utm_source": "",
  "utm_term": ""
}
""")
# What our server sends beside the seed's fields: `campaign_id`, and `updated_at`, its last change.
UPDATED_AT = 1575395046734
CALL_EXAMPLE = {**SEED_EXAMPLE, "updated_at": UPDATED_AT}


def test_call_fields_are_the_seed_fields_campaign_id_and_updated_at_in_alphabetical_order() -> None:
    """CALL_FIELDS is the seed example's keys plus `campaign_id` and `updated_at`, sorted like the
    API renders."""
    assert set(CALL_FIELDS) == {*SEED_EXAMPLE, "campaign_id", "updated_at"}
    assert list(CALL_FIELDS) == sorted(CALL_FIELDS)
    assert tuple(field.name for field in dataclasses.fields(Call)) == CALL_FIELDS


def test_seed_example_reads_into_typed_fields() -> None:
    """The seed's example call (with its `updated_at`) becomes a Call with its documented types."""
    call = Call.from_dict(CALL_EXAMPLE)
    assert call.id == 6315
    assert call.account_id == 696
    assert call.company_id == 1386
    assert call.duration == 54
    assert call.start_time == 1575322416000
    assert call.updated_at == UPDATED_AT
    assert call.is_first_time_caller is False
    assert call.contact_name == "Bronx        Ny"
    assert call.user_source == "Yahoo organic"
    assert call.campaign_id == ""


def test_seed_example_round_trips_through_to_dict() -> None:
    """`to_dict` gives back the seed's call (with an empty campaign_id) and reads back equal."""
    call = Call.from_dict(CALL_EXAMPLE)
    assert call.to_dict() == {**CALL_EXAMPLE, "campaign_id": ""}
    assert Call.from_dict(call.to_dict()) == call


def test_to_dict_keys_follow_call_fields() -> None:
    """Exporters can rely on one column order: CALL_FIELDS."""
    assert tuple(Call.from_dict(CALL_EXAMPLE).to_dict()) == CALL_FIELDS


def test_unknown_future_fields_are_ignored() -> None:
    """A server that adds fields does not break an older client."""
    call = Call.from_dict({**CALL_EXAMPLE, "transcript": "hello", "tags": ["a"]})
    assert call == Call.from_dict(CALL_EXAMPLE)


def test_missing_or_null_text_fields_read_as_empty_strings() -> None:
    """Text is never None: absent or null text fields become `""`."""
    data = {k: v for k, v in CALL_EXAMPLE.items() if k not in ("gclid", "keyword")}
    call = Call.from_dict({**data, "utm_term": None})
    assert (call.gclid, call.keyword, call.utm_term) == ("", "", "")


def test_missing_integer_field_is_refused_by_name() -> None:
    """A call without its id cannot be read; the error names the field."""
    data = {k: v for k, v in CALL_EXAMPLE.items() if k != "id"}
    with pytest.raises(ValueError, match=r"^id should be an integer"):
        Call.from_dict(data)


def test_a_call_without_updated_at_is_refused_as_from_a_server_before_the_change_feed() -> None:
    """The seed's own example lacks it: such a server cannot serve `changes()` or `sync`."""
    with pytest.raises(ValueError, match="updated_at is missing: the server predates the change"):
        Call.from_dict(SEED_EXAMPLE)


def test_boolean_is_not_read_as_an_integer() -> None:
    """`True` is not a duration."""
    with pytest.raises(ValueError, match="duration"):
        Call.from_dict({**CALL_EXAMPLE, "duration": True})


def test_started_at_is_an_aware_utc_datetime() -> None:
    """`started_at` turns epoch milliseconds into a UTC datetime, to the millisecond."""
    call = Call.from_dict({**CALL_EXAMPLE, "start_time": 1575322416123})
    assert call.started_at == datetime(2019, 12, 2, 21, 33, 36, 123000, tzinfo=UTC)
    assert call.started_at.tzinfo is UTC


def test_records_are_frozen() -> None:
    """Records are values: they cannot be changed after reading."""
    call = Call.from_dict(CALL_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.duration = 0  # type: ignore[misc]


def test_company_and_campaign_read_the_seed_examples() -> None:
    """Company ids are integers, campaign ids strings, as in the seed."""
    assert Company.from_dict({"id": 1001, "name": "Phonewagon"}) == Company(1001, "Phonewagon")
    assert Campaign.from_dict({"id": "s2212", "name": "Facebook"}) == Campaign("s2212", "Facebook")
    assert Campaign("s2212", "Facebook").to_dict() == {"id": "s2212", "name": "Facebook"}
    assert Company(9812, "Jake's rake company").to_dict() == {
        "id": 9812,
        "name": "Jake's rake company",
    }
