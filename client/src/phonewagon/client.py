"""`Client`: companies, campaigns, every call of an account and the calls changed since a time,
fetched politely."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypedDict, TypeVar, Unpack

import httpx

from phonewagon._version import __version__
from phonewagon.errors import (
    APIConnectionError,
    ConfigurationError,
    error_for_response,
    unexpected_response,
)
from phonewagon.models import Call, Campaign, Company, Page
from phonewagon.retry import Pacer, RetryBudget, Wait
from phonewagon.times import to_epoch_ms

DEFAULT_BASE_URL: Final = "https://dev.phonewagon.com"
USER_AGENT: Final = f"phonewagon-python/{__version__}"

Time = int | datetime
Params = dict[str, str | int]


class CallFilters(TypedDict, total=False):
    """What `calls()`, `pages()`, `changes()` and `change_pages()` take; each may be left out (or
    None). Times are inclusive."""

    company_id: int | None
    campaign_id: str | None
    start_time: Time | None
    end_time: Time | None
    page_size: int | None


Record = TypeVar("Record")
logger = logging.getLogger("phonewagon")


class Client:
    """A Phonewagon account, read through its API.

    Credentials and base URL fall back to `PHONEWAGON_CLIENT_ID`, `PHONEWAGON_CLIENT_SECRET` and
    `PHONEWAGON_BASE_URL`. Requests are paced by the server's `RateLimit` header, sent again after a
    429 or a transient failure, and every wait goes through `sleep` (after `on_wait` hears of it).
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 6,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        on_wait: Callable[[Wait], None] | None = None,
        user_agent: str | None = None,
    ) -> None:
        client_id = client_id or os.environ.get("PHONEWAGON_CLIENT_ID")
        client_secret = client_secret or os.environ.get("PHONEWAGON_CLIENT_SECRET")
        missing = [
            f"{name}= or {variable}"
            for name, variable, value in [
                ("client_id", "PHONEWAGON_CLIENT_ID", client_id),
                ("client_secret", "PHONEWAGON_CLIENT_SECRET", client_secret),
            ]
            if not value
        ]
        if missing or client_id is None or client_secret is None:
            raise ConfigurationError(
                f"Pass {' and '.join(missing)}: the client id and secret under "
                "Account Settings > Credentials."
            )
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {max_retries}")
        self.client_id = client_id
        self.base_url = _checked_base_url(
            base_url or os.environ.get("PHONEWAGON_BASE_URL") or DEFAULT_BASE_URL
        )
        self.max_retries = max_retries
        self._sleep = sleep
        self._jitter = jitter
        self._on_wait = on_wait
        self._pacer = Pacer(clock)
        self._http = httpx.Client(
            auth=httpx.BasicAuth(client_id, client_secret),
            headers={
                "Accept": "application/json",
                "User-Agent": f"{user_agent} {USER_AGENT}" if user_agent else USER_AGENT,
            },
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"Client(client_id={self.client_id!r}, base_url={self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def companies(self) -> list[Company]:
        response = self._get(f"{self.base_url}/companies")
        body = _json_with_list(response, "companies")
        return _records(response, body["companies"], Company.from_dict)

    def campaigns(self, company_id: int | None = None) -> list[Campaign]:
        """The campaigns of one company, or of the whole account."""
        params: Params = {}
        if company_id is not None:
            params["company_id"] = _integer(company_id, "company_id")
        response = self._get(f"{self.base_url}/campaigns", params)
        body = _json_with_list(response, "campaigns")
        return _records(response, body["campaigns"], Campaign.from_dict)

    def calls(self, **filters: Unpack[CallFilters]) -> Iterator[Call]:
        """Every matching call, newest first, fetched one page at a time as you iterate."""
        return (call for page in self.pages(**filters) for call in page.calls)

    def pages(self, **filters: Unpack[CallFilters]) -> Iterator[Page]:
        """The pages of `calls()`, following each `next` link until there is none.

        Arguments are checked now; requests are made as you iterate. Both times are inclusive.
        """
        return self._follow_pages(f"{self.base_url}/calls", _call_params(filters))

    def changes(
        self, updated_since: Time, *, after_id: int | None = None, **filters: Unpack[CallFilters]
    ) -> Iterator[Call]:
        """The change feed: every matching call whose `updated_at` is at or after
        `updated_since`, oldest change first, fetched one page at a time as you iterate.

        Followed to its end, it has given every call changed since then at least once, none
        skipped even while the server writes; a call changed again meanwhile comes again, later,
        in its newer version, so keep calls by `sid`. To poll, keep the last call you received
        and ask again from its `updated_at` with `after_id=` its `id`: only later changes come.
        `start_time` and `end_time` still filter on when calls started.
        """
        pages = self.change_pages(updated_since, after_id=after_id, **filters)
        return (call for page in pages for call in page.calls)

    def change_pages(
        self, updated_since: Time, *, after_id: int | None = None, **filters: Unpack[CallFilters]
    ) -> Iterator[Page]:
        """The pages of `changes()`, following each `next` link until there is none."""
        params: Params = {"updated_since": epoch_ms(updated_since, "updated_since")}
        if after_id is not None:
            params["after_id"] = _integer(after_id, "after_id")
        params |= _call_params(filters)
        return self._follow_pages(f"{self.base_url}/calls", params)

    def _follow_pages(self, url: str, params: Params | None) -> Iterator[Page]:
        while True:
            page = self._read_page(self._get(url, params))
            yield page
            if page.next_url is None:
                return
            url, params = page.next_url, None  # the link carries every filter itself

    def _read_page(self, response: httpx.Response) -> Page:
        body = _json_with_list(response, "calls")
        calls = _records(response, body["calls"], Call.from_dict)
        url = str(response.request.url)
        link = body.get("next")
        if link is None or link == "":
            return Page(calls=calls, next_url=None, url=url)
        if not isinstance(link, str):
            raise unexpected_response(response, f"a next link that is not a URL: {link!r}")
        next_url = response.request.url.join(link)
        if next_url == response.request.url:
            raise unexpected_response(response, "a next link to itself", hint="a server bug")
        here = response.request.url
        if (next_url.host, next_url.port) != (here.host, here.port):
            raise unexpected_response(
                response,
                f"a next link to another server, {next_url.host}, that would receive your"
                " credentials",
                hint="the server's PHONEWAGON_PUBLIC_URL should match your base_url",
            )
        if here.scheme == "https" and next_url.scheme != "https":
            raise unexpected_response(
                response,
                f"a next link {next_url} that would send your credentials unencrypted",
                hint="the server's PHONEWAGON_PUBLIC_URL should start with https://",
            )
        return Page(calls=calls, next_url=str(next_url), url=url)

    def _get(self, url: str, params: Params | None = None) -> httpx.Response:
        """A successful answer to GET `url`, after whatever waits and retries it takes."""
        request = self._http.build_request("GET", url, params=params)
        budget = RetryBudget(max_retries=self.max_retries, jitter=self._jitter)
        while True:
            if (delay := self._pacer.delay()) > 0:
                self._wait(Wait(delay, "rate-limit", 0, "the account's quota is spent"))
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                wait = budget.next_wait(exc)
                if wait is None:
                    tries = "once" if budget.retries == 0 else f"{budget.retries + 1} times"
                    raise APIConnectionError(
                        f"Could not reach {request.url} ({type(exc).__name__}: {exc}); "
                        f"tried {tries}.",
                        url=str(request.url),
                    ) from exc
                self._wait(wait)
                continue
            _unlink_stream(response)
            self._pacer.observe(response.headers)
            if response.is_success:
                return response
            wait = budget.next_wait(response)
            if wait is None:
                raise error_for_response(response)
            self._wait(wait)

    def _wait(self, wait: Wait) -> None:
        logger.info(
            "waiting %.1f s (%s, %s, attempt %d)",
            wait.seconds,
            wait.reason,
            wait.cause,
            wait.attempt,
        )
        if self._on_wait is not None:
            self._on_wait(wait)
        self._sleep(wait.seconds)


def _call_params(filters: CallFilters) -> Params:
    """The query of `filters`, each checked: a wrong one is refused before any request."""
    unknown = sorted(set(filters) - set(CallFilters.__annotations__))
    if unknown:  # a typo such as compnay_id must not quietly fetch every call
        raise TypeError(
            f"unknown filter {unknown[0]!r}: use {', '.join(CallFilters.__annotations__)}"
        )
    company_id, campaign_id = filters.get("company_id"), filters.get("campaign_id")
    start_time, end_time = filters.get("start_time"), filters.get("end_time")
    page_size = filters.get("page_size")
    params: Params = {}
    if company_id is not None:
        params["company_id"] = _integer(company_id, "company_id")
    if campaign_id is not None:
        if not isinstance(campaign_id, str):
            raise TypeError(f"campaign_id must be a string such as 's2212', not {campaign_id!r}")
        params["campaign_id"] = campaign_id
    if start_time is not None:
        params["start_time"] = epoch_ms(start_time, "start_time")
    if end_time is not None:
        params["end_time"] = epoch_ms(end_time, "end_time")
    if page_size is not None:
        params["page_size"] = _integer(page_size, "page_size")
    return params


def _unlink_stream(response: httpx.Response) -> None:
    """Let `response`, read and closed, be freed as soon as it is dropped.

    httpx (0.28) links a response and its stream both ways, so only the garbage collector frees
    them, and each response keeps its body (a page is about a megabyte) and its decompressor
    until then: several pages' worth at a time, ~8 MB. The body was read: the stream is done.
    """
    response.stream = httpx.ByteStream(b"")


def _json_with_list(response: httpx.Response, key: str) -> dict[str, Any]:
    """The answer's JSON object, which must hold a `key` list, as the API documents."""
    try:
        body = response.json()
    except ValueError:
        raise unexpected_response(response, "a body that is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise unexpected_response(response, f"JSON without a {key!r} list")
    return body


def _records(
    response: httpx.Response, items: list[Any], parse: Callable[[Mapping[str, Any]], Record]
) -> list[Record]:
    try:
        return [parse(item) for item in items]
    except (AttributeError, TypeError, ValueError) as exc:
        raise unexpected_response(response, f"a record this client cannot read ({exc})") from exc


def epoch_ms(value: Time, name: str = "time") -> int:
    """Epoch milliseconds from an int (taken as is) or a timezone-aware datetime."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(
                f"{name}={value!r} has no timezone; add one, "
                "e.g. datetime(2024, 5, 1, tzinfo=timezone.utc)"
            )
        return to_epoch_ms(value)
    return _integer(value, name, unit="epoch milliseconds or a timezone-aware datetime")


def _integer(value: object, name: str, *, unit: str = "an integer") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {unit}, not {value!r}")
    return value


def _checked_base_url(url: str) -> str:
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"base_url {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"base_url {url!r} must be an http(s) address, such as {DEFAULT_BASE_URL}"
        )
    return str(parsed).rstrip("/")
