"""The rolling-window limiter: exact over any window, truthful about when to retry."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from phonewagon_server.config import Rate
from phonewagon_server.ratelimit import SWEEP_EVERY, MovingWindowLimiter
from server_testkit import FakeClock


@given(st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), max_size=200))
def test_never_more_than_the_limit_in_any_window(gaps: list[float]) -> None:
    clock = FakeClock(0)
    limiter = MovingWindowLimiter(Rate(limit=5, window=10), clock=clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        if limiter.hit("k").allowed:
            admitted.append(clock())
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 10) <= 5


# Gaps of at most 3 s: the 4th of any 4 hits lands within 9 s of the 1st, so one is refused.
@given(st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), min_size=4, max_size=50))
def test_a_refused_hit_is_admitted_at_retry_after_and_not_a_second_before(
    gaps: list[float],
) -> None:
    clock = FakeClock(0)
    limiter = MovingWindowLimiter(Rate(limit=3, window=10), clock=clock)
    for gap in gaps:
        clock.advance(gap)
        decision = limiter.hit("k")
        if not decision.allowed:
            clock.advance(decision.reset - 1)
            assert not limiter.hit("k").allowed  # a refused hit is not counted
            clock.advance(1)
            assert limiter.hit("k").allowed
            return
    raise AssertionError("no hit was refused: the example tests nothing")


def test_keys_whose_hits_expired_are_forgotten() -> None:
    clock = FakeClock(0)
    limiter = MovingWindowLimiter(Rate(limit=1, window=60), clock=clock)
    for n in range(SWEEP_EVERY - 1):
        limiter.hit(f"address-{n}")
    clock.advance(61)
    limiter.hit("now")
    assert list(limiter._hits) == ["now"]


def test_headers_announce_policy_and_what_is_left() -> None:
    clock = FakeClock(0)
    limiter = MovingWindowLimiter(Rate(limit=2, window=60), clock=clock)
    assert limiter.hit("k").headers() == {
        "RateLimit-Policy": '"default";q=2;w=60',
        "RateLimit": '"default";r=1;t=60',
    }
    limiter.hit("k")
    clock.advance(15.5)
    assert limiter.hit("k").headers() == {
        "RateLimit-Policy": '"default";q=2;w=60',
        "RateLimit": '"default";r=0;t=45',
        "Retry-After": "45",
    }
