"""What the API tells browsers (security headers, CORS) and what it refuses to read (limits)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from phonewagon_server.api import problems
from phonewagon_server.api.routing import JSON_TOO_LARGE, Body, Policies
from phonewagon_server.api.webhook_auth import MAX_FORM_BYTES
from phonewagon_server.config import Settings
from phonewagon_server.errors import PayloadTooLarge

Headers = tuple[tuple[bytes, bytes], ...]

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The docs page is one self-contained document whose only resource is its inline stylesheet.
DOCS_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
APP_PATH = "/app/"


def app_policy(public_url: str) -> str:
    """The web app's: nothing inline; script only from its static folder at the public URL (the
    copy buttons: the pages work without it), styles from our own origin, recordings from ours,
    forms posted only to ourselves."""
    return (
        "default-src 'none'; "
        f"script-src {public_url}{APP_PATH}static/; "
        "style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


MAX_URL_BYTES = 8 * 1024
FORM_TOO_LARGE = f"A form is at most {MAX_FORM_BYTES} bytes."
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_FIELDS = 100


def security_header_pairs(
    policy: str = API_POLICY, *, https: bool = False, asset: bool = False
) -> list[tuple[str, str]]:
    """The security headers as text: HSTS only when the API is served over https. An asset
    (`/dni.js`, loaded by customers' pages) sets its own caching and may be used cross-origin."""
    pairs = [
        ("cache-control", "no-store"),  # call data must not linger in caches
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ]
    if asset:
        pairs[0] = ("cross-origin-resource-policy", "cross-origin")
    if https:
        pairs.append(("strict-transport-security", "max-age=31536000"))
    return [*pairs, ("content-security-policy", policy)]


@dataclass(frozen=True, slots=True)
class SecurityHeaders:
    """The headers every response carries, computed once: JSON answers', the docs page's and
    the web app's.

    Each route declares its profile; a path off the route table gets the web app's under
    /app/ (its HTML 404), else the API's.
    """

    api: Headers
    docs: Headers
    policies: Policies
    app: Headers = ()
    asset: Headers = ()

    @classmethod
    def for_settings(cls, settings: Settings, policies: Policies) -> SecurityHeaders:
        https = settings.public_url.startswith("https://")

        def encoded(policy: str, *, asset: bool = False) -> Headers:
            pairs = security_header_pairs(policy, https=https, asset=asset)
            return tuple((name.encode(), value.encode()) for name, value in pairs)

        return cls(
            api=encoded(API_POLICY),
            docs=encoded(DOCS_POLICY),
            app=encoded(app_policy(settings.public_url)),
            asset=encoded(API_POLICY, asset=True),
            policies=policies,
        )

    def for_path(self, path: str) -> Headers:
        policy = self.policies.of(path)
        if policy is None:
            return self.app if path.startswith(APP_PATH) else self.api
        profiles = {"api": self.api, "docs": self.docs, "app": self.app, "asset": self.asset}
        return profiles[policy.headers]


DNI_PATHS = ("/dni/", "/dni.js")  # public to customers' sites: CORS per company (`dni.visits`)


class ApiCORSMiddleware(CORSMiddleware):
    """Starlette's CORS for the API, leaving the website-visit paths to their own."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(DNI_PATHS):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def cors_middleware(settings: Settings) -> list[Middleware]:
    """Browsers on the configured origins may read the API; with none configured, no CORS."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            ApiCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD"],
            allow_headers=["Authorization"],
            expose_headers=["RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-ID"],
            max_age=600,
        )
    ]


class RequestLimits:
    """Refuses, before any work, a request whose URL or headers are too large, or with a body
    its route does not declare (`Body.NONE`, a path off the route table: none at all).

    A body no route reads would only be buffered for nothing. The HTTP protocol
    (`phonewagon_server.transport`) bounds the head more loosely still, before it is parsed.
    """

    def __init__(self, app: ASGIApp, *, policies: Policies) -> None:
        self.app = app
        self.policies = policies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := _refusal(scope, self.policies)) is not None:
            status, detail = refusal
            # A form over its bound is what the form's reader refuses too: the same problem.
            error = PayloadTooLarge if detail in (FORM_TOO_LARGE, JSON_TOO_LARGE) else None
            response = problems.render_refusal(Request(scope), status, detail, error=error)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _refusal(scope: Scope, policies: Policies) -> tuple[int, str] | None:
    path = scope.get("raw_path") or scope["path"].encode()
    if len(path) + len(scope["query_string"]) > MAX_URL_BYTES:
        return 414, f"The URL is longer than {MAX_URL_BYTES} bytes."
    headers = scope["headers"]
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES or len(headers) > MAX_HEADER_FIELDS:
        return 431, (
            f"The request's headers exceed {MAX_HEADER_BYTES} bytes or {MAX_HEADER_FIELDS} fields."
        )
    for name, value in headers:
        if (name == b"content-length" and value.strip().lstrip(b"0")) or (
            name == b"transfer-encoding"
        ):
            return _body_refusal(scope, policies, name, value)
    return None


def _body_refusal(
    scope: Scope, policies: Policies, header: bytes, value: bytes
) -> tuple[int, str] | None:
    policy = policies.of(scope["path"], scope["method"])
    if policy is None or policy.body is Body.NONE:
        return 413, "This API takes no request body: send parameters in the query string."
    if header == b"content-length" and (
        not value.strip().isdigit() or int(value) > policy.body.max_bytes
    ):
        return 413, JSON_TOO_LARGE if policy.body is Body.JSON else FORM_TOO_LARGE
    return None  # a chunked body is bounded as it is read (`api.routing.read_form`, `read_json`)
