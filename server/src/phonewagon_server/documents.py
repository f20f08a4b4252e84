"""A call is stored as the JSON the API sends: rendered once when written, never again when read.

Reading a page is then a matter of joining 1000 stored strings, instead of turning some 37,000
values into Python objects and back into JSON (docs/decisions/0009). Left out are the two values
that change without the call being rendered again: `id`, which the database assigns on insert,
and `updated_at`, stamped by every write. Each document is stored as the text around them, and
the page query splices them in.

    {"account_id":1,…,"id": 123 ,"is_first_time_caller":true,…,"updated_at": 1764… ,"user_source":…}
    └────── head ───────┘ └id ┘ └────────────── middle ──────────────┘ └ stamp ┘ └── tail ──┘
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import orjson

from phonewagon_server.models import CALL_IMPORT_FIELDS, Call, Campaign

# Keys are rendered sorted, so `"id":` comes between `"gclid"` and `"is_first_time_caller"`, and
# `"updated_at":` between `"unbounce_visitor_id"` and `"user_source"`. Inside a JSON string every
# `"` is escaped as `\"`, so these bytes, with their bare quotes, can only be the keys themselves.
_ID: Final = b',"id":0,'
_UPDATED_AT: Final = b',"updated_at":0,'


class Rendered(NamedTuple):
    head: str  # up to `"id":`
    middle: str  # from the `,` after the id up to `"updated_at":`
    tail: str  # from the `,` after `updated_at` to the end


def render_call(call: Call, campaign: Campaign) -> Rendered:
    """A call's JSON document, the only form in which a call is stored."""
    return render_fields({name: getattr(call, name) for name in CALL_IMPORT_FIELDS}, campaign)


def render_fields(fields: Mapping[str, Any], campaign: Campaign) -> Rendered:
    """`render_call` of a call given as its fields, every one of `Call`'s, already validated:
    an import's rows take this way, which spares it building a `Call` for each."""
    document = dict(fields)
    document.update(
        account_id=campaign.account_id,
        company_id=campaign.company_id,
        campaign_name=campaign.name,
        id=0,
        updated_at=0,
    )
    rendered = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    id_at = rendered.index(_ID) + len(_ID) - 2
    stamp_at = rendered.index(_UPDATED_AT, id_at) + len(_UPDATED_AT) - 2
    return Rendered(
        rendered[:id_at].decode(),
        rendered[id_at + 1 : stamp_at].decode(),
        rendered[stamp_at + 1 :].decode(),
    )


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
