"""Pages rendered from the Jinja2 templates (autoescaped), and the web app's HTML errors."""

from __future__ import annotations

import datetime as dt
import logging
from http import HTTPStatus
from importlib import resources
from typing import Any

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from phonewagon_server.errors import PhonewagonError
from phonewagon_server.web.context import web_context

logger = logging.getLogger("phonewagon_server")
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
STATIC_TYPES[".svg"] = "image/svg+xml"


def build_templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("phonewagon_server.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=format_when, day=format_day, duration=format_duration, hour=format_hour
    )
    return environment


def load_static() -> dict[str, tuple[bytes, str]]:
    """Every file of web/static, by name, with its media type: read once, at start."""
    folder = resources.files("phonewagon_server.web") / "static"
    found = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in STATIC_TYPES:
            found[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return found


def render(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("person", None)
    values.setdefault("section", "")
    page = web_context(request).templates.get_template(template).render(**values)
    return HTMLResponse(page, status_code=status)


def see_other(location: str) -> RedirectResponse:
    """303 to a path of ours (relative: never built from the request's Host header)."""
    return RedirectResponse(location, status_code=303)


def render_error(request: Request, exc: Exception) -> Response:
    """An error under /app/ as an HTML page: the API's stay problem+json."""
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, exc.detail
        headers = dict(exc.headers or {})
        if status == 404 and detail == HTTPStatus(404).phrase:
            detail = "There is no page here. It may have moved, or the link is wrong."
    elif isinstance(exc, PhonewagonError):
        status, detail = exc.status, exc.detail
    else:
        path = request.scope["path"]
        logger.error("unhandled error on %s %s", request.method, path, exc_info=exc)
        status, detail = 500, "Something went wrong on our side. It has been logged."
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    response = render(request, "error.html", status=status, title=title, detail=detail)
    response.headers.update(headers)
    return response


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def format_when(ms: int | None) -> str:
    return "—" if ms is None else _utc(ms).strftime("%Y-%m-%d %H:%M")


def format_day(ms: int | None) -> str:
    return "—" if ms is None else _utc(ms).strftime("%Y-%m-%d")


def format_hour(ms: int | None) -> str:
    return "Never" if ms is None else _utc(ms).strftime("%Y-%m-%d %H:00")


def format_duration(seconds: int) -> str:
    minutes, seconds = divmod(max(0, int(seconds)), 60)
    return f"{minutes}:{seconds:02d}"
