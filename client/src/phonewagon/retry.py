"""When to send a request again, and how long to wait first.

The client waits for three reasons, always through its `sleep` seam and announced to `on_wait`:

- pacing: the last answer said the account's quota is spent (`RateLimit: "default";r=0;t=12`), so
  the next request waits `t` seconds and a long pull is never refused at all;
- rate limit: a `429` is sent again after its `Retry-After`, up to RATE_LIMIT_PATIENCE times in a
  row, without spending `max_retries`;
- retry: a transient failure is sent again after an exponential backoff with full jitter, up to
  `max_retries` times.

A retry sends the very same request, so a page is never skipped or fetched twice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, Literal

import httpx

BACKOFF_BASE: Final = 0.5
BACKOFF_CAP: Final = 30.0
RATE_LIMIT_PATIENCE: Final = 30
RATE_LIMIT_FALLBACK_WAIT: Final = 1.0
RETRYABLE_STATUSES: Final = frozenset({500, 502, 503, 504})
_SECONDS = re.compile(r"^\d+(\.\d+)?$")

Outcome = httpx.Response | httpx.TransportError


@dataclass(frozen=True, slots=True)
class Wait:
    """A pause about to happen: `seconds` long, for `reason`.

    `attempt` counts the waits for this one request (1 for the first); 0 when pacing before a
    fresh request. `cause` says what happened, e.g. "HTTP 503" or "ConnectError".
    """

    seconds: float
    reason: Literal["rate-limit", "retry"]
    attempt: int
    cause: str = ""


def is_retryable(outcome: Outcome) -> bool:
    """Whether sending the same GET again may get a better answer."""
    if isinstance(outcome, httpx.TimeoutException | httpx.NetworkError):
        # No connection, a reset, or no answer in time: a GET is safe to send again.
        return True
    if isinstance(outcome, httpx.RemoteProtocolError):
        # The server or a proxy hung up in the middle of its answer.
        return True
    if isinstance(outcome, httpx.TransportError):
        # A URL we cannot send (wrong scheme), a proxy refusing us: it fails the same way again.
        return False
    if outcome.status_code == 429:
        # Over the account's rate limit: `Retry-After` says when a request will be admitted.
        return True
    # 500, 502, 503, 504: the server, its database or a proxy in front of it failed for a moment.
    # Not 400, 401, 404, 405, ...: the same question gets the same answer however often it is asked.
    return outcome.status_code in RETRYABLE_STATUSES


class RetryBudget:
    """The waits one request may make before its failure becomes the caller's to handle."""

    def __init__(self, *, max_retries: int, jitter: Callable[[], float]) -> None:
        self.max_retries = max_retries
        self.jitter = jitter
        self.retries = 0
        self.rate_limit_waits = 0

    def next_wait(self, outcome: Outcome) -> Wait | None:
        """The wait before sending the request again, or None to give up."""
        if not is_retryable(outcome):
            return None
        cause = describe(outcome)
        if isinstance(outcome, httpx.Response) and outcome.status_code == 429:
            if self.rate_limit_waits >= RATE_LIMIT_PATIENCE:
                return None
            self.rate_limit_waits += 1
            return Wait(
                rate_limit_delay(outcome.headers), "rate-limit", self.rate_limit_waits, cause
            )
        if self.retries >= self.max_retries:
            return None
        self.retries += 1
        told = parse_retry_after(outcome.headers) if isinstance(outcome, httpx.Response) else None
        delay = told if told is not None else backoff_delay(self.retries, jitter=self.jitter)
        return Wait(delay, "retry", self.retries, cause)


def backoff_delay(retry: int, *, jitter: Callable[[], float]) -> float:
    """Full jitter: anywhere in [0, min(cap, base * 2^(retry-1))), so clients spread out."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(retry - 1, 32))
    return jitter() * ceiling


def rate_limit_delay(headers: httpx.Headers) -> float:
    """How long a 429 asks us to wait: `Retry-After`, else the quota's reset, else a second."""
    told = parse_retry_after(headers)
    if told is not None:
        return told
    quota = parse_ratelimit(headers.get("ratelimit"))
    if quota is not None and quota.reset > 0:
        return quota.reset
    return RATE_LIMIT_FALLBACK_WAIT


def parse_retry_after(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` field: delay-seconds or an HTTP date (RFC 9110)."""
    value = headers.get("retry-after", "").strip()
    if _SECONDS.match(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class Quota:
    """What a `RateLimit` field says: `remaining` requests, more of them in `reset` seconds."""

    remaining: int
    reset: float


def parse_ratelimit(value: str | None) -> Quota | None:
    """The tightest policy of a `RateLimit` field, e.g. `"default";r=0;t=12` → Quota(0, 12)."""
    quotas = []
    for item in (value or "").split(","):
        params: dict[str, str] = {}
        for param in item.split(";")[1:]:
            key, _, number = param.partition("=")
            params[key.strip()] = number.strip()
        try:
            remaining, reset = int(params["r"]), float(params.get("t", "0"))
        except (KeyError, ValueError):
            continue
        if math.isfinite(reset):
            quotas.append(Quota(remaining, max(reset, 0.0)))
    return min(quotas, key=lambda quota: (quota.remaining, -quota.reset), default=None)


class Pacer:
    """Holds the next request back while the server says the account's quota is spent."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._resume_at = -math.inf

    def observe(self, headers: httpx.Headers) -> None:
        quota = parse_ratelimit(headers.get("ratelimit"))
        if quota is None:
            return
        self._resume_at = self._clock() + quota.reset if quota.remaining <= 0 else -math.inf

    def delay(self) -> float:
        return max(0.0, self._resume_at - self._clock())


def describe(outcome: Outcome) -> str:
    if isinstance(outcome, httpx.Response):
        return f"HTTP {outcome.status_code}"
    return type(outcome).__name__
