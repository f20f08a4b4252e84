"""The web app's route table, and what its handlers share."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.routing import Auth, Body, FormHandler, PolicyRoute, endpoint
from phonewagon_server.config import Settings
from phonewagon_server.ratelimit import Clock, build_limiter
from phonewagon_server.web import credentials, pages, signin
from phonewagon_server.web.context import WebContext
from phonewagon_server.web.render import build_templates, load_static

CREDENTIAL = "/app/settings/credentials/{client_id}"


def app_routes() -> list[PolicyRoute]:
    """The web app's routes, each declaring its policy; none is in /openapi.json."""
    return [
        endpoint("/", pages.to_app, auth=Auth.PUBLIC, headers="app", include_in_schema=False),
        endpoint("/app", pages.to_app, auth=Auth.PUBLIC, headers="app", include_in_schema=False),
        endpoint("/app/", pages.to_app, auth=Auth.PUBLIC, headers="app", include_in_schema=False),
        endpoint(
            "/app/static/{name}",
            pages.static_file,
            auth=Auth.PUBLIC,
            headers="app",
            include_in_schema=False,
        ),
        *_public_form_page("/app/login", signin.sign_in_page, signin.sign_in),
        *_public_form_page(
            "/app/set-password", signin.set_password_page, signin.set_password_from_link
        ),
        endpoint("/app/logout", signin.sign_out, auth=Auth.SESSION, body=Body.FORM),
        endpoint("/app/calls", pages.calls_page, auth=Auth.SESSION),
        endpoint("/app/calls/{sid}/recording", pages.recording, auth=Auth.SESSION),
        endpoint("/app/tracking", pages.tracking_page, auth=Auth.SESSION),
        endpoint("/app/settings", pages.to_settings, auth=Auth.SESSION),
        endpoint("/app/settings/credentials", credentials.credentials_page, auth=Auth.SESSION),
        endpoint(
            "/app/settings/credentials",
            credentials.create_credential,
            auth=Auth.SESSION,
            body=Body.FORM,
        ),
        endpoint(
            f"{CREDENTIAL}/roll", credentials.roll_credential, auth=Auth.SESSION, body=Body.FORM
        ),
        endpoint(f"{CREDENTIAL}/revoke", credentials.confirm_revoke_page, auth=Auth.SESSION),
        endpoint(
            f"{CREDENTIAL}/revoke", credentials.revoke_credential, auth=Auth.SESSION, body=Body.FORM
        ),
    ]


def _public_form_page(
    path: str, page: Callable[[Request], Response], form: FormHandler
) -> tuple[PolicyRoute, PolicyRoute]:
    """A page anyone may open (GET), and its CSRF-checked form (POST)."""
    return (
        endpoint(path, page, auth=Auth.PUBLIC, headers="app", include_in_schema=False),
        endpoint(
            path, form, auth=Auth.PUBLIC, body=Body.FORM, headers="app", include_in_schema=False
        ),
    )


def build_web_context(settings: Settings, *, clock: Clock) -> WebContext:
    return WebContext(
        templates=build_templates(),
        static=load_static(),
        sign_ins_by_email=build_limiter(settings.sign_in_limit, settings, clock=clock),
        sign_ins_by_address=build_limiter(settings.sign_in_address_limit, settings, clock=clock),
        secure_cookies=settings.public_url.startswith("https://"),
    )
