"""`create_app(settings, database)`: the ASGI application, built from its arguments alone."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phonewagon_server.api import calls, companies, health, openapi, problems
from phonewagon_server.api.context import AppContext
from phonewagon_server.api.responses import JSONResponse
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.errors import PhonewagonError
from phonewagon_server.ratelimit import Clock, build_limiter


def create_app(
    settings: Settings,
    database: Database,
    *,
    wall_clock: Callable[[], float] = time.time,
    monotonic: Clock = time.monotonic,
) -> Starlette:
    spec = openapi.build_openapi(settings.public_url)
    docs = openapi.render_docs(spec)

    def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    def docs_page(request: Request) -> Response:
        return HTMLResponse(docs)

    app = Starlette(
        routes=[
            Route("/companies", companies.companies, methods=["GET"]),
            Route("/campaigns", companies.campaigns, methods=["GET"]),
            Route("/calls", calls.calls, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs_page, methods=["GET"]),
            Route("/healthz", health.healthz, methods=["GET"]),
            Route("/readyz", health.readyz, methods=["GET"]),
        ],
        exception_handlers={
            PhonewagonError: problems.render_domain_error,
            HTTPException: problems.render_http_error,
            Exception: problems.render_unexpected_error,
        },
    )
    app.router.redirect_slashes = False  # its redirects would be built from the Host header
    app.state.context = AppContext(
        settings=settings,
        database=database,
        account_limiter=build_limiter(settings.rate_limit, settings, clock=monotonic),
        auth_failure_limiter=build_limiter(settings.auth_failure_limit, settings, clock=monotonic),
        wall_clock=wall_clock,
    )
    app.add_middleware(NoStore)
    return app


class NoStore:
    """`Cache-Control: no-store` on every response: call data must not linger in caches.

    A 500 is rendered outside this middleware, so `problems` sets the header itself too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_no_store)
