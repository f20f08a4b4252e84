"""Polite and robust: pacing by `RateLimit`, 429s waited out, transient failures retried."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from phonewagon import (
    APIConnectionError,
    Client,
    PhonewagonError,
    RateLimitError,
    ServerError,
    Wait,
)
from phonewagon.retry import (
    RATE_LIMIT_PATIENCE,
    Quota,
    RetryBudget,
    backoff_delay,
    is_retryable,
    parse_ratelimit,
    parse_retry_after,
)

if TYPE_CHECKING:
    from fakes import FakeAPI, FakeTime

MakeClient = Callable[..., Client]
COMPANIES = {"companies": [{"id": 1, "name": "Acme"}]}


def test_server_errors_are_retried_with_growing_jittered_delays(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """500, 502, 504 then 200: three retries, each backoff twice the last, times the jitter."""
    api.answer(api.problem(500), api.problem(502), api.problem(504), api.ok(COMPANIES))
    assert [c.name for c in make_client(jitter=lambda: 0.5).companies()] == ["Acme"]
    assert fake_time.sleeps == [0.25, 0.5, 1.0]
    assert len(api.requests) == 4


def test_backoff_is_full_jitter_capped_at_thirty_seconds() -> None:
    """The ceiling doubles from 0.5 s to 30 s; the jitter picks anywhere below it."""
    ceilings = [backoff_delay(retry, jitter=lambda: 1.0) for retry in range(1, 10)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff_delay(3, jitter=lambda: 0.0) == 0.0
    assert backoff_delay(10_000, jitter=lambda: 0.25) == 7.5


def test_max_retries_is_respected_then_the_server_error_surfaces(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """With max_retries=2 a failing server is asked three times, then ServerError is raised."""
    api.answer(api.problem(503), api.problem(503), api.problem(500, "Still broken."))
    with pytest.raises(ServerError, match="Still broken") as raised:
        make_client(max_retries=2).companies()
    assert raised.value.status == 500
    assert len(api.requests) == 3
    assert len(fake_time.sleeps) == 2


def test_max_retries_zero_asks_once(api: FakeAPI, make_client: MakeClient) -> None:
    """max_retries=0 turns retrying off."""
    api.answer(api.problem(500))
    with pytest.raises(ServerError):
        make_client(max_retries=0).companies()
    assert len(api.requests) == 1


def test_retry_after_on_503_is_honoured(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """A database outage's Retry-After replaces the backoff."""
    api.answer(api.problem(503, headers={"Retry-After": "5"}), api.ok(COMPANIES))
    make_client().companies()
    assert fake_time.sleeps == [5.0]


@pytest.mark.parametrize("status", [400, 401, 404, 405])
def test_client_errors_are_never_retried(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime, status: int
) -> None:
    """The same wrong question gets the same answer: one request, no wait."""
    api.answer(api.problem(status))
    with pytest.raises(PhonewagonError, match="Something is wrong"):
        make_client().companies()
    assert len(api.requests) == 1
    assert fake_time.sleeps == []


def test_connection_errors_are_retried_then_raised_as_api_connection_error(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """An unreachable server is tried 1 + max_retries times, then APIConnectionError says so."""
    api.answer(*[httpx.ConnectError("connection refused")] * 4)
    with pytest.raises(APIConnectionError, match="tried 4 times") as raised:
        make_client(max_retries=3).companies()
    assert "connection refused" in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert fake_time.sleeps == [0.25, 0.5, 1.0]


def test_timeouts_and_dropped_connections_are_retried(
    api: FakeAPI, make_client: MakeClient, waits: list[Wait]
) -> None:
    """A read timeout and a server hanging up mid-answer are transient."""
    api.answer(
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
        api.ok(COMPANIES),
    )
    assert len(make_client().companies()) == 1
    assert [(w.reason, w.attempt, w.cause) for w in waits] == [
        ("retry", 1, "ReadTimeout"),
        ("retry", 2, "RemoteProtocolError"),
    ]


def test_rate_limited_request_waits_retry_after_and_does_not_spend_retries(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime, waits: list[Wait]
) -> None:
    """Three 429s with Retry-After: 7 are waited out even with max_retries=0."""
    refused = [
        api.problem(429, headers={"Retry-After": "7", "RateLimit": '"default";r=0;t=7'})
        for _ in range(3)
    ]
    api.answer(*refused, api.ok(COMPANIES))
    assert len(make_client(max_retries=0).companies()) == 1
    assert fake_time.sleeps == [7.0, 7.0, 7.0]
    assert [(w.reason, w.attempt) for w in waits] == [("rate-limit", n) for n in (1, 2, 3)]
    assert len(set(api.urls)) == 1


def test_rate_limit_wait_falls_back_to_reset_then_one_second(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """Without Retry-After a 429 waits the RateLimit reset `t`; without either, one second."""
    api.answer(
        api.problem(429, headers={"RateLimit": '"default";r=0;t=9'}),
        api.problem(429),
        api.ok(COMPANIES),
    )
    make_client().companies()
    assert fake_time.sleeps == [9.0, 1.0]


def test_rate_limit_error_only_after_the_server_refuses_for_absurdly_long(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """After RATE_LIMIT_PATIENCE waits the next 429 surfaces as RateLimitError."""
    refusals = RATE_LIMIT_PATIENCE + 1
    api.answer(*[api.problem(429, "Slow down.", headers={"Retry-After": "2"})] * refusals)
    with pytest.raises(RateLimitError, match="Slow down") as raised:
        make_client().companies()
    assert raised.value.retry_after == 2.0
    assert len(api.requests) == refusals
    assert fake_time.sleeps == [2.0] * RATE_LIMIT_PATIENCE


def test_spent_quota_paces_the_next_request_so_no_429_happens(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime, waits: list[Wait]
) -> None:
    """A page saying r=0;t=12 makes the client wait 12 s before asking for the next page."""
    api.answer(
        api.calls_page([3, 2], f"{api.base_url}/calls?page=2", remaining=0, reset=12),
        api.calls_page([1], remaining=49),
    )
    client = make_client()
    assert [call.id for call in client.calls()] == [3, 2, 1]
    assert fake_time.sleeps == [12.0]
    assert waits == [Wait(12.0, "rate-limit", 0, "the account's quota is spent")]


def test_pacing_counts_time_already_spent(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """Time spent between requests is taken off the pacing wait; none once it has passed."""
    api.answer(
        api.ok(COMPANIES, remaining=0, reset=10),
        api.ok(COMPANIES, remaining=0, reset=10),
        api.ok(COMPANIES),
    )
    client = make_client()
    client.companies()
    fake_time.now += 4
    client.companies()
    fake_time.now += 61
    client.companies()
    assert fake_time.sleeps == [6.0]


def test_no_pacing_while_quota_remains(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """r=1 means one more request may go now."""
    api.answer(api.ok(COMPANIES, remaining=1, reset=60), api.ok(COMPANIES))
    client = make_client()
    client.companies()
    client.companies()
    assert fake_time.sleeps == []


def test_on_wait_hears_of_each_wait_before_the_sleep(
    api: FakeAPI, make_client: MakeClient, fake_time: FakeTime
) -> None:
    """A progress display learns of a wait before it starts."""
    heard: list[tuple[Wait, int]] = []
    api.answer(api.problem(503), api.problem(429, headers={"Retry-After": "3"}), api.ok(COMPANIES))
    make_client(on_wait=lambda wait: heard.append((wait, len(fake_time.sleeps)))).companies()
    assert heard == [
        (Wait(0.25, "retry", 1, "HTTP 503"), 0),
        (Wait(3.0, "rate-limit", 1, "HTTP 429"), 1),
    ]


def test_retry_mid_pull_neither_duplicates_nor_skips_a_call(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """Failures on page two re-request page two; only a successful page moves on to `next`."""
    page2 = f"{api.base_url}/calls?page_size=2&end_time=5&before_id=5"
    page3 = f"{api.base_url}/calls?page_size=2&end_time=3&before_id=3"
    api.answer(
        api.calls_page([6, 5], page2),
        api.problem(503),
        httpx.ReadTimeout("timed out"),
        api.problem(429, headers={"Retry-After": "1"}),
        api.calls_page([4, 3], page3),
        api.calls_page([2, 1]),
    )
    ids = [call.id for call in make_client().calls(page_size=2)]
    assert ids == [6, 5, 4, 3, 2, 1]
    assert api.urls == [f"{api.base_url}/calls?page_size=2", page2, page2, page2, page2, page3]


def test_retries_are_counted_per_request(api: FakeAPI, make_client: MakeClient) -> None:
    """Each page has its own max_retries: a long pull survives many scattered failures."""
    api.answer(
        api.problem(500),
        api.calls_page([3], f"{api.base_url}/calls?p=2"),
        api.problem(500),
        api.calls_page([2], f"{api.base_url}/calls?p=3"),
        api.problem(500),
        api.calls_page([1]),
    )
    assert [call.id for call in make_client(max_retries=1).calls()] == [3, 2, 1]


@pytest.mark.parametrize(
    ("outcome", "retryable"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ConnectTimeout("slow"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("hung up"), True),
        (httpx.UnsupportedProtocol("ftp"), False),
        (httpx.ProxyError("refused"), False),
        (httpx.Response(429), True),
        (httpx.Response(500), True),
        (httpx.Response(502), True),
        (httpx.Response(503), True),
        (httpx.Response(504), True),
        (httpx.Response(501), False),
        (httpx.Response(400), False),
        (httpx.Response(401), False),
        (httpx.Response(404), False),
    ],
)
def test_is_retryable(outcome: httpx.Response | httpx.TransportError, retryable: bool) -> None:
    """The one predicate that decides what is worth asking again."""
    assert is_retryable(outcome) is retryable


def test_budget_gives_up_on_what_is_not_retryable() -> None:
    """A 404 gets no wait at all, whatever the budget."""
    budget = RetryBudget(max_retries=6, jitter=lambda: 1.0)
    assert budget.next_wait(httpx.Response(404)) is None


@pytest.mark.parametrize(
    ("field", "quota"),
    [
        ('"default";r=49;t=60', Quota(49, 60.0)),
        ('"default";r=0;t=12', Quota(0, 12.0)),
        ('"default"; r=0 ; t=3', Quota(0, 3.0)),
        ('"burst";r=5;t=1, "daily";r=0;t=3600', Quota(0, 3600.0)),
        ('"default";r=7', Quota(7, 0.0)),
        ('"default";t=12', None),
        ('"default";r=x;t=12', None),
        ("", None),
        (None, None),
    ],
)
def test_parse_ratelimit(field: str | None, quota: Quota | None) -> None:
    """The tightest policy of a RateLimit field; unreadable ones are ignored."""
    assert parse_ratelimit(field) == quota


@pytest.mark.parametrize(
    ("field", "seconds"),
    [
        ("12", 12.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("-5", None),
        ("inf", None),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_retry_after(field: str, seconds: float | None) -> None:
    """Retry-After in seconds or as an HTTP date; nonsense is ignored."""
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    assert parse_retry_after(httpx.Headers({"Retry-After": field}), now=now) == seconds
