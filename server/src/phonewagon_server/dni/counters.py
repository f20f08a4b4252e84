"""The DNI counters, one set per process: the request handlers and the background workers (in
other threads) count into the same ones, which every app's `/metrics` shows."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True, slots=True)
class DniCounters:
    visits: Counter
    fallbacks: Counter
    ambiguous_calls: Counter

    def register(self, registry: CollectorRegistry) -> None:
        for counter in (self.visits, self.fallbacks, self.ambiguous_calls):
            registry.register(counter)


@functools.cache
def dni_counters() -> DniCounters:
    """Made on first use, after `serve` has set up the workers' shared metrics directory."""
    return DniCounters(
        visits=Counter(
            "phonewagon_dni_visits",
            "Page views of people answered by POST /dni/visits (bots and refusals not counted).",
            registry=None,
        ),
        fallbacks=Counter(
            "phonewagon_dni_fallbacks",
            "Page views that got no number of a pool because all its numbers were held.",
            registry=None,
        ),
        ambiguous_calls=Counter(
            "phonewagon_dni_ambiguous_calls",
            "Calls to a pool number that no visit held when the call began.",
            registry=None,
        ),
    )
