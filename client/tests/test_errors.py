"""Each error answer becomes the error named for what the caller must do, in the server's words."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

import phonewagon
from phonewagon import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConfigurationError,
    NotFoundError,
    PhonewagonError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from phonewagon import errors as errors_module

if TYPE_CHECKING:
    from fakes import FakeAPI

MakeClient = Callable[..., Client]


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (405, APIStatusError),
        (409, APIStatusError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (501, ServerError),
    ],
)
def test_status_maps_to_error_with_status_problem_detail_and_url(
    api: FakeAPI, make_client: MakeClient, status: int, error_class: type[APIStatusError]
) -> None:
    """The error's class follows the status; it carries status, problem, url, headers and detail."""
    api.answer(api.problem(status, "The server's own words.", headers={"X-Trace": "t-1"}))
    client = make_client(max_retries=0)
    with pytest.raises(error_class) as raised:
        client.companies()
    error = raised.value
    assert type(error) is error_class
    assert isinstance(error, PhonewagonError)
    assert error.status == status
    assert str(error) == "The server's own words."
    assert error.problem is not None
    assert error.problem["detail"] == "The server's own words."
    assert error.problem["status"] == status
    assert error.url == f"{api.base_url}/companies"
    assert error.headers["X-Trace"] == "t-1"


def test_bad_request_lists_each_wrong_parameter(api: FakeAPI, make_client: MakeClient) -> None:
    """A 400's `errors` name every parameter the server refused, as it sent them."""
    wrong = [
        {"name": "compnay_id", "in": "query", "detail": "did you mean company_id?"},
        {"name": "page_size", "in": "query", "detail": "must be at least 1"},
    ]
    api.answer(api.problem(400, "Check the query parameters: compnay_id, page_size.", errors=wrong))
    with pytest.raises(BadRequestError) as raised:
        list(make_client().calls())
    assert raised.value.errors == wrong
    assert str(raised.value) == "Check the query parameters: compnay_id, page_size."
    assert len(api.requests) == 1


def test_errors_list_is_empty_when_the_problem_has_none(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """`errors` is always a list, even when a 400 came without one."""
    api.answer(api.problem(400, "Bad."))
    with pytest.raises(BadRequestError) as raised:
        make_client().companies()
    assert raised.value.errors == []


def test_authentication_error_is_not_retried(api: FakeAPI, make_client: MakeClient) -> None:
    """A wrong secret stays wrong: one request, the server's detail, no waiting."""
    api.answer(api.problem(401, "Send your client id and client secret as Basic auth."))
    client = make_client()
    with pytest.raises(AuthenticationError, match="Basic auth"):
        client.companies()
    assert len(api.requests) == 1


def test_not_found_carries_the_servers_detail(api: FakeAPI, make_client: MakeClient) -> None:
    """Asking for another account's company is a NotFoundError with the server's reason."""
    api.answer(api.problem(404, "This account has no company with that company_id."))
    with pytest.raises(NotFoundError, match="no company with that company_id"):
        make_client().campaigns(company_id=99)


def test_rate_limit_error_carries_retry_after(api: FakeAPI) -> None:
    """`retry_after` is the 429's Retry-After in seconds."""
    request = httpx.Request("GET", f"{api.base_url}/calls")
    response = api.problem(429, "Retry in 12 seconds.", headers={"Retry-After": "12"})
    response.request = request
    error = errors_module.error_for_response(response)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 12.0
    assert str(error) == "Retry in 12 seconds."


def test_error_page_from_a_proxy_names_status_and_url(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """An HTML 502 from a proxy has no problem: the message says what answered, and where."""
    api.answer(httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(ServerError) as raised:
        make_client(max_retries=0).companies()
    assert raised.value.problem is None
    assert str(raised.value) == f"HTTP 502 Bad Gateway from {api.base_url}/companies"


def test_redirect_says_where_the_api_moved(api: FakeAPI, make_client: MakeClient) -> None:
    """A redirect is not followed with your credentials; the error tells you the new address."""
    api.answer(httpx.Response(301, headers={"Location": "https://new.example/companies"}))
    with pytest.raises(APIStatusError, match=re.escape("https://new.example/companies")) as raised:
        make_client().companies()
    assert raised.value.status == 301


def test_connection_and_configuration_errors_have_no_status(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """Errors that are not answers carry no status and no problem."""
    api.answer(httpx.ConnectError("connection refused"))
    with pytest.raises(APIConnectionError) as raised:
        make_client(max_retries=0).companies()
    assert (raised.value.status, raised.value.problem) == (None, None)
    assert raised.value.url == f"{api.base_url}/companies"
    with pytest.raises(ConfigurationError) as configuration:
        Client("", "", api.base_url)
    assert (configuration.value.status, configuration.value.problem) == (None, None)


def test_malformed_success_is_an_unexpected_response_error(
    api: FakeAPI, make_client: MakeClient
) -> None:
    """A 200 that is not the documented JSON is an APIStatusError, never a KeyError."""
    api.answer(httpx.Response(200, text="<html>Welcome</html>"))
    with pytest.raises(UnexpectedResponseError, match="not JSON; is base_url a Phonewagon API"):
        make_client().companies()


def test_error_tree_is_drawn_in_the_docstring_with_every_public_error() -> None:
    """Every exported error class appears in the tree at the top of `errors.py`."""
    exported = [
        getattr(phonewagon, name)
        for name in phonewagon.__all__
        if isinstance(getattr(phonewagon, name), type)
        and issubclass(getattr(phonewagon, name), Exception)
    ]
    assert len(exported) == 10
    for error_class in exported:
        assert error_class.__name__ in (errors_module.__doc__ or "")
        assert issubclass(error_class, PhonewagonError)
