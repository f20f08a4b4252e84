"""`create_app(settings, database)`: the ASGI application, built from its arguments alone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp

from phonewagon_server.api import calls, companies, health, openapi, problems, recordings
from phonewagon_server.api.context import AppContext
from phonewagon_server.api.dispatch import FixedPathRouter
from phonewagon_server.api.edge import Edge
from phonewagon_server.api.metrics import Metrics, metrics_endpoint
from phonewagon_server.api.responses import JSONResponse
from phonewagon_server.api.routing import Auth, Body, Policies, PolicyRoute, endpoint
from phonewagon_server.api.security import RequestLimits, SecurityHeaders, cors_middleware
from phonewagon_server.config import Settings
from phonewagon_server.credentials import CredentialUses, VerifiedCredentials
from phonewagon_server.db import Database
from phonewagon_server.db.accounts import record_credential_use
from phonewagon_server.dni import visits
from phonewagon_server.dni.script import Script
from phonewagon_server.errors import PhonewagonError
from phonewagon_server.queue import JobQueue
from phonewagon_server.ratelimit import Clock, build_limiter
from phonewagon_server.twilio import webhooks
from phonewagon_server.twilio.intake import Intake
from phonewagon_server.twilio.workers import LiveWorkers
from phonewagon_server.web.render import render_error, see_other
from phonewagon_server.web.routes import app_routes, build_web_context
from phonewagon_server.web.sessions import SignInRequired


def api_routes() -> list[PolicyRoute]:
    """The routes `/openapi.json` documents, each declaring its policy."""
    return [
        endpoint("/companies", companies.get_companies, auth=Auth.ACCOUNT, short=True),
        endpoint("/campaigns", companies.get_campaigns, auth=Auth.ACCOUNT, short=True),
        endpoint("/calls", calls.get_calls, auth=Auth.ACCOUNT),  # pages: in a worker thread
        endpoint("/call-recordings/{sid}/file", recordings.get_recording_file, auth=Auth.ACCOUNT),
        *(
            endpoint(path, hook, auth=Auth.TWILIO_SIGNATURE, body=Body.FORM, methods=("POST",))
            for path, hook in (
                ("/twilio/voice", webhooks.voice),
                ("/twilio/status", webhooks.status),
                ("/twilio/recording", webhooks.recording),
            )
        ),
        endpoint("/healthz", health.healthz, auth=Auth.PUBLIC),
        endpoint("/readyz", health.readyz, auth=Auth.PUBLIC),
    ]


def create_app(
    settings: Settings,
    database: Database,
    *,
    wall_clock: Callable[[], float] = time.time,
    monotonic: Clock = time.monotonic,
    background: bool = True,
) -> Starlette:
    """The app; with `background` and a Twilio token, its lifespan runs the live workers
    (`twilio.workers`) in its own threads, as tests do. `serve` runs them in a process of their
    own (`phonewagon_server.background`); tests that drive them step by step use
    `app.state.live_workers`."""
    documented = api_routes()
    spec = openapi.build_openapi(settings.public_url, documented)
    docs = openapi.render_docs(spec)
    metrics = Metrics() if settings.metrics else None

    def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    def docs_page(request: Request) -> Response:
        return HTMLResponse(docs)

    routes = [
        *documented,
        endpoint("/openapi.json", openapi_json, auth=Auth.PUBLIC, include_in_schema=False),
        endpoint("/docs", docs_page, auth=Auth.PUBLIC, headers="docs", include_in_schema=False),
        *app_routes(),
        *dni_routes(),
    ]
    if metrics:  # without credentials: its handler answers 404 outside `metrics_allow`
        page = metrics_endpoint(metrics, settings.metrics_allow)
        routes.append(endpoint("/metrics", page, auth=Auth.PUBLIC, include_in_schema=False))
    policies = Policies(routes)  # refuses a route that declares no policy
    app = PhonewagonApp(
        headers=SecurityHeaders.for_settings(settings, policies),
        metrics=metrics,
        routes=routes,
        middleware=[*cors_middleware(settings), Middleware(RequestLimits, policies=policies)],
        exception_handlers={
            PhonewagonError: _html_under_app(problems.render_domain_error),
            HTTPException: _html_under_app(problems.render_http_error),
            Exception: _html_under_app(problems.render_unexpected_error),
            SignInRequired: _to_sign_in,
        },
    )
    app.router.redirect_slashes = False  # its redirects would be built from the Host header
    queue = JobQueue.beside(database)
    intake = Intake(queue, database)
    app.state.live_workers = workers = LiveWorkers(database, queue, settings)
    # Without a Twilio token every webhook is refused: there is no work to do in the background.
    live = background and bool(settings.twilio_auth_tokens)
    app.router.lifespan_context = _running(intake, workers, background=live)
    app.state.context = AppContext(
        settings=settings,
        database=database,
        account_limiter=build_limiter(settings.rate_limit, settings, clock=monotonic),
        auth_failure_limiter=build_limiter(settings.auth_failure_limit, settings, clock=monotonic),
        verified_credentials=VerifiedCredentials(
            settings.credential_cache_seconds, clock=monotonic
        ),
        intake=intake,
        wall_clock=wall_clock,
        short_work_inline=database.dialect == "sqlite" and settings.redis_url is None,
        credential_uses=CredentialUses(_recorder(database)),
    )
    app.state.web = build_web_context(settings, clock=monotonic)
    app.state.dni = visits.VisitDesk.for_settings(settings, database, clock=monotonic)
    return app


def dni_routes() -> list[PolicyRoute]:
    """What customers' pages call: the script, and where it records visits (docs/dni.md)."""
    script = Script.load()
    return [
        endpoint(
            "/dni.js", script.serve, auth=Auth.PUBLIC, headers="asset", include_in_schema=False
        ),
        *(
            route
            for path, handler in (
                ("/dni/visits", visits.record_visit),
                ("/dni/heartbeat", visits.heartbeat),
            )
            for route in (
                # The preflight first: a method the path does not route is answered by its
                # policy, which takes no body (`Policies.of`).
                endpoint(
                    path,
                    visits.preflight,
                    auth=Auth.PUBLIC,
                    methods=("OPTIONS",),
                    include_in_schema=False,
                ),
                endpoint(path, handler, auth=Auth.PUBLIC, body=Body.JSON, include_in_schema=False),
            )
        ),
    ]


def _running(
    intake: Intake, workers: LiveWorkers, *, background: bool
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if background:
            workers.start()
        try:
            yield
        finally:
            await asyncio.to_thread(intake.close)
            await asyncio.to_thread(workers.stop)
            workers.queue.close()

    return lifespan


def _recorder(database: Database) -> Callable[[str, int], None]:
    def record(client_id: str, period_start: int) -> None:
        with database.transaction(write=True) as tx:
            record_credential_use(tx, client_id, period_start=period_start)

    return record


ErrorRenderer = Callable[[Request, Exception], Response]


def _html_under_app(render_problem: ErrorRenderer) -> ErrorRenderer:
    """Errors of the web app's pages as HTML pages; the API's as problem+json."""

    def render(request: Request, exc: Exception) -> Response:
        path = request.scope["path"]  # not `request.url`: it decodes the query, which may not be
        if path == "/app" or path.startswith("/app/"):
            return render_error(request, exc)
        return render_problem(request, exc)

    return render


def _to_sign_in(request: Request, exc: Exception) -> Response:
    """A page that needs a session, asked for without one: sign in, then come back to it."""
    if request.method != "GET":
        return see_other("/app/login")
    query = request.scope["query_string"].decode("latin-1")
    back = request.scope["path"] + (f"?{query}" if query else "")
    return see_other("/app/login?" + urlencode({"next": back}))


class PhonewagonApp(Starlette):
    """Starlette with `Edge` around its error handler, where user middleware cannot go, and
    its fixed paths routed by dictionary (`api.dispatch`).

    Starlette renders a 500 in its outermost layer; only a layer outside that one can give the
    500 its security headers, request id, metrics sample and log line.
    """

    def __init__(self, *, headers: SecurityHeaders, metrics: Metrics | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.router = FixedPathRouter(self.router.routes)
        self.security_headers = headers
        self.metrics = metrics

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return Edge(stack, headers=self.security_headers, metrics=self.metrics)
