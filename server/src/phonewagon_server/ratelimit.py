"""Rolling-window rate limiting: never more than `limit` hits in any `window` seconds."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from phonewagon_server.config import Rate, Settings

logger = logging.getLogger(__name__)
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

    Exact within one process. Times are whole milliseconds, so "retry in N seconds" is exactly
    true however the clock's floats round.
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

    def counts(self) -> dict[str, int]:
        """Hits inside the window, per key."""
        with self._lock:
            now = round(self._clock() * 1000)
            return {key: len(hits) for key in list(self._hits) if (hits := self._expire(key, now))}

    def forget(self, key: str, count: int) -> None:
        """Drop the `count` oldest hits of `key` (once they are counted somewhere else)."""
        with self._lock:
            hits = self._hits.get(key, deque())
            for _ in range(min(count, len(hits))):
                hits.popleft()

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


class Limiter(Protocol):
    rate: Rate

    def hit(self, key: str) -> Decision: ...


class RedisLimiter:
    """The same rolling log, kept in Redis, so every worker on every machine shares it.

    `limits`' moving window admits atomically (a Lua script). If Redis cannot be reached, each
    process falls back to its own log with a share of the limit (`fallback`), logs that once, and
    tries Redis again after `RETRY_REDIS_AFTER` seconds: exact again as soon as Redis is back.
    """

    RETRY_REDIS_AFTER = 2.0

    def __init__(
        self,
        rate: Rate,
        redis_url: str,
        *,
        prefix: str,
        fallback: MovingWindowLimiter,
        wall_clock: Clock = time.time,
        clock: Clock = time.monotonic,
    ) -> None:
        self.rate = rate
        self._fallback = fallback
        self._wall_clock = wall_clock
        self._clock = clock
        storage = RedisStorage(
            redis_url,
            key_prefix=prefix,
            wrap_exceptions=True,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
        self._strategy = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(rate.limit, rate.window)
        self._down_since: float | None = None
        self._lock = threading.Lock()
        self._handover_lock = threading.Lock()

    def hit(self, key: str) -> Decision:
        if self._redis_resting():
            return self._fallback.hit(key)
        for attempt in (1, 2):  # a connection that died with a restarted Redis fails once
            try:
                if self._down_since is not None:
                    self._hand_over_fallback_hits()
                allowed, reset_at, remaining = self._hit_in_redis(key)
                break
            except StorageError as exc:
                if attempt == 2:
                    self._mark_down(exc)
                    return self._fallback.hit(key)
        self._mark_up()
        # An entry leaves `limits`' window only once strictly older than it: hence the extra ms.
        reset = (
            math.ceil(reset_at - self._wall_clock() + 0.001) if remaining < self.rate.limit else 0
        )
        return Decision(
            allowed=allowed,
            rate=self.rate,
            remaining=max(remaining, 0),
            reset=max(reset, 1) if not allowed else max(reset, 0),
        )

    def _hand_over_fallback_hits(self) -> None:
        """Count in Redis what this process admitted alone, so the outage cannot double a quota.

        They are counted as of now, later than they happened: briefly stricter, never looser.
        Each key is forgotten only once Redis holds it, so a Redis still down loses nothing.
        Redis is called back only by `hit`, once it has answered: an empty log asks it nothing.
        """
        with self._handover_lock:  # one thread hands over; the others find nothing left to do
            if self._down_since is None:
                return
            for key, count in self._fallback.counts().items():
                self._strategy.hit(self._item, key, cost=min(count, self.rate.limit))
                self._fallback.forget(key, count)

    def _hit_in_redis(self, key: str) -> tuple[bool, float, int]:
        allowed = self._strategy.hit(self._item, key)
        reset_at, remaining = self._strategy.get_window_stats(self._item, key)
        return allowed, reset_at, remaining

    def _redis_resting(self) -> bool:
        with self._lock:
            down = self._down_since
        return down is not None and self._clock() - down < self.RETRY_REDIS_AFTER

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            first = self._down_since is None
            self._down_since = self._clock()
        if first:
            logger.warning(
                "rate limit: Redis unreachable (%s); each process now admits %s per account",
                type(exc.__cause__ or exc).__name__,
                self._fallback.rate,
            )

    def _mark_up(self) -> None:
        with self._lock:
            was_down, self._down_since = self._down_since is not None, None
        if was_down:
            logger.warning("rate limit: Redis is back; the limit is shared and exact again")


def build_limiter(rate: Rate, settings: Settings, *, clock: Clock = time.monotonic) -> Limiter:
    """Memory for one process; Redis (with a per-process share as fallback) when configured."""
    if settings.redis_url is None:
        return MovingWindowLimiter(rate, clock=clock)
    share = Rate(limit=max(1, rate.limit // settings.workers), window=rate.window)
    return RedisLimiter(
        rate,
        settings.redis_url,
        prefix=settings.redis_prefix,
        fallback=MovingWindowLimiter(share, clock=clock),
        clock=clock,
    )
