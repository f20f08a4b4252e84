"""A call is stored as the JSON the API sends: rendered once when written, never again when read.

Reading a page is then a matter of joining 1000 stored strings, instead of turning some 37,000
values into Python objects and back into JSON (docs/decisions/0009). Only `id`, which the database
assigns on insert, is left out: each document is stored as the text before it and the text after
it, and the page query splices them around the id.

    {"account_id":1,"ad_position":"",...,"gclid":"","id":  12345  ,"is_first_time_caller":true,...}
    └──────────────────── head ─────────────────────────┘  └ id ┘  └────────── tail ────────────┘
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from phonewagon_server.models import CALL_IMPORT_FIELDS, Call, Campaign

# Keys are rendered sorted, so `"id":` comes right after `"gclid"` and before
# `"is_first_time_caller"`. Inside a JSON string every `"` is escaped as `\"`, so these bytes,
# with their bare quotes, can only be the key itself.
_ID_PLACEHOLDER: Final = b',"id":0,'


def render_call(call: Call, campaign: Campaign) -> tuple[str, str]:
    """The (head, tail) of a call's JSON document, the only form in which a call is stored."""
    return render_fields({name: getattr(call, name) for name in CALL_IMPORT_FIELDS}, campaign)


def render_fields(fields: Mapping[str, Any], campaign: Campaign) -> tuple[str, str]:
    """`render_call` of a call given as its fields, every one of `Call`'s, already validated:
    an import's rows take this way, which spares it building a `Call` for each."""
    document = dict(fields)
    document.update(
        account_id=campaign.account_id,
        company_id=campaign.company_id,
        campaign_name=campaign.name,
        id=0,
    )
    rendered = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    cut = rendered.index(_ID_PLACEHOLDER) + len(_ID_PLACEHOLDER) - 2
    return rendered[:cut].decode(), rendered[cut + 1 :].decode()


def read_document(document: str | bytes) -> Call:
    """The call a stored document shows, as the record it was rendered from."""
    shown = orjson.loads(document)
    return Call(**{name: shown[name] for name in CALL_IMPORT_FIELDS})


def render_page(documents: bytes, next_url: str | None) -> bytes:
    """The body of a `/calls` answer, as `orjson.dumps({"calls": [...], "next": ...})` has it;
    `documents` are the calls' documents joined by commas."""
    if next_url is None:
        return b"".join((b'{"calls":[', documents, b"]}"))
    return b"".join((b'{"calls":[', documents, b'],"next":', orjson.dumps(next_url), b"}"))
