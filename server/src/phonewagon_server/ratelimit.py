"""Rolling-window rate limiting: never more than `limit` hits in any `window` seconds."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from phonewagon_server.config import Rate

Clock = Callable[[], float]
SWEEP_EVERY = 10_000


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

    Exact within one process, which is how `serve` runs today. Times are whole milliseconds, so
    "retry in N seconds" is exactly true however the clock's floats round.
    """

    def __init__(self, rate: Rate, *, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._window_ms = rate.window * 1000
        self._hits: dict[str, deque[int]] = {}
        self._lock = threading.Lock()
        self._hits_since_sweep = 0

    def hit(self, key: str) -> Decision:
        """Count a hit for `key` if the window has room; say whether it was admitted."""
        with self._lock:
            now = round(self._clock() * 1000)
            hits = self._expire(key, now)
            allowed = len(hits) < self.rate.limit
            if allowed:
                hits.append(now)
            self._sweep_now_and_then(now)
            return self._decide(allowed, hits, now)

    def _expire(self, key: str, now: int) -> deque[int]:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self._window_ms:
            hits.popleft()
        return hits

    def _sweep_now_and_then(self, now: int) -> None:
        """Forget keys whose hits have all expired, so many one-off keys cannot pile up."""
        self._hits_since_sweep += 1
        if self._hits_since_sweep < SWEEP_EVERY:
            return
        self._hits_since_sweep = 0
        horizon = now - self._window_ms
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= horizon]:
            del self._hits[key]

    def _decide(self, allowed: bool, hits: deque[int], now: int) -> Decision:
        reset = -((now - hits[0] - self._window_ms) // 1000) if hits else 0  # ceil, in seconds
        return Decision(
            allowed=allowed,
            rate=self.rate,
            remaining=self.rate.limit - len(hits),
            reset=max(reset, 1) if not allowed else reset,
        )
