"""Rolling-window rate limiting: never more than `limit` hits in any `window` seconds."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from phonewagon_server.config import Rate

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rate: Rate
    remaining: int
    # Whole seconds until the oldest hit in the window expires: when a refused request may retry.
    reset: int

    def headers(self, policy: str = "default") -> dict[str, str]:
        """The IETF httpapi-ratelimit-headers (draft 10) fields for this decision."""
        headers = {
            "RateLimit-Policy": f'"{policy}";q={self.rate.limit};w={self.rate.window}',
            "RateLimit": f'"{policy}";r={self.remaining};t={self.reset}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset)
        return headers


class MovingWindowLimiter:
    """An exact log of hit times per key, in this process's memory.

    Exact within one process, which is how `serve` runs today.
    """

    def __init__(self, rate: Rate, *, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> Decision:
        """Count a hit for `key` if the window has room; say whether it was admitted."""
        with self._lock:
            now = self._clock()
            hits = self._expire(key, now)
            allowed = len(hits) < self.rate.limit
            if allowed:
                hits.append(now)
            return self._decide(allowed, hits, now)

    def peek(self, key: str) -> Decision:
        """Whether a hit would be admitted now, without counting one."""
        with self._lock:
            now = self._clock()
            hits = self._expire(key, now)
            return self._decide(len(hits) < self.rate.limit, hits, now)

    def _expire(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.rate.window:
            hits.popleft()
        return hits

    def _decide(self, allowed: bool, hits: deque[float], now: float) -> Decision:
        reset = math.ceil(hits[0] + self.rate.window - now) if hits else 0
        return Decision(
            allowed=allowed,
            rate=self.rate,
            remaining=self.rate.limit - len(hits),
            reset=max(reset, 1) if not allowed else reset,
        )
