"""A scripted API behind `httpx.MockTransport` and a clock that moves only when slept on.

Tests reach everything through fixtures (`api.ok(...)`, `api.base_url`), never `from conftest
import`: with several conftest.py files in one run, that name means whichever was loaded last.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from phonewagon import CALL_FIELDS, Client, Wait

BASE_URL = "https://api.test"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z: when the scripted calls happen
Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """`sleep` records the wait and moves `clock` forward by it: tests never really wait."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class FakeAPI:
    """Answers each request with the next queued answer, raising it if it is an exception.

    It also builds answers shaped like the real server's (`ok`, `problem`, `calls_page`).
    """

    base_url = BASE_URL

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: deque[Answer] = deque()

    def answer(self, *answers: Answer) -> None:
        self._answers.extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._answers:
            raise AssertionError(f"no answer queued for {request.url}")
        answer = self._answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    @property
    def urls(self) -> list[str]:
        return [str(request.url) for request in self.requests]

    @staticmethod
    def ok(body: dict[str, Any], *, remaining: int = 49, reset: int = 60) -> httpx.Response:
        """A success as the server sends it, with its rate-limit headers."""
        return httpx.Response(200, json=body, headers=FakeAPI.rate_limit_headers(remaining, reset))

    @staticmethod
    def problem(
        status: int,
        detail: str = "Something is wrong.",
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """An `application/problem+json` answer shaped like the server's."""
        body: dict[str, Any] = {
            "type": f"{BASE_URL}/docs#problem-{status}",
            "title": "Problem",
            "status": status,
            "detail": detail,
        }
        if errors is not None:
            body["errors"] = errors
        return httpx.Response(
            status,
            json=body,
            headers={"Content-Type": "application/problem+json", **(headers or {})},
        )

    @staticmethod
    def rate_limit_headers(remaining: int, reset: int) -> dict[str, str]:
        return {
            "RateLimit-Policy": '"default";q=50;w=60',
            "RateLimit": f'"default";r={remaining};t={reset}',
        }

    @staticmethod
    def call_json(call_id: int, start_time: int = T0, **fields: Any) -> dict[str, Any]:
        """A call with every field the server renders."""
        call: dict[str, Any] = dict.fromkeys(CALL_FIELDS, "")
        call.update(
            account_id=1,
            company_id=1001,
            duration=30,
            id=call_id,
            is_first_time_caller=False,
            start_time=start_time,
            sid=f"CA{call_id:032x}",
        )
        call.update(fields)
        return call

    @staticmethod
    def calls_page(
        ids: list[int], next_url: str | None = None, *, remaining: int = 49, reset: int = 60
    ) -> httpx.Response:
        """A page of calls with these ids, newest first, and a `next` link if given."""
        body: dict[str, Any] = {"calls": [FakeAPI.call_json(i, T0 + i) for i in ids]}
        if next_url is not None:
            body["next"] = next_url
        return FakeAPI.ok(body, remaining=remaining, reset=reset)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def waits() -> list[Wait]:
    """Every `Wait` announced to `on_wait` by clients made with `make_client`."""
    return []


@pytest.fixture
def make_client(
    api: FakeAPI, fake_time: FakeTime, waits: list[Wait]
) -> Iterator[Callable[..., Client]]:
    """Clients talking to `api` on `fake_time`, with jitter fixed at 0.5; keywords override."""
    made: list[Client] = []

    def make(**overrides: Any) -> Client:
        options: dict[str, Any] = {
            "client_id": "pwc_test",
            "client_secret": "pws_secret",
            "base_url": BASE_URL,
            "transport": httpx.MockTransport(api),
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
            "jitter": lambda: 0.5,
            "on_wait": waits.append,
        }
        options.update(overrides)
        client = Client(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
