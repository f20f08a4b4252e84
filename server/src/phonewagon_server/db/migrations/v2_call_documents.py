"""Version 2 (2026-12): each call stored as the JSON document the API sends (decision 9), in place
of one column per field: the columns that find a call stay, the rest is rendered into `head` and
`tail` around the id. Written out as it was, rendering included: later changes to how a call is
rendered are migrations of their own."""

from __future__ import annotations

import orjson

from phonewagon_server.db.engine import Connection

# The columns of version 1 that the documents replace (all of a call's fields but `sid`).
_DROPPED = (
    "duration",
    "is_first_time_caller",
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
_BATCH = 5000

STATEMENTS = (
    "ALTER TABLE calls ADD COLUMN head TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE calls ADD COLUMN tail TEXT NOT NULL DEFAULT ''",
)


def render_stored_calls(tx: Connection) -> None:
    """Render every call's columns into its document, then drop the columns."""
    select = (
        "SELECT c.id, c.account_id, c.company_id, k.name, c.campaign_id, c.start_time, c.sid, "
        + ", ".join(f"c.{name}" for name in _DROPPED)
        + " FROM calls c JOIN campaigns k ON k.id = c.campaign_id"
        " WHERE c.id > ? ORDER BY c.id LIMIT ?"
    )
    tx.execute("CREATE TEMP TABLE rendered_calls (id BIGINT PRIMARY KEY, head TEXT, tail TEXT)")
    last_id = 0
    while rows := tx.fetchall(select, (last_id, _BATCH)):
        tx.load_rows("rendered_calls", ("id", "head", "tail"), [_rendered(row) for row in rows])
        last_id = rows[-1][0]
    tx.execute(
        "UPDATE calls SET head = r.head, tail = r.tail FROM rendered_calls r WHERE calls.id = r.id"
    )
    tx.execute("DROP TABLE rendered_calls")
    for column in _DROPPED:
        tx.execute(f"ALTER TABLE calls DROP COLUMN {column}")


def _rendered(row: tuple[object, ...]) -> tuple[object, str, str]:
    call_id, account_id, company_id, name, campaign_id, start_time, sid, *values = row
    document = dict(zip(_DROPPED, values, strict=True))
    document["is_first_time_caller"] = bool(document["is_first_time_caller"])
    document.update(
        account_id=account_id,
        company_id=company_id,
        campaign_name=name,
        campaign_id=campaign_id,
        start_time=start_time,
        sid=sid,
        id=0,
    )
    # Keys sorted: `"id":` falls between `"gclid"` and `"is_first_time_caller"`, and is cut out.
    rendered = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    cut = rendered.index(b',"id":0,') + len(b',"id":')
    return call_id, rendered[:cut].decode(), rendered[cut + 1 :].decode()
