"""What the web app's handlers share, beside `api.context.AppContext`: templates, static files,
the sign-in throttles, the sign-in form's key and the chart cache."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import cast

import jinja2
from starlette.requests import Request

from phonewagon_server.db import Database
from phonewagon_server.db.call_browsing import DailySources
from phonewagon_server.db.users import read_web_key
from phonewagon_server.ratelimit import Limiter


@dataclass(slots=True)
class WebContext:
    templates: jinja2.Environment
    static: dict[str, tuple[bytes, str]]  # file name -> (content, media type)
    sign_ins_by_email: Limiter
    sign_ins_by_address: Limiter
    secure_cookies: bool  # the public URL is https
    # The Calls page's chart counts by account: (when they expire, monotonic; the counts).
    charts: dict[int, tuple[float, DailySources]] = field(default_factory=dict)
    _sign_in_key: bytes | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sign_in_key(self, database: Database) -> bytes:
        """The deployment's key for the sign-in form's CSRF cookie (read once, from the
        database: every worker shares it)."""
        if self._sign_in_key is None:
            with database.transaction() as tx:
                key = read_web_key(tx, "sign_in_csrf")
            with self._lock:
                self._sign_in_key = key.encode()
        return self._sign_in_key


def web_context(request: Request) -> WebContext:
    return cast(WebContext, request.app.state.web)
