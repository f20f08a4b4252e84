"""The web app's reads of calls: short pages that may filter by source, and the calls per day
by source behind its chart.

`user_source` lives only inside a call's stored document, at a known place: keys are rendered
sorted, so the document's `tail` (see `documents`) always starts with it,

    ,"user_source":"Google Ads","utm_campaign":…
    └──── SOURCE_KEY ────┘└value┘└─ VALUE_END ─┘

and in a JSON string every `"` is escaped, so `","utm_campaign":` with its bare quotes can only
end the value. A filter compares the tail's first characters; the chart cuts the value out.
Neither has an index to use: each bounds the calls it reads (decision 14).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from phonewagon_server.db.calls import DOCUMENT, _conditions
from phonewagon_server.db.engine import Connection
from phonewagon_server.models import CallQuery

SOURCE_KEY = ',"user_source":"'
VALUE_END = '","utm_campaign":'
# Calls a source-filtered page reads at most, newest first, before it stops and offers to
# search older ones: a rare source costs one bounded range read, not the account's every call.
SOURCE_SCAN_LIMIT = 20_000
# Calls the chart counts at most, newest first: beyond, it says how far back it counted.
CHART_LIMIT = 500_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class BrowsePage:
    calls: list[dict[str, Any]]  # each call as the API shows it
    resume_after: tuple[int, int] | None  # (start_time, id) to continue below, if any
    scanned_out: bool  # a source filter stopped at its scan limit before filling the page


def read_browse_page(tx: Connection, query: CallQuery, *, source: str | None) -> BrowsePage:
    """Up to `query.page_size` calls of `query`, newest first; with `source`, only calls of that
    source among the next SOURCE_SCAN_LIMIT calls of the query."""
    where, params = _conditions(query)
    size = query.page_size
    boundary = None
    if source is not None:
        # The last key the scan may read: an index-only read of the query's range.
        boundary = tx.fetchone(
            f"SELECT c.start_time, c.id FROM calls c WHERE {' AND '.join(where)}"
            " ORDER BY c.start_time DESC, c.id DESC LIMIT 1 OFFSET ?",
            [*params, SOURCE_SCAN_LIMIT - 1],
        )
        prefix = source_prefix(source)
        where = [*where, "substr(c.tail, 1, CAST(? AS INTEGER)) = ?"]
        params = [*params, len(prefix), prefix]
        if boundary is not None:
            where.append("(c.start_time, c.id) >= (?, ?)")
            params += [boundary[0], boundary[1]]
    rows = tx.fetchall(
        f"SELECT c.start_time, c.id, {DOCUMENT} FROM calls c WHERE {' AND '.join(where)}"
        " ORDER BY c.start_time DESC, c.id DESC LIMIT ?",
        [*params, size + 1],
    )
    shown = rows[:size]
    calls = [orjson.loads(row[2]) for row in shown]
    if len(rows) > size:
        return BrowsePage(calls, (int(shown[-1][0]), int(shown[-1][1])), scanned_out=False)
    if boundary is not None:  # the scan stopped short: older calls remain unread
        return BrowsePage(calls, (int(boundary[0]), int(boundary[1])), scanned_out=True)
    return BrowsePage(calls, None, scanned_out=False)


def source_prefix(source: str) -> str:
    """How the tail of a call of `source` starts, as `documents.render_call` renders it."""
    return SOURCE_KEY[:-1] + orjson.dumps(source).decode() + ","


@dataclass(frozen=True, slots=True)
class DailySources:
    counts: dict[tuple[int, str], int]  # (UTC day number, source) -> calls
    first_day: int
    last_day: int
    complete: bool  # False: more than CHART_LIMIT calls, the oldest days left out
    counted_from: int  # the oldest call counted (epoch ms), or the window's start


def count_calls_by_day_and_source(
    tx: Connection, account_id: int, *, days: int, now_ms: int
) -> DailySources:
    """The account's calls of the last `days` UTC days (today included), per day and source."""
    last_day = now_ms // DAY_MS
    first_day = last_day - days + 1
    start = first_day * DAY_MS
    find = "instr(c.tail, ?)" if tx.dialect == "sqlite" else "strpos(c.tail, ?)"
    skip = len(SOURCE_KEY)
    value = f"substr(c.tail, {skip + 1}, {find} - {skip + 1})"
    window = (
        "SELECT c.start_time, c.tail FROM calls c"
        " WHERE c.account_id = ? AND c.start_time >= ? AND c.start_time < ?"
        " ORDER BY c.start_time DESC, c.id DESC LIMIT ?"
    )
    rows = tx.fetchall(
        f"SELECT c.start_time / {DAY_MS}, {value}, count(*), min(c.start_time)"
        f" FROM ({window}) c GROUP BY 1, 2",
        (VALUE_END, account_id, start, (last_day + 1) * DAY_MS, CHART_LIMIT),
    )
    counts: dict[tuple[int, str], int] = {}
    for day, escaped, count, _ in rows:
        key = (int(day), _unescaped(escaped))
        counts[key] = counts.get(key, 0) + int(count)
    if sum(counts.values()) < CHART_LIMIT:
        return DailySources(counts, first_day, last_day, complete=True, counted_from=start)
    oldest = min(int(row[3]) for row in rows)
    return DailySources(counts, first_day, last_day, complete=False, counted_from=oldest)


def _unescaped(escaped: str | None) -> str:
    if not escaped:
        return ""
    try:
        value = orjson.loads(f'"{escaped}"')
    except orjson.JSONDecodeError:
        return escaped
    return str(value)


def distinct_sources(daily: DailySources) -> list[str]:
    """The sources of `daily`, most calls first."""
    totals: dict[str, int] = {}
    for (_, source), count in daily.counts.items():
        totals[source] = totals.get(source, 0) + count
    return sorted(totals, key=lambda source: (-totals[source], source))


def browse_query(
    account_id: int,
    *,
    start_time: int,
    end_time: int,
    page_size: int,
    company_id: int | None = None,
    campaign_id: str | None = None,
    before: Sequence[int] | None = None,
) -> CallQuery:
    """A `CallQuery`, resumed below `before` (start_time, id) when given, as `next` links do."""
    query = CallQuery(
        account_id=account_id,
        start_time=start_time,
        end_time=end_time,
        page_size=page_size,
        company_id=company_id,
        campaign_id=campaign_id,
    )
    if before is None or before[0] > end_time:
        return query
    return replace(query, end_time=min(end_time, before[0]), before_id=before[1])
