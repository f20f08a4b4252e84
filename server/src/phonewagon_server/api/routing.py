"""Routes that declare their policy: how they authenticate, what body they take, which headers.

`endpoint()` is the only way to build a route of the app: its `auth` has no default, and the
declared authentication runs before the handler, which never calls it itself. `Policies` answers
the layers that run before routing (the body limit, the security headers) by path.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Literal, assert_never, cast, overload

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from phonewagon_server.api.auth import authorize
from phonewagon_server.api.context import context_of
from phonewagon_server.api.webhook_auth import Form, signed_form

Handler = Callable[[Request], Response] | Callable[[Request], Awaitable[Response]]
AccountHandler = Callable[[Request, int], Response]  # the request, and its account's id
SignedHandler = Callable[[Request, Form], Awaitable[Response]]  # the request, its signed form
HeaderProfile = Literal["api", "docs"]  # see `api.security.SecurityHeaders`


class Auth(Enum):
    """How a route authenticates its requests, before its handler runs."""

    ACCOUNT = "account"  # HTTP Basic, then one unit of the account's quota: `api.auth.authorize`
    PUBLIC = "public"  # nothing
    # X-Twilio-Signature over the public URL and the form: `api.webhook_auth.signed_form`
    TWILIO_SIGNATURE = "twilio-signature"


class Body(Enum):
    """The request body a route reads; any other is refused 413 before routing."""

    NONE = "none"
    FORM = "form"  # application/x-www-form-urlencoded, up to `webhook_auth.MAX_FORM_BYTES`


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
    body: Body = Body.NONE,
    headers: HeaderProfile = "api",
    methods: Collection[str] = ("GET",),
    include_in_schema: bool = True,
) -> PolicyRoute: ...


def endpoint(
    path: str,
    handler: AccountHandler | SignedHandler | Handler,
    *,
    auth: Auth,
    short: bool = False,
    body: Body = Body.NONE,
    headers: HeaderProfile = "api",
    methods: Collection[str] = ("GET",),
    include_in_schema: bool = True,
) -> PolicyRoute:
    """The route at `path`: `auth` runs first, then `handler`.

    An `Auth.ACCOUNT` handler is a blocking function given the request's account id; `short`
    says its work (authentication included) is small enough for `AppContext.run_short`, else it
    runs in a worker thread. An `Auth.TWILIO_SIGNATURE` handler is a coroutine given the signed
    form. A public handler is routed as it is.
    """
    routed: Handler
    if auth is Auth.ACCOUNT:
        routed = _authorized(cast(AccountHandler, handler), short=short)
    elif auth is Auth.TWILIO_SIGNATURE:
        routed = _signed(cast(SignedHandler, handler))
    elif auth is Auth.PUBLIC:
        routed = cast(Handler, handler)
    else:
        assert_never(auth)
    return PolicyRoute(
        path,
        routed,
        policy=Policy(auth, body, headers),
        methods=methods,
        name=getattr(handler, "__name__", path),
        include_in_schema=include_in_schema,
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


class Policies:
    """Each routed path's policy, for the layers that run before routing: `None` off the table.

    Building it checks the table: every route is a `PolicyRoute`, one per path.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._exact: dict[str, Policy] = {}
        self._templated: list[tuple[re.Pattern[str], Policy]] = []
        paths: set[str] = set()
        for route in routes:
            if not isinstance(route, PolicyRoute):
                raise TypeError(f"{route!r} declares no policy: build it with `endpoint()`")
            if route.path in paths:
                raise ValueError(f"{route.path} is routed twice: policies are found by path")
            paths.add(route.path)
            if route.param_convertors:
                self._templated.append((route.path_regex, route.policy))
            else:
                self._exact[route.path] = route.policy

    def of(self, path: str) -> Policy | None:
        if (policy := self._exact.get(path)) is not None:
            return policy
        for regex, templated in self._templated:
            if regex.match(path):
                return templated
        return None
