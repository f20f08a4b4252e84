"""The one fake Phonewagon API, behind `httpx.MockTransport`, and calls and answers to fill it with.

In memory it pages like the real server: newest first by (start_time, id), `next` links that keep
every filter and resume with `end_time` + `before_id`, both time bounds inclusive; with
`updated_since`, the change feed: oldest change first by (updated_at, id), `next` links that
resume with `updated_since` + `after_id`. A test may queue answers ahead of it (`answer`), and a
scripted one answers nothing but what was queued.
"""

from __future__ import annotations

import base64
import functools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import httpx

from phonewagon import CALL_FIELDS, Call, Client

BASE_URL = "https://api.test"
CLIENT_ID = "pwid_test"
CLIENT_SECRET = "pwsk_test"
NOW_MS = 1_795_000_000_000  # 2026-11-18T11:06:40Z: the newest call of `make_calls`
DAY_MS = 86_400_000
LATER_MS = 253_402_300_799_999  # the fake's "now": after every call a test adds
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z: when the calls of `calls_page` happen

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Interrupted(Exception):
    """Raised by the fake transport to stop a pull half-way (not an error the client retries)."""


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


def make_call(id: int, start_time: int, **fields: Any) -> dict[str, Any]:
    """A call as the API renders it: every field, `""` where unknown; last changed as it started
    unless `updated_at` says otherwise."""
    call: dict[str, Any] = dict.fromkeys(CALL_FIELDS, "")
    call.update(
        account_id=1,
        campaign_id="s1",
        campaign_name="Search",
        company_id=1,
        direction="inbound",
        duration=60,
        from_number="+15555550100",
        id=id,
        is_first_time_caller=False,
        sid=f"CA{id:032x}",
        start_time=start_time,
        status="completed",
        to_number="+18445551234",
        updated_at=start_time,
        user_source="Google Ads",
    )
    call.update(fields)
    return call


def make_calls(
    count: int, *, newest: int = NOW_MS, spacing_ms: int = 3_600_000
) -> list[dict[str, Any]]:
    """`count` calls one `spacing_ms` apart, the newest at `newest`; ids grow with time."""
    return [make_call(i + 1, newest - (count - 1 - i) * spacing_ms) for i in range(count)]


def as_calls(records: Iterable[dict[str, Any]]) -> list[Call]:
    return [Call.from_dict(record) for record in records]


class FakeAPI:
    """The API in memory, unless `scripted`; answers queued with `answer` come first."""

    base_url = BASE_URL

    def __init__(self, calls: Iterable[dict[str, Any]] = (), *, scripted: bool = False) -> None:
        self.calls: list[dict[str, Any]] = list(calls)
        self.scripted = scripted
        self.companies = [{"id": 1, "name": "Acme Plumbing"}, {"id": 2, "name": "Zoë's Bakery"}]
        self.campaigns = [
            {"id": "s1", "name": "Search", "company_id": 1},
            {"id": "s2", "name": "Facebook", "company_id": 1},
            {"id": "s9", "name": "Radio", "company_id": 2},
        ]
        self.default_page_size = 1000
        self.requests: list[httpx.Request] = []
        self.time = FakeTime()
        self._answers: deque[Answer] = deque()
        # Tests set these to make the server misbehave:
        self.interrupt_at_request: int | None = None  # raise Interrupted on this request (1-based)
        self.rate_limit_requests: set[int] = set()  # answer 429 (Retry-After: 7) to these
        # Answers a request instead of the API when it returns a response:
        self.failure: Callable[[httpx.Request], httpx.Response | None] | None = None

    # --- what tests use -------------------------------------------------------------------------

    def answer(self, *answers: Answer) -> None:
        """Queue answers for the next requests; an exception is raised, a callable is asked."""
        self._answers.extend(answers)

    def client(self, **overrides: Any) -> Client:
        """A real Client on this fake and its time, with jitter fixed at 0.5; keywords override."""
        credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "base_url": BASE_URL}
        return Client(**(credentials | self._seams() | overrides))

    def make_client(self) -> Callable[..., Client]:
        """What `cli.main(make_client=...)` needs: the real Client, on this fake, never sleeping."""
        return functools.partial(Client, **self._seams())

    @property
    def urls(self) -> list[str]:
        return [str(request.url) for request in self.requests]

    def calls_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == "/calls"]

    def update_call(self, call_id: int, **fields: Any) -> dict[str, Any]:
        """Change a call as the server does: its `updated_at` moves past every change so far
        (unless `fields` sets it), so the call goes to the end of the change feed."""
        call = next(c for c in self.calls if c["id"] == call_id)
        call.update({"updated_at": self.latest_change() + 1} | fields)
        return call

    def latest_change(self) -> int:
        return max((call["updated_at"] for call in self.calls), default=0)

    # --- answers shaped like the server's -------------------------------------------------------

    @staticmethod
    def ok(body: dict[str, Any], *, remaining: int = 49, reset: int = 60) -> httpx.Response:
        """A success as the server sends it, with its rate-limit headers."""
        return httpx.Response(200, json=body, headers=FakeAPI.rate_limit_headers(remaining, reset))

    @staticmethod
    def problem(
        status: int,
        detail: str = "Something is wrong.",
        *,
        title: str = "Problem",
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """An `application/problem+json` answer shaped like the server's."""
        body: dict[str, Any] = {
            "type": f"{BASE_URL}/docs#problem-{status}",
            "title": title,
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
    def calls_page(
        ids: list[int], next_url: str | None = None, *, remaining: int = 49, reset: int = 60
    ) -> httpx.Response:
        """A page of calls with these ids, newest first, and a `next` link if given."""
        body: dict[str, Any] = {"calls": [make_call(i, T0 + i) for i in ids]}
        if next_url is not None:
            body["next"] = next_url
        return FakeAPI.ok(body, remaining=remaining, reset=reset)

    # --- the transport's side -------------------------------------------------------------------

    def _seams(self) -> dict[str, Any]:
        return {
            "transport": httpx.MockTransport(self),
            "sleep": self.time.sleep,
            "clock": self.time.clock,
            "jitter": lambda: 0.5,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.scripted or self._answers:
            return self._queued(request)
        return self._in_memory(request)

    def _queued(self, request: httpx.Request) -> httpx.Response:
        if not self._answers:
            raise AssertionError(f"no answer queued for {request.url}")
        answer = self._answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def _in_memory(self, request: httpx.Request) -> httpx.Response:
        number = len(self.requests)
        if number == self.interrupt_at_request:
            raise Interrupted(f"interrupted at request {number}")
        if self.failure is not None and (response := self.failure(request)) is not None:
            return response
        if request.headers.get("authorization") != _basic(CLIENT_ID, CLIENT_SECRET):
            detail = "Send your client id and secret."
            headers = {"WWW-Authenticate": 'Basic realm="phonewagon"'}
            return self.problem(401, detail, title="Unauthenticated", headers=headers)
        if number in self.rate_limit_requests:
            detail = "Over 50 requests a minute."
            return self.problem(
                429, detail, title="Too Many Requests", headers={"Retry-After": "7"}
            )
        params = dict(request.url.params)
        if request.url.path == "/companies":
            return httpx.Response(200, json={"companies": self.companies})
        if request.url.path == "/campaigns":
            return self._campaigns(params)
        if request.url.path == "/calls":
            return self._calls(params)
        return self._not_found(f"There is no resource at {request.url.path}.")

    def _campaigns(self, params: dict[str, str]) -> httpx.Response:
        campaigns = self.campaigns
        if "company_id" in params:
            company_id = int(params["company_id"])
            if company_id not in {c["id"] for c in self.companies}:
                return self._not_found(f"There is no company {company_id}.")
            campaigns = [c for c in campaigns if c["company_id"] == company_id]
        return httpx.Response(
            200, json={"campaigns": [{"id": c["id"], "name": c["name"]} for c in campaigns]}
        )

    def _calls(self, params: dict[str, str]) -> httpx.Response:
        feed = "updated_since" in params
        known = {"company_id", "campaign_id", "start_time", "end_time", "page_size"}
        known |= {"updated_since", "after_id"} if feed else {"before_id"}
        if unknown := sorted(set(params) - known):
            errors = [{"name": n, "in": "query", "detail": "unknown parameter"} for n in unknown]
            return self._invalid("Check the query.", errors)
        start, end = int(params.get("start_time", 0)), int(params.get("end_time", LATER_MS))
        if start > end:
            errors = [{"name": "start_time", "in": "query", "detail": "must not be after end_time"}]
            return self._invalid("Check start_time.", errors)
        if "company_id" in params and int(params["company_id"]) not in {
            c["id"] for c in self.companies
        }:
            return self._not_found(f"There is no company {params['company_id']}.")
        page_size = min(int(params.get("page_size", self.default_page_size)), 1000)
        chosen = [
            call
            for call in self.calls
            if start <= call["start_time"] <= end
            and str(call["company_id"]) == params.get("company_id", str(call["company_id"]))
            and call["campaign_id"] == params.get("campaign_id", call["campaign_id"])
        ]
        matching = (
            self._changes(chosen, params) if feed else self._newest_first(chosen, params, end)
        )
        page = matching[:page_size]
        body: dict[str, Any] = {"calls": page}
        if len(matching) > page_size:
            last = page[-1]
            if feed:  # the filters as given, then where the page ended
                resume = {k: v for k, v in params.items() if k not in ("updated_since", "after_id")}
                resume |= {"page_size": str(page_size)}
                resume |= {"updated_since": str(last["updated_at"]), "after_id": str(last["id"])}
            else:
                resume = {k: v for k, v in params.items() if k not in ("end_time", "before_id")}
                resume |= {"page_size": str(page_size), "start_time": str(start)}
                resume |= {"end_time": str(last["start_time"]), "before_id": str(last["id"])}
            body["next"] = f"{BASE_URL}/calls?{urlencode(resume)}"
        return httpx.Response(200, json=body)

    @staticmethod
    def _newest_first(
        calls: list[dict[str, Any]], params: dict[str, str], end: int
    ) -> list[dict[str, Any]]:
        before = (end, int(params["before_id"])) if "before_id" in params else (end + 1, 0)
        return sorted(
            (call for call in calls if (call["start_time"], call["id"]) < before),
            key=lambda call: (call["start_time"], call["id"]),
            reverse=True,
        )

    @staticmethod
    def _changes(calls: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
        """The feed: changed at or after `updated_since`, or after (`updated_since`, `after_id`)."""
        after = (int(params["updated_since"]), int(params.get("after_id", -1)))
        return sorted(
            (call for call in calls if (call["updated_at"], call["id"]) > after),
            key=lambda call: (call["updated_at"], call["id"]),
        )

    def _not_found(self, detail: str) -> httpx.Response:
        return self.problem(404, detail, title="Not Found")

    def _invalid(self, detail: str, errors: list[dict[str, str]]) -> httpx.Response:
        return self.problem(400, detail, title="Invalid Query Parameters", errors=errors)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
