"""The outermost layer of the app: every request's id, security headers, metrics and log line.

It wraps Starlette's error handler (see `PhonewagonApp`), so a 500 gets all of these too.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phonewagon_server.api.metrics import Metrics
from phonewagon_server.api.security import SecurityHeaders
from phonewagon_server.logs import REQUEST_ID, redact

access_log = logging.getLogger("phonewagon_server.access")
REQUEST_ID_SHAPE = re.compile(rb"[A-Za-z0-9._\-]{1,64}")
MAX_LOGGED_PATH = 512
ACCESS_LINE = "%s %s %d %.1f ms"
# A new request id: this process's random half, then a count (no system call per request).
# Ten digits in a row would make every log line look as if it held a phone number, and take the
# slow path of `logs.redact`: the random half has none, and the count's hex digits are XORed with
# `a`, which turns its leading zeros into letters.
_TEN_DIGITS = re.compile("[0-9]{10}")
_REQUEST_NUMBERS = itertools.count(1)
_COUNT_LETTERS = int("a" * 16, 16)


def _process_id() -> str:
    while _TEN_DIGITS.search(candidate := secrets.token_hex(8)):
        pass
    return candidate


_PROCESS_ID = _process_id()


class Edge:
    def __init__(self, app: ASGIApp, *, headers: SecurityHeaders, metrics: Metrics | None) -> None:
        self.app = app
        self.headers = headers
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        extra_headers = (
            *self.headers.for_path(scope["path"]),
            (b"x-request-id", request_id.encode()),
        )
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            await send(message)

        if self.metrics:
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's error handler re-raises once it has answered 500 and logged the error
            # with this request's id; raised further, uvicorn would only log it a second time.
            if not status:
                raise
        finally:
            self._record(scope, status or 500, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        account_id = state.get("account_id")
        route = getattr(scope.get("route"), "path", "unmatched")
        if self.metrics:
            self.metrics.in_flight.dec()
            self.metrics.observe(
                route=route,
                method=scope["method"],
                status=status,
                seconds=seconds,
                authenticated=account_id is not None,
            )
        if access_log.isEnabledFor(logging.INFO):
            path = scope["path"][:MAX_LOGGED_PATH]
            fields = {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"][:MAX_LOGGED_PATH].decode("latin-1"),
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": scope["client"][0] if scope.get("client") else None,
                "account_id": account_id,
            }
            # `info()` would first walk the stack for the caller's file and line, unused here.
            args = (scope["method"], path, status, seconds * 1000)
            record = access_log.makeRecord(
                access_log.name,
                logging.INFO,
                __file__,
                0,
                ACCESS_LINE,
                args,
                None,
                None,
                extra={"fields": fields},
            )
            access_log.handle(record)


def _request_id(scope: Scope) -> str:
    """The client's `X-Request-ID` if it is short and plain, else a new one.

    Plain means nothing in it is masked in log lines (a phone number, a secret): the id logged
    is the id echoed, so `grep` finds a request's lines.
    """
    for name, value in scope["headers"]:
        if name == b"x-request-id" and REQUEST_ID_SHAPE.fullmatch(value):
            request_id = bytes(value).decode("ascii")
            if redact(request_id) == request_id:
                return request_id
    return f"{_PROCESS_ID}{next(_REQUEST_NUMBERS) ^ _COUNT_LETTERS:016x}"
