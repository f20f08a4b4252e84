"""The Calls page's chart, calls per day by source, drawn on the server as SVG: no script, and
readable as a table for those who would rather read it."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from phonewagon_server.db.call_browsing import DAY_MS, DailySources, distinct_sources

SHOWN_SOURCES = 5  # the busiest; the rest are drawn together as "Other"
OTHER = "Other"
WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 752, 12, 212  # the plot area inside the view box


@dataclass(frozen=True, slots=True)
class Segment:
    y: float
    height: float
    series: int  # its colour: `.series-N` in app.css
    source: str
    count: int


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    day: str  # YYYY-MM-DD
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    bars: tuple[Bar, ...]
    legend: tuple[tuple[int, str, int], ...]  # (series, source, calls)
    ticks: tuple[tuple[float, int], ...]  # (y, calls) of each horizontal line
    labels: tuple[tuple[float, str], ...]  # (x, "Dec 3") under some bars
    rows: tuple[tuple[str, tuple[int, ...], int], ...]  # the table: day, per source, total
    total: int
    complete: bool
    counted_from: int


def build_chart(daily: DailySources) -> Chart:
    sources = distinct_sources(daily)
    shown = sources[:SHOWN_SOURCES]
    series = {source: n for n, source in enumerate(shown)}
    names = [*shown, OTHER] if len(sources) > SHOWN_SOURCES else shown
    days = range(daily.first_day, daily.last_day + 1)
    per_day = {day: [0] * len(names) for day in days}
    for (day, source), count in daily.counts.items():
        if day in per_day:
            per_day[day][series.get(source, len(shown))] += count
    top = _nice_ceiling(max((sum(values) for values in per_day.values()), default=0))
    slot = (RIGHT - LEFT) / len(days)
    scale = (BOTTOM - TOP) / top
    bars, labels, rows = [], [], []
    for n, day in enumerate(days):
        x = LEFT + n * slot + slot * 0.15
        y = float(BOTTOM)
        segments = []
        for index, count in enumerate(per_day[day]):
            if count:
                height = count * scale
                y -= height
                segments.append(Segment(round(y, 2), round(height, 2), index, names[index], count))
        date = dt.datetime.fromtimestamp(day * DAY_MS / 1000, tz=dt.UTC)
        label = date.strftime("%Y-%m-%d")
        total = sum(per_day[day])
        bars.append(Bar(round(x, 2), round(slot * 0.7, 2), label, total, tuple(segments)))
        if (len(days) - 1 - n) % 7 == 0:
            labels.append((round(x + slot * 0.35, 2), date.strftime("%b %-d")))
        rows.append((label, tuple(per_day[day]), total))
    totals = [sum(values[i] for values in per_day.values()) for i in range(len(names))]
    ticks = tuple((round(BOTTOM - top * f * scale, 2), round(top * f)) for f in (0, 0.5, 1))
    return Chart(
        bars=tuple(bars),
        legend=tuple((i, name, totals[i]) for i, name in enumerate(names)),
        ticks=ticks,
        labels=tuple(labels),
        rows=tuple(rows),
        total=sum(totals),
        complete=daily.complete,
        counted_from=daily.counted_from,
    )


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50 ... at least `value` (and at least 2, for a tick)."""
    if value <= 2:
        return 2
    power: int = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)
