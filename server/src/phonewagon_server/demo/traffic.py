"""The calls themselves: how many a day, at what hour, from whom, with what outcome."""

from __future__ import annotations

import math
import random
from typing import Any, Final

from phonewagon_server.demo.catalog import COMPANIES, CompanySpec, fictional_numbers
from phonewagon_server.demo.visits import draw_visit
from phonewagon_server.models import CALL_STRING_FIELDS

DAY_MS: Final = 86_400_000
HISTORY_START_MS: Final = 1_567_296_000_000  # 2019-09-01T00:00:00Z
BUSY_DAYS: Final = 120

_QUIET_DAILY_CALLS = 2.2  # the whole account, on a weekday before the busy period
_BUSY_DAILY_CALLS = 455.0  # the whole account, on the last weekday before now
_WEEKEND_FACTOR = 0.3
_BURST_SHARE = 0.02  # calls that come with 1-3 others in the very same second
_REPEAT_SHARE = 0.45  # calls from someone who already called the company
_RECENT_CALLERS = 300  # a repeat caller is one of the company's last this-many new callers
_NAMED_SHARE = 0.75  # numbers whose caller id shows a city
# Local hours 0-23: quiet nights, busy business hours.
_HOURLY = (
    *(0.2, 0.1, 0.1, 0.1, 0.2, 0.4),  # 00-05
    *(1, 3, 7, 10, 11, 11),  # 06-11
    *(9, 10, 10, 9, 8, 6),  # 12-17
    *(4, 3, 2, 1.5, 0.8, 0.4),  # 18-23
)
_STATUSES = ("completed", "no-answer", "busy", "failed", "canceled")
_STATUS_WEIGHTS = (85, 8, 3, 2, 2)

_Call = dict[str, Any]


def generate_calls(
    rng: random.Random, company_ids: list[int], *, until_ms: int, scale: float, public_url: str
) -> list[dict[str, Any]]:
    """Every call from HISTORY_START_MS to `until_ms`, oldest first, as import records; a
    recorded call's recording is served under `public_url`."""
    callers = _Callers(rng)
    sids: set[str] = set()
    busy_from = max(until_ms - BUSY_DAYS * DAY_MS, HISTORY_START_MS)
    generated: list[_Call] = []
    for day in range(HISTORY_START_MS, until_ms, DAY_MS):
        mean = scale * _daily_mean(day, busy_from=busy_from, until_ms=until_ms)
        for index, spec in enumerate(COMPANIES):
            count = _draw_count(rng, mean * spec.share)
            for start_time in _draw_start_times(rng, day, count, spec.utc_offset_hours):
                call = _draw_call(
                    rng, spec, index, callers=callers, sids=sids, public_url=public_url
                )
                call.update(company_id=company_ids[index], start_time=start_time)
                generated.append(call)
    kept = sorted(
        (c for c in generated if HISTORY_START_MS <= c["start_time"] < until_ms),
        key=lambda c: int(c["start_time"]),
    )
    _mark_first_time_callers(kept)
    return kept


def _daily_mean(day_ms: int, *, busy_from: int, until_ms: int) -> float:
    """Expected calls of the whole account on `day_ms`: quiet, then growing over the busy days."""
    if day_ms < busy_from:
        mean = _QUIET_DAILY_CALLS
    else:
        mean = _BUSY_DAILY_CALLS * (0.55 + 0.45 * (day_ms - busy_from) / (until_ms - busy_from))
    weekday = (day_ms // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return mean * (_WEEKEND_FACTOR if weekday >= 5 else 1.0)


def _draw_count(rng: random.Random, mean: float) -> int:
    """A Poisson draw: exact for small means, its normal approximation for large ones."""
    if mean >= 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    count, product, limit = 0, rng.random(), math.exp(-mean)
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _draw_start_times(rng: random.Random, day_ms: int, count: int, utc_offset: int) -> list[int]:
    """`count` calls over a local day, at whole seconds, mostly in business hours."""
    local_midnight = day_ms - utc_offset * 3_600_000
    times: list[int] = []
    for hour in rng.choices(range(24), weights=_HOURLY, k=count):
        start_time = local_midnight + (hour * 3600 + rng.randrange(3600)) * 1000
        # A few calls bring others in the very same second (a radio spot, a billboard at rush
        # hour), so the data always holds the shared timestamps that paging must get right.
        together = 1 + (rng.randint(1, 3) if rng.random() < _BURST_SHARE else 0)
        times.extend([start_time] * together)
    return sorted(times)


def _draw_call(
    rng: random.Random,
    spec: CompanySpec,
    index: int,
    *,
    callers: _Callers,
    sids: set[str],
    public_url: str,
) -> _Call:
    campaign = rng.choices(spec.campaigns, weights=[c.share for c in spec.campaigns])[0]
    from_number, contact_name = callers.pick(index)
    status = rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0]
    sid = _draw_sid(rng, sids)
    call: _Call = dict.fromkeys(CALL_STRING_FIELDS, "")
    call.update(draw_visit(rng, spec, campaign.name))
    call.update(
        campaign_id=campaign.id,
        contact_name=contact_name,
        direction="inbound",
        duration=_draw_duration(rng) if status == "completed" else 0,
        from_number=from_number,
        is_first_time_caller=False,
        recording_url=f"{public_url}/call-recordings/{sid}/file" if status == "completed" else "",
        sid=sid,
        status=status,
        to_number=campaign.tracking_number,
    )
    return call


def _draw_sid(rng: random.Random, taken: set[str]) -> str:
    sid = f"CA{rng.getrandbits(128):032x}"
    while sid in taken:
        sid = f"CA{rng.getrandbits(128):032x}"
    taken.add(sid)
    return sid


def _draw_duration(rng: random.Random) -> int:
    """Seconds of an answered call: log-normal around a 90 s median, from 1 s to 2 h."""
    return max(1, min(7200, round(math.exp(rng.gauss(math.log(90), 0.9)))))


def _mark_first_time_callers(ordered: list[_Call]) -> None:
    seen: set[str] = set()
    for call in ordered:
        call["is_first_time_caller"] = call["from_number"] not in seen
        seen.add(call["from_number"])


class _Callers:
    """Who calls: a number never seen before, or one of the company's recent callers again."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._fresh = fictional_numbers()
        rng.shuffle(self._fresh)
        self._names: dict[str, str] = {}
        self._recent: list[list[str]] = [[] for _ in COMPANIES]
        self._everyone: list[str] = []

    def pick(self, company_index: int) -> tuple[str, str]:
        """(from_number, contact_name) of the next caller of company `company_index`."""
        recent = self._recent[company_index] or self._everyone
        if self._fresh and (not recent or self._rng.random() >= _REPEAT_SHARE):
            number, city = self._fresh.pop()
            self._names[number] = city if self._rng.random() < _NAMED_SHARE else ""
            self._everyone.append(number)
            self._recent[company_index].append(number)
        else:
            number = recent[-1 - self._rng.randrange(min(len(recent), _RECENT_CALLERS))]
        return number, self._names[number]
