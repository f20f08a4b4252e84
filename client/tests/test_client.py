"""The Client: what it asks the API, how it pages, and how it is configured."""

from __future__ import annotations

import base64
import gc
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

import phonewagon
from fakes import T0, FakeAPI, make_call
from phonewagon import (
    DEFAULT_BASE_URL,
    Call,
    Campaign,
    Client,
    Company,
    ConfigurationError,
    Page,
    UnexpectedResponseError,
    Wait,
)

MakeClient = Callable[..., Client]
ENV = ("PHONEWAGON_CLIENT_ID", "PHONEWAGON_CLIENT_SECRET", "PHONEWAGON_BASE_URL")


@pytest.fixture(autouse=True)
def no_phonewagon_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_public_surface_is_all_importable() -> None:
    """Everything in `__all__` exists, and the surface stays small enough to read at once."""
    for name in phonewagon.__all__:
        assert hasattr(phonewagon, name), name
    assert len(phonewagon.__all__) <= 25


def test_companies_are_typed_records(api: FakeAPI, make_client: MakeClient) -> None:
    """`companies()` asks GET /companies and answers Company records in the server's order."""
    api.answer(
        api.ok({"companies": [{"id": 1001, "name": "Phonewagon"}, {"id": 9812, "name": "J"}]})
    )
    assert make_client().companies() == [Company(1001, "Phonewagon"), Company(9812, "J")]
    assert api.urls == [f"{api.base_url}/companies"]


def test_campaigns_of_one_company_send_company_id(api: FakeAPI, make_client: MakeClient) -> None:
    """`campaigns(company_id)` filters by company."""
    api.answer(api.ok({"campaigns": [{"id": "s2212", "name": "Facebook"}]}))
    assert make_client().campaigns(1001) == [Campaign("s2212", "Facebook")]
    assert api.urls == [f"{api.base_url}/campaigns?company_id=1001"]


def test_campaigns_of_the_whole_account_send_no_parameter(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """Without a company, every campaign of the account is asked for."""
    api.answer(api.ok({"campaigns": []}))
    assert make_client().campaigns() == []
    assert api.urls == [f"{api.base_url}/campaigns"]


def test_calls_follow_next_links_exactly_and_stop_when_absent(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """Each `next` is requested verbatim; a page without one ends the pull."""
    page2 = f"{api.base_url}/calls?page_size=2&start_time=0&end_time=1700000000005&before_id=5"
    page3 = f"{api.base_url}/calls?page_size=2&start_time=0&end_time=1700000000003&before_id=3"
    api.answer(api.calls_page([6, 5], page2), api.calls_page([4, 3], page3), api.calls_page([2, 1]))
    calls = list(make_client().calls(page_size=2))
    assert [call.id for call in calls] == [6, 5, 4, 3, 2, 1]
    assert all(isinstance(call, Call) for call in calls)
    assert api.urls == [f"{api.base_url}/calls?page_size=2", page2, page3]


def test_seed_style_next_link_is_followed_as_written(api: FakeAPI, make_client: MakeClient) -> None:
    """The seed's own link shape, trailing `&` included, is requested as is."""
    seed_next = f"{api.base_url}/calls?page_size=1&start_time=0&end_time=1575322415999&"
    api.answer(api.calls_page([2], seed_next), api.calls_page([1]))
    assert [call.id for call in make_client().calls()] == [2, 1]
    assert api.urls[1] == seed_next


def test_calls_are_fetched_lazily_one_page_at_a_time(api: FakeAPI, make_client: MakeClient) -> None:
    """Nothing is asked until iteration starts, and the next page only when it is reached."""
    api.answer(api.calls_page([4, 3], f"{api.base_url}/calls?p=2"), api.calls_page([2, 1]))
    calls = make_client().calls()
    assert api.requests == []
    assert next(calls).id == 4
    assert next(calls).id == 3
    assert len(api.requests) == 1
    assert next(calls).id == 2
    assert len(api.requests) == 2


def test_each_answer_is_freed_as_soon_as_its_page_is_read(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """No wait for the garbage collector: a body and its decompressor live as long as a read."""
    answers = [api.calls_page([4, 3], f"{api.base_url}/calls?p=2"), api.calls_page([2, 1])]
    alive = [weakref.ref(answer) for answer in answers]
    api.answer(*answers)
    del answers
    pages = make_client().pages()
    gc.disable()
    try:
        assert [call.id for call in next(pages).calls] == [4, 3]
        assert [ref() is None for ref in alive] == [True, False]
        assert [call.id for call in next(pages).calls] == [2, 1]
        assert [ref() is None for ref in alive] == [True, True]
    finally:
        gc.enable()


def test_pages_carry_their_calls_url_and_next_url(api: FakeAPI, make_client: MakeClient) -> None:
    """`pages()` yields each page with the URL fetched and the link to the next one."""
    page2 = f"{api.base_url}/calls?campaign_id=s1&before_id=2"
    api.answer(api.calls_page([3, 2], page2), api.calls_page([1]))
    pages = list(make_client().pages(campaign_id="s1"))
    assert [type(page) for page in pages] == [Page, Page]
    assert [[call.id for call in page.calls] for page in pages] == [[3, 2], [1]]
    assert [page.url for page in pages] == [f"{api.base_url}/calls?campaign_id=s1", page2]
    assert [page.next_url for page in pages] == [page2, None]


def test_empty_account_is_one_empty_page(api: FakeAPI, make_client: MakeClient) -> None:
    """No calls: one request, nothing yielded by `calls()`."""
    api.answer(api.calls_page([]))
    assert list(make_client().calls()) == []
    assert len(api.requests) == 1


def test_every_filter_is_sent_with_datetimes_as_epoch_ms(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """Filters go in the query; aware datetimes become epoch milliseconds, ints pass as they are."""
    api.answer(api.calls_page([]))
    start = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    list(
        make_client().calls(
            company_id=1001, campaign_id="s 22/12", start_time=start, end_time=1714600000000
        )
    )
    params = api.requests[0].url.params
    assert dict(params) == {
        "company_id": "1001",
        "campaign_id": "s 22/12",
        "start_time": "1714564800123",
        "end_time": "1714600000000",
    }


def test_datetime_in_another_timezone_is_the_same_instant(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """14:00 at UTC+2 is 12:00 UTC."""
    api.answer(api.calls_page([]))
    paris_summer = timezone(timedelta(hours=2))
    list(make_client().calls(end_time=datetime(2024, 5, 1, 14, tzinfo=paris_summer)))
    assert api.requests[0].url.params["end_time"] == "1714564800000"


def test_naive_datetime_is_refused_before_any_request(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """A datetime without a timezone is ambiguous: ValueError, asking for a timezone, no request."""
    client = make_client()
    with pytest.raises(ValueError, match=r"start_time=.* has no timezone; add one"):
        client.calls(start_time=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="end_time"):
        client.pages(end_time=datetime(2024, 5, 1))
    assert api.requests == []


@pytest.mark.parametrize(
    "arguments",
    [
        {"start_time": True},
        {"end_time": "2024-05-01"},
        {"start_time": 1.5e12},
        {"company_id": False},
        {"company_id": "1001"},
        {"page_size": True},
        {"campaign_id": 2212},
    ],
)
def test_wrong_argument_types_are_refused(
    api: FakeAPI, make_client: MakeClient, arguments: dict[str, object]
) -> None:
    """Booleans are not numbers here, and strings are not times: TypeError, no request."""
    with pytest.raises(TypeError):
        make_client().calls(**arguments)  # type: ignore[arg-type]
    assert api.requests == []


def test_requests_send_basic_auth_accept_and_user_agent(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """Basic auth with the id and secret, JSON accepted, and a User-Agent naming this library."""
    api.answer(api.ok({"companies": []}))
    make_client(client_id="pwc_id", client_secret="pws_secret").companies()
    headers = api.requests[0].headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"pwc_id:pws_secret").decode()
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == f"phonewagon-python/{phonewagon.__version__}"


def test_caller_user_agent_comes_first(api: FakeAPI, make_client: MakeClient) -> None:
    """A tool built on the library names itself before the library."""
    api.answer(api.ok({"companies": []}))
    make_client(user_agent="acme-etl/2.1").companies()
    assert api.requests[0].headers["User-Agent"] == (
        f"acme-etl/2.1 phonewagon-python/{phonewagon.__version__}"
    )


def test_credentials_and_base_url_come_from_the_environment(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PHONEWAGON_CLIENT_ID, PHONEWAGON_CLIENT_SECRET and PHONEWAGON_BASE_URL fill the gaps."""
    monkeypatch.setenv("PHONEWAGON_CLIENT_ID", "pwc_env")
    monkeypatch.setenv("PHONEWAGON_CLIENT_SECRET", "pws_env")
    monkeypatch.setenv("PHONEWAGON_BASE_URL", "http://localhost:8000/")
    api.answer(api.ok({"companies": []}))
    with Client(transport=httpx.MockTransport(api)) as client:
        client.companies()
    assert client.client_id == "pwc_env"
    assert client.base_url == "http://localhost:8000"
    assert api.urls == ["http://localhost:8000/companies"]
    assert api.requests[0].headers["Authorization"] == (
        "Basic " + base64.b64encode(b"pwc_env:pws_env").decode()
    )


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit argument is used even when the variable is set."""
    monkeypatch.setenv("PHONEWAGON_CLIENT_ID", "pwc_env")
    monkeypatch.setenv("PHONEWAGON_BASE_URL", "http://localhost:8000")
    with Client("pwc_arg", "pws_arg", "https://example.test") as client:
        assert (client.client_id, client.base_url) == ("pwc_arg", "https://example.test")


def test_default_base_url_is_the_documented_one() -> None:
    """Without a base URL the client talks to the address in the API documentation."""
    with Client("pwc_id", "pws_secret") as client:
        assert client.base_url == DEFAULT_BASE_URL == "https://dev.phonewagon.com"


@pytest.mark.parametrize(
    ("client_id", "client_secret", "named"),
    [
        (
            None,
            None,
            "client_id= or PHONEWAGON_CLIENT_ID and client_secret= or PHONEWAGON_CLIENT_SECRET",
        ),
        ("pwc_id", None, "Pass client_secret= or PHONEWAGON_CLIENT_SECRET:"),
        (None, "pws_secret", "Pass client_id= or PHONEWAGON_CLIENT_ID:"),
        ("", "", "PHONEWAGON_CLIENT_ID and client_secret= or PHONEWAGON_CLIENT_SECRET"),
    ],
)
def test_missing_credentials_name_the_environment_variables(
    client_id: str | None, client_secret: str | None, named: str
) -> None:
    """ConfigurationError says which argument or variable to set."""
    with pytest.raises(ConfigurationError) as raised:
        Client(client_id, client_secret)
    assert named in str(raised.value)


@pytest.mark.parametrize("base_url", ["dev.phonewagon.com", "ftp://dev.phonewagon.com", "https://"])
def test_unusable_base_url_is_a_configuration_error(base_url: str) -> None:
    """A base URL must be an http(s) address with a host."""
    with pytest.raises(ConfigurationError, match="base_url"):
        Client("pwc_id", "pws_secret", base_url)


def test_negative_max_retries_is_refused() -> None:
    """max_retries counts retries: it cannot be negative."""
    with pytest.raises(ValueError, match="max_retries"):
        Client("pwc_id", "pws_secret", max_retries=-1)


def test_repr_never_shows_the_secret(api: FakeAPI, make_client: MakeClient) -> None:
    """The secret stays out of repr, str and the client's own attributes."""
    client = make_client(client_id="pwc_visible", client_secret="pws_TOP_SECRET")
    assert repr(client) == f"Client(client_id='pwc_visible', base_url='{api.base_url}')"
    assert "TOP_SECRET" not in repr(client) + str(client) + repr(vars(client))


def test_closing_the_client_closes_its_connections(api: FakeAPI) -> None:
    """Leaving the `with` block closes the client; it cannot be used afterwards."""
    with Client("pwc_id", "pws_secret", api.base_url, transport=httpx.MockTransport(api)) as client:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        client.companies()


def test_success_without_calls_is_an_unexpected_response(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """JSON without the `calls` list is reported as such, not as a KeyError."""
    api.answer(api.ok({"data": []}))
    with pytest.raises(UnexpectedResponseError, match="without a 'calls' list") as raised:
        list(make_client().calls())
    assert raised.value.status == 200


def test_unreadable_call_record_is_an_unexpected_response(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """A call without an integer id names the problem instead of failing deep inside."""
    api.answer(api.ok({"calls": [{"id": "six"}]}))
    with pytest.raises(UnexpectedResponseError, match="id should be an integer"):
        list(make_client().calls())


def test_next_link_that_is_not_a_string_is_refused(api: FakeAPI, make_client: MakeClient) -> None:
    """A `next` that is not a URL stops the pull with a clear error."""
    api.answer(api.ok({"calls": [], "next": 42}))
    with pytest.raises(UnexpectedResponseError, match="next link that is not a URL"):
        list(make_client().calls())


def test_next_link_to_the_same_page_is_refused(api: FakeAPI, make_client: MakeClient) -> None:
    """A server bug that links a page to itself cannot make the pull loop forever."""
    api.answer(api.calls_page([1], f"{api.base_url}/calls"))
    with pytest.raises(UnexpectedResponseError, match="next link to itself"):
        list(make_client().calls())


def test_next_link_downgrading_to_plain_http_is_refused(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """Credentials sent over https are never sent on over plain http."""
    api.answer(api.calls_page([2], "http://api.test/calls?before_id=2"))
    with pytest.raises(UnexpectedResponseError, match=r"unencrypted.*PHONEWAGON_PUBLIC_URL"):
        list(make_client().calls())
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    "link", ["https://evil.example/calls?before_id=2", "https://api.test:8443/calls?before_id=2"]
)
def test_next_link_to_another_server_is_refused_before_credentials_go_there(
    api: FakeAPI, make_client: MakeClient, link: str
) -> None:
    """A `next` link naming another host or port never receives the Basic credentials."""
    api.answer(api.calls_page([2], link))
    with pytest.raises(UnexpectedResponseError, match=r"another server.*PHONEWAGON_PUBLIC_URL"):
        list(make_client().calls())
    assert len(api.requests) == 1


def test_relative_next_link_is_resolved_against_the_page(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """A relative `next` (not what our server sends) still leads to the right page."""
    api.answer(api.calls_page([2], "/calls?before_id=2"), api.calls_page([1]))
    assert [call.id for call in make_client().calls()] == [2, 1]
    assert api.urls[1] == f"{api.base_url}/calls?before_id=2"


def test_a_misspelt_filter_is_refused_before_any_request(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """`compnay_id=` must not quietly fetch every call of the account."""
    with pytest.raises(TypeError, match="unknown filter 'compnay_id'"):
        make_client().calls(compnay_id=1)  # type: ignore[call-arg]
    assert api.requests == []


# --- the change feed ----------------------------------------------------------------------------


def test_change_pages_send_updated_since_with_the_filters_then_follow_next_links_exactly(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """The first request asks `updated_since` (a datetime as epoch ms); each `next` verbatim."""
    page2 = (
        f"{api.base_url}/calls?campaign_id=s1&page_size=2&updated_since=1700000000004&after_id=4"
    )
    api.answer(api.calls_page([3, 4], page2), api.calls_page([5]))
    since = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # 1700000000000
    pages = list(make_client().change_pages(since, campaign_id="s1", page_size=2))
    assert [[call.id for call in page.calls] for page in pages] == [[3, 4], [5]]
    assert [page.next_url for page in pages] == [page2, None]
    assert api.urls == [
        f"{api.base_url}/calls?updated_since=1700000000000&campaign_id=s1&page_size=2",
        page2,
    ]


def test_changes_give_every_changed_call_once_oldest_change_first_across_shared_milliseconds(
    make_client: MakeClient,
) -> None:
    """Pages of 3 end inside milliseconds that several changes share: none lost, none repeated."""
    calls = [make_call(i, T0 - i * 1000, updated_at=T0 + i // 4) for i in range(1, 21)]
    calls.append(make_call(21, T0, updated_at=T0 - 1))  # changed before updated_since
    feed = FakeAPI(calls)
    feed.default_page_size = 3
    with feed.client() as client:
        changed = list(client.changes(T0))
    assert [(c.updated_at, c.id) for c in changed] == sorted(
        (c["updated_at"], c["id"]) for c in calls[:20]
    )
    assert len(feed.calls_requests()) == 7
    assert all("after_id" in r.url.params for r in feed.calls_requests()[1:])


def test_changes_after_a_call_give_only_later_changes(make_client: MakeClient) -> None:
    calls = [make_call(i, T0 - i * 1000, updated_at=T0 + i // 4) for i in range(1, 9)]
    with FakeAPI(calls).client() as client:
        later = list(client.changes(T0 + 1, after_id=5))
    assert [c.id for c in later] == [6, 7, 8]


def test_changes_wait_out_a_429_and_send_the_same_next_link_again(
    api: FakeAPI, make_client: MakeClient, waits: list[Wait]
) -> None:
    """The feed is paged by the same machinery as `calls()`: paced, retried, never skipping."""
    page2 = f"{api.base_url}/calls?page_size=1&updated_since=1700000000001&after_id=1"
    api.answer(
        api.calls_page([1], page2),
        api.problem(429, headers={"Retry-After": "7"}),
        api.calls_page([2]),
    )
    assert [call.id for call in make_client().changes(0, page_size=1)] == [1, 2]
    assert api.urls[1:] == [page2, page2]
    assert [(wait.reason, wait.seconds) for wait in waits] == [("rate-limit", 7.0)]


@pytest.mark.parametrize(
    ("updated_since", "filters", "error", "message"),
    [
        (datetime(2024, 5, 1), {}, ValueError, r"updated_since=.* has no timezone; add one"),
        ("2024-05-01", {}, TypeError, "updated_since must be epoch milliseconds"),
        (True, {}, TypeError, "updated_since must be epoch milliseconds"),
        (0, {"compnay_id": 1}, TypeError, "unknown filter 'compnay_id'"),
        (0, {"end_time": datetime(2024, 5, 1)}, ValueError, "end_time=.* has no timezone"),
    ],
)
def test_changes_refuse_wrong_arguments_before_any_request(
    api: FakeAPI,
    make_client: MakeClient,
    updated_since: object,
    filters: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        make_client().changes(updated_since, **filters)  # type: ignore[arg-type]
    assert api.requests == []
