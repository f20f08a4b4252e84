"""Errors named for what the caller must do, each carrying the server's problem details.

PhonewagonError                 every error this library raises
├── ConfigurationError          no credentials or an unusable base URL: fix the settings
├── APIConnectionError          the server could not be reached, even after retries
└── APIStatusError              the server answered with an error (status, problem, headers)
    ├── BadRequestError         400  a parameter is wrong: `.errors` names each one
    ├── AuthenticationError     401  the client id or secret is wrong or revoked
    ├── NotFoundError           404  no such company or campaign in this account
    ├── RateLimitError          429  still refused after waiting many times (`.retry_after`)
    ├── ServerError             5xx  still failing after retries: try again later
    └── UnexpectedResponseError      an answer this client cannot read (is base_url right?)

`str(error)` is the server's own `detail` when it sent one.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import httpx

from phonewagon.retry import parse_retry_after


class PhonewagonError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.problem = problem
        self.url = url


class ConfigurationError(PhonewagonError):
    pass


class APIConnectionError(PhonewagonError):
    pass


class APIStatusError(PhonewagonError):
    def __init__(
        self,
        message: str,
        *,
        status: int,
        problem: dict[str, Any] | None = None,
        url: str | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(message, status=status, problem=problem, url=url)
        self.status: int = status
        self.headers = headers if headers is not None else httpx.Headers()


class BadRequestError(APIStatusError):
    @property
    def errors(self) -> list[dict[str, Any]]:
        """One entry per wrong parameter: `{"name": ..., "in": "query", "detail": ...}`."""
        errors = (self.problem or {}).get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


class AuthenticationError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    pass


class UnexpectedResponseError(APIStatusError):
    pass


_ERRORS_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
}


def error_for_response(response: httpx.Response) -> APIStatusError:
    """The error for an answer that is not a success, its message the problem's `detail`."""
    problem = read_problem(response)
    status = response.status_code
    message = _message(response, problem)
    url = str(response.request.url)
    if status == 429:
        return RateLimitError(
            message,
            retry_after=parse_retry_after(response.headers),
            status=status,
            problem=problem,
            url=url,
            headers=response.headers,
        )
    error_class = ServerError if status >= 500 else _ERRORS_BY_STATUS.get(status, APIStatusError)
    return error_class(message, status=status, problem=problem, url=url, headers=response.headers)


def unexpected_response(
    response: httpx.Response, what: str, *, hint: str = "is base_url a Phonewagon API?"
) -> UnexpectedResponseError:
    """A success whose body is not what the API documents, e.g. a web page at base_url."""
    url = str(response.request.url)
    return UnexpectedResponseError(
        f"{url} answered {response.status_code} with {what}; {hint}",
        status=response.status_code,
        url=url,
        headers=response.headers,
    )


def read_problem(response: httpx.Response) -> dict[str, Any] | None:
    """The RFC 9457 problem object of an error answer, or None if it has none."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _message(response: httpx.Response, problem: dict[str, Any] | None) -> str:
    for key in ("detail", "title"):
        text = (problem or {}).get(key)
        if isinstance(text, str) and text:
            return text
    try:
        reason = HTTPStatus(response.status_code).phrase
    except ValueError:
        reason = "Unknown Status"
    message = f"HTTP {response.status_code} {reason} from {response.request.url}"
    if location := response.headers.get("location"):
        message += f", which points to {location}: set base_url to the address it moved to"
    return message
