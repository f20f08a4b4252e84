"""Every error becomes `application/problem+json` (RFC 9457) here, and only here."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.api.responses import json_response
from phonewagon_server.errors import (
    DatabaseTimeout,
    DatabaseUnavailable,
    InvalidParameters,
    PhonewagonError,
    RateLimited,
    Unauthenticated,
)

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("phonewagon_server")


def problem_type(request: Request, slug: str) -> str:
    return f"{context_of(request).settings.public_url}/docs#problem-{slug}"


def render_domain_error(request: Request, error: Exception) -> Response:
    exc = cast(PhonewagonError, error)  # registered for PhonewagonError only
    body: dict[str, Any] = {
        "type": problem_type(request, exc.slug),
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidParameters):
        body["errors"] = [{"name": e.name, "in": "query", "detail": e.detail} for e in exc.errors]
    elif isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Basic realm="phonewagon"'
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, DatabaseUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, DatabaseTimeout):  # an outage is logged once, by the engine
            logger.warning("database statement timeout on %s", request.url.path)
    return _problem(request, body, headers)


def render_http_error(request: Request, error: Exception) -> Response:
    """Starlette's own 404 (no such path) and 405 (wrong method), as problems."""
    exc = cast(HTTPException, error)  # registered for HTTPException only
    status = HTTPStatus(exc.status_code)
    headers = dict(exc.headers or {})
    if "Allow" in headers:  # Starlette joins a set: give it one stable order
        headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
    allowed = headers.get("Allow", "GET")
    detail = {
        404: f"There is no resource at {request.url.path}.",
        405: f"{request.method} is not allowed here; use {allowed}.",
    }.get(status.value, status.description)
    body = {
        "type": problem_type(request, status.phrase.lower().replace(" ", "-")),
        "title": status.phrase,
        "status": status.value,
        "detail": detail,
    }
    return _problem(request, body, headers)


def render_unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: log it for the operator, tell the client nothing about its insides."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {
        "type": problem_type(request, "internal-error"),
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Something went wrong on our side. It has been logged.",
    }
    return _problem(request, body, {})


# RFC 9110's names, newer than `http.HTTPStatus`'s.
REFUSAL_TITLES = {
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
}


def render_refusal(
    request: Request, status: int, detail: str, *, error: type[PhonewagonError] | None = None
) -> Response:
    """A request refused before it reached an endpoint, for its size or shape.

    `about:blank`: the status says it all (RFC 9457 4.2.1), the same for every path; unless the
    refusal is one an endpoint also gives (`error`), whose type it then has. The connection is
    closed after it, as whatever the client still sends would go unread.
    """
    kind, title = "about:blank", REFUSAL_TITLES[status]
    if error is not None:
        kind, title = problem_type(request, error.slug), error.title
    body = {"type": kind, "title": title, "status": status}
    return _problem(request, body | {"detail": detail}, {"Connection": "close"})


def _problem(request: Request, body: dict[str, Any], headers: dict[str, str]) -> Response:
    response = json_response(request, body, status_code=body["status"], media_type=PROBLEM_JSON)
    response.headers.update(headers)
    return response
