"""Routes that declare their policy: how they authenticate, what body they take, which headers.

`endpoint()` is the only way to build a route of the app: its `auth` has no default, and the
declared authentication runs before the handler, which never calls it itself; so does the
CSRF check of every form. `Policies` answers the layers that run before routing (the body
limit, the security headers) by path and method: GET and POST may share a path.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, assert_never, cast, overload
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from phonewagon_server.api.auth import authorize
from phonewagon_server.api.context import context_of
from phonewagon_server.api.webhook_auth import MAX_FORM_BYTES, signed_form
from phonewagon_server.api.webhook_auth import Form as SignedForm
from phonewagon_server.errors import PayloadTooLarge, UnreadableBody

# As a module: `web.sessions` imports the app's context, whose package imports this module.
from phonewagon_server.web import sessions

if TYPE_CHECKING:
    from phonewagon_server.web.sessions import SignedIn

Form = dict[str, str]  # a urlencoded form's fields, the last value of a repeated one
Handler = Callable[[Request], Response] | Callable[[Request], Awaitable[Response]]
AccountHandler = Callable[[Request, int], Response]  # the request, and its account's id
SignedHandler = Callable[[Request, SignedForm], Awaitable[Response]]  # its signed form
FormHandler = Callable[[Request, Form], Response]  # a public form (signing in), CSRF-checked
SessionHandler = Callable[[Request, "SignedIn", Form], Response]  # the signed-in person
JSONObject = dict[str, Any]
# A public JSON object; a coroutine, whose blocking work goes through `run_short` or a writer.
JSONHandler = Callable[[Request, JSONObject], Awaitable[Response]]
HeaderProfile = Literal["api", "docs", "app", "asset"]  # see `api.security.SecurityHeaders`
MAX_JSON_BYTES = 8 * 1024
JSON_TYPES = ("application/json", "text/plain")  # text/plain: a CORS "simple request"
JSON_TOO_LARGE = f"A JSON body is at most {MAX_JSON_BYTES} bytes."


class Auth(Enum):
    """How a route authenticates its requests, before its handler runs."""

    ACCOUNT = "account"  # HTTP Basic, then one unit of the account's quota: `api.auth.authorize`
    PUBLIC = "public"  # nothing
    # X-Twilio-Signature over the public URL and the form: `api.webhook_auth.signed_form`
    TWILIO_SIGNATURE = "twilio-signature"
    # The web app's session cookie (`web.sessions.require_session`); without one, a browser is
    # sent to the sign-in page.
    SESSION = "session"


class Body(Enum):
    """The request body a route reads; any other is refused 413 before routing."""

    NONE = "none"
    # A urlencoded form of at most MAX_FORM_BYTES. Its CSRF token is checked before the handler
    # against the session (Auth.SESSION) or the signed sign-in cookie (Auth.PUBLIC); a webhook's
    # signature covers it instead (Auth.TWILIO_SIGNATURE).
    FORM = "form"
    # A JSON object of at most MAX_JSON_BYTES, sent as application/json or text/plain.
    JSON = "json"

    @property
    def max_bytes(self) -> int:
        return MAX_JSON_BYTES if self is Body.JSON else MAX_FORM_BYTES


@dataclass(frozen=True, slots=True)
class Policy:
    auth: Auth
    body: Body = Body.NONE
    headers: HeaderProfile = "api"


class PolicyRoute(Route):
    """A Starlette `Route` that carries its `Policy`; built by `endpoint()`."""

    def __init__(
        self,
        path: str,
        handler: Handler,
        *,
        policy: Policy,
        methods: Collection[str],
        name: str,
        include_in_schema: bool,
    ) -> None:
        super().__init__(
            path, handler, methods=methods, name=name, include_in_schema=include_in_schema
        )
        self.policy = policy


@overload
def endpoint(
    path: str,
    handler: AccountHandler,
    *,
    auth: Literal[Auth.ACCOUNT],
    short: bool = False,
    body: Body = Body.NONE,
    headers: HeaderProfile = "api",
    methods: Collection[str] = ("GET",),
    include_in_schema: bool = True,
) -> PolicyRoute: ...


@overload
def endpoint(
    path: str,
    handler: SignedHandler,
    *,
    auth: Literal[Auth.TWILIO_SIGNATURE],
    body: Literal[Body.FORM],
    headers: HeaderProfile = "api",
    methods: Collection[str],
    include_in_schema: bool = True,
) -> PolicyRoute: ...


@overload
def endpoint(
    path: str,
    handler: Handler,
    *,
    auth: Literal[Auth.PUBLIC],
    body: Literal[Body.NONE] = Body.NONE,
    headers: HeaderProfile = "api",
    methods: Collection[str] = ("GET",),
    include_in_schema: bool = True,
) -> PolicyRoute: ...


@overload
def endpoint(
    path: str,
    handler: FormHandler,
    *,
    auth: Literal[Auth.PUBLIC],
    body: Literal[Body.FORM],
    headers: HeaderProfile = "api",
    methods: Collection[str] = ("POST",),
    include_in_schema: bool = True,
) -> PolicyRoute: ...


@overload
def endpoint(
    path: str,
    handler: JSONHandler,
    *,
    auth: Literal[Auth.PUBLIC],
    body: Literal[Body.JSON],
    headers: HeaderProfile = "api",
    methods: Collection[str] = ("POST",),
    include_in_schema: bool = True,
) -> PolicyRoute: ...


@overload
def endpoint(
    path: str,
    handler: SessionHandler,
    *,
    auth: Literal[Auth.SESSION],
    body: Body = Body.NONE,
    headers: HeaderProfile = "app",
    methods: Collection[str] = ("GET",),
    include_in_schema: bool = False,
) -> PolicyRoute: ...


def endpoint(
    path: str,
    handler: AccountHandler | Handler | FormHandler | JSONHandler | SessionHandler | SignedHandler,
    *,
    auth: Auth,
    short: bool = False,
    body: Body = Body.NONE,
    headers: HeaderProfile | None = None,
    methods: Collection[str] | None = None,
    include_in_schema: bool | None = None,
) -> PolicyRoute:
    """The route at `path`: `auth` runs first, then `handler`.

    An `Auth.ACCOUNT` handler is a blocking function given the request's account id; `short`
    says its work (authentication included) is small enough for `AppContext.run_short`, else it
    runs in a worker thread. A public handler is routed as it is, blocking or async, but for a
    public form's, which is given the form once its sign-in CSRF token is checked. A public
    JSON route's is a coroutine given the JSON object (it keeps blocking work off the loop). An
    `Auth.SESSION` handler is a blocking function given the signed-in person and the form
    (empty without `Body.FORM`), whose CSRF token was checked against the session; it runs in
    a worker thread, and stays out of /openapi.json. An `Auth.TWILIO_SIGNATURE` handler is a
    coroutine given the form whose signature was checked.
    """
    routed: Handler
    if auth is Auth.ACCOUNT:
        routed = _authorized(cast(AccountHandler, handler), short=short)
    elif auth is Auth.TWILIO_SIGNATURE:
        routed = _signed(cast(SignedHandler, handler))
    elif auth is Auth.PUBLIC and body is Body.FORM:
        routed = _public_form(cast(FormHandler, handler))
    elif auth is Auth.PUBLIC and body is Body.JSON:
        routed = _public_json(cast(JSONHandler, handler))
    elif auth is Auth.PUBLIC:
        routed = cast(Handler, handler)
    elif auth is Auth.SESSION:
        routed = _signed_in(cast(SessionHandler, handler), body=body)
    else:
        assert_never(auth)
    session = auth is Auth.SESSION
    if methods is None:
        methods = ("GET",) if body is Body.NONE else ("POST",)
    return PolicyRoute(
        path,
        routed,
        policy=Policy(auth, body, headers or ("app" if session else "api")),
        methods=methods,
        name=getattr(handler, "__name__", path),
        include_in_schema=(not session) if include_in_schema is None else include_in_schema,
    )


def _authorized(handler: AccountHandler, *, short: bool) -> Handler:
    def authorized(request: Request) -> Response:
        return handler(request, authorize(request))

    if not short:
        return authorized  # blocking: Starlette runs it, authorization included, in a thread

    async def authorized_short(request: Request) -> Response:
        return await context_of(request).run_short(authorized, request)

    return authorized_short


def _signed(handler: SignedHandler) -> Handler:
    async def signed(request: Request) -> Response:
        return await handler(request, await signed_form(request))

    return signed


def _public_form(handler: FormHandler) -> Handler:
    def checked(request: Request, form: Form) -> Response:
        sessions.check_sign_in_csrf(request, form)
        return handler(request, form)

    async def routed(request: Request) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(checked, request, form)  # the key is read once, then

    return routed


def _public_json(handler: JSONHandler) -> Handler:
    async def routed(request: Request) -> Response:
        return await handler(request, await read_json(request))

    return routed


def _signed_in(handler: SessionHandler, *, body: Body) -> Handler:
    def signed_in(request: Request, form: Form) -> Response:
        person = sessions.require_session(request)
        if body is Body.FORM:
            sessions.check_session_csrf(person, form)
        return handler(request, person, form)

    async def routed(request: Request) -> Response:
        form = await read_form(request) if body is Body.FORM else {}
        return await run_in_threadpool(signed_in, request, form)  # a database read, or writes

    return routed


async def read_form(request: Request) -> Form:
    """The request's urlencoded form, read up to MAX_FORM_BYTES (413 past them, whatever its
    `Content-Length` said; `api.security.RequestLimits` refuses a larger one before routing)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"A form is at most {MAX_FORM_BYTES} bytes.")
    if body and media_type != "application/x-www-form-urlencoded":  # none: an empty form
        raise HTTPException(415, "Send the form as application/x-www-form-urlencoded.")
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, "The form is not UTF-8 text.") from exc
    return dict(fields)


async def read_json(request: Request) -> JSONObject:
    """The request's JSON object, read up to MAX_JSON_BYTES (413 past them, as for a form)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise HTTPException(415, "Send a JSON object as application/json or text/plain.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise PayloadTooLarge(JSON_TOO_LARGE)
    try:
        parsed = orjson.loads(body)  # refuses invalid UTF-8 and lone surrogates too
    except orjson.JSONDecodeError:
        raise UnreadableBody("The body is not JSON text in UTF-8.") from None
    if not isinstance(parsed, dict):
        raise UnreadableBody("The body must be a JSON object.")
    return parsed


class Policies:
    """Each routed path's policy, for the layers that run before routing: `None` off the table.

    Building it checks the table: every route is a `PolicyRoute`, each method of a path routed
    once, and the routes of one path declare one header profile (headers are found by path).
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._exact: dict[str, dict[str, Policy]] = {}
        self._templated: list[tuple[re.Pattern[str], dict[str, Policy]]] = []
        by_path: dict[str, dict[str, Policy]] = {}
        for route in routes:
            if not isinstance(route, PolicyRoute):
                raise TypeError(f"{route!r} declares no policy: build it with `endpoint()`")
            methods = by_path.get(route.path)
            if methods is None:
                methods = by_path[route.path] = {}
                if route.param_convertors:
                    self._templated.append((route.path_regex, methods))
                else:
                    self._exact[route.path] = methods
            for method in route.methods or ():
                if method in methods:
                    raise ValueError(f"{method} {route.path} is routed twice")
                methods[method] = route.policy
            if len({policy.headers for policy in methods.values()}) > 1:
                raise ValueError(f"the routes of {route.path} declare different header profiles")

    def of(self, path: str, method: str = "GET") -> Policy | None:
        """The policy of `method` on `path`; for a method the path does not route (Starlette
        answers 405), its GET's, else any of its routes'."""
        methods = self._exact.get(path)
        if methods is None:
            methods = next((m for regex, m in self._templated if regex.match(path)), None)
        if methods is None:
            return None
        return methods.get(method) or methods.get("GET") or next(iter(methods.values()))
