"""Every route declares its policy, and the app's route table is walked to hold it to it."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from phonewagon_server.api import app as app_module
from phonewagon_server.api import calls, companies, create_app
from phonewagon_server.api.context import AppContext
from phonewagon_server.api.routing import (
    MAX_FORM_BYTES,
    Auth,
    Body,
    Policies,
    Policy,
    PolicyRoute,
    endpoint,
)
from phonewagon_server.api.security import API_POLICY, DOCS_POLICY, app_policy
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.web.sessions import SignedIn
from server_testkit import PUBLIC_URL, Tenant, World, sign_in

# Parameters every endpoint refuses, or would: unknown, malformed, out of range, contradictory.
BAD_QUERIES = ["", "?compnay_id=1", "?company_id=abc&page_size=-1", "?start_time=9&end_time=1"]
# The website-visit paths are for the script on customers' pages: docs/dni.md documents them.
UNDOCUMENTED = {"/openapi.json", "/docs", "/metrics", "/dni.js", "/dni/visits", "/dni/heartbeat"}
CSP = {"api": API_POLICY, "docs": DOCS_POLICY, "app": app_policy(PUBLIC_URL), "asset": API_POLICY}
SAMPLE = {
    "{name}": "app.css",
    "{client_id}": "pwid_000000000000000000000000",
    "{sid}": "CA" + "0" * 32,
}


def concrete(path: str) -> str:
    """A path of the route's, its parameters filled in."""
    for parameter, value in SAMPLE.items():
        path = path.replace(parameter, value)
    return path


FORM_TYPE = "application/x-www-form-urlencoded"


def ok(request: Request) -> Response:
    return Response("ok")


def running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def routes(api: TestClient) -> list[PolicyRoute]:
    table = api.app.routes  # type: ignore[attr-defined]
    assert all(isinstance(route, PolicyRoute) for route in table)
    return list(table)


def routes_with(api: TestClient, auth: Auth) -> list[PolicyRoute]:
    found = [route for route in routes(api) if route.policy.auth is auth]
    assert found
    return found


def test_every_route_of_the_app_declares_a_policy(api: TestClient) -> None:
    assert {route.path for route in routes(api)} >= {"/companies", "/calls", *UNDOCUMENTED}
    for route in routes(api):
        assert isinstance(route.policy, Policy)
        if route.policy.auth is Auth.TWILIO_SIGNATURE:  # Twilio's form, signed
            assert route.policy.body is Body.FORM, route.path
            assert route.methods == {"POST"}, route.path
        elif route.policy.body is Body.FORM:  # the web app's forms: posted, CSRF-checked
            assert route.methods == {"POST"}, route.path
            assert route.policy.auth in (Auth.SESSION, Auth.PUBLIC), route.path
            assert route.path.startswith("/app/"), route.path
        elif route.policy.body is Body.JSON:  # what the website-visit script posts
            assert route.methods == {"POST"}, route.path
            assert route.policy.auth is Auth.PUBLIC, route.path
            assert route.path.startswith("/dni/"), route.path
        elif route.methods == {"OPTIONS"}:  # their CORS preflights
            assert route.path.startswith("/dni/"), route.path
        else:
            assert route.methods == {"GET", "HEAD"}, route.path


def test_every_web_app_route_is_html_under_app_and_undocumented(api: TestClient) -> None:
    for route in routes(api):
        under_app = route.path == "/" or route.path.startswith("/app")
        assert (route.policy.headers == "app") == under_app, route.path
        if under_app:
            assert not route.include_in_schema, route.path
    assert {route.path for route in routes_with(api, Auth.SESSION)} >= {
        "/app/calls",
        "/app/tracking",
        "/app/settings/credentials",
    }


def test_every_account_route_answers_401_without_credentials_whatever_its_parameters(
    api: TestClient,
) -> None:
    for route in routes_with(api, Auth.ACCOUNT):
        for query in BAD_QUERIES:
            response = api.get(route.path + query)
            assert response.status_code == 401, (route.path, query)
            assert response.headers["www-authenticate"] == 'Basic realm="phonewagon"'
            assert "ratelimit" not in response.headers


def test_every_public_route_answers_without_credentials(api: TestClient) -> None:
    for route in routes_with(api, Auth.PUBLIC):
        if "GET" not in (route.methods or ()):
            continue
        response = api.get(concrete(route.path), follow_redirects=False)
        # 303: into the web app; 404: a set-password link without its token
        expected = (404,) if route.path == "/app/set-password" else (200, 303)
        assert response.status_code in expected, route.path
        assert "www-authenticate" not in response.headers
        assert "ratelimit" not in response.headers  # no account's quota spent


def test_every_session_route_sends_a_stranger_to_sign_in_and_does_nothing(
    api: TestClient,
) -> None:
    for route in routes_with(api, Auth.SESSION):
        for method in route.methods or ():
            form = {"data": {"name": "x"}} if route.policy.body is Body.FORM else {}
            response = api.request(method, concrete(route.path), follow_redirects=False, **form)
            assert response.status_code == 303, (method, route.path)
            assert response.headers["location"].startswith("/app/login"), route.path
            assert "set-cookie" not in response.headers


def test_every_route_refuses_a_body_it_does_not_declare(api: TestClient, tenant: Tenant) -> None:
    for route in routes(api):
        if route.policy.body is Body.NONE:
            response = api.request("GET", concrete(route.path), auth=tenant.auth, content=b"{}")
            assert response.status_code == 413, route.path
    assert api.request("GET", "/nowhere", content=b"{}").status_code == 413


def test_every_form_route_refuses_a_form_past_its_bound_before_any_work(
    api: TestClient, tenant: Tenant
) -> None:
    forms = [route for route in routes(api) if route.policy.body is Body.FORM]
    assert forms
    large = b"name=" + b"x" * MAX_FORM_BYTES
    for route in forms:
        path = concrete(route.path)
        response = api.post(path, content=large, headers={"content-type": FORM_TYPE})
        assert response.status_code == 413, route.path
        assert response.headers["connection"] == "close"

        def chunks() -> Any:
            yield large[: MAX_FORM_BYTES // 2]
            yield large[MAX_FORM_BYTES // 2 :]

        chunked = api.post(path, content=chunks(), headers={"content-type": FORM_TYPE})
        assert chunked.status_code == 413, route.path  # no Content-Length: bounded as read


def test_every_form_route_refuses_a_form_without_its_csrf_token(
    database: Database, web: TestClient, tenant: Tenant, world: World
) -> None:
    """Signed in or not, a form posted without the token of the page it came from is 403."""
    assert sign_in(web, world.user(tenant, "ada@example.com")).status_code == 303
    for route in routes(web):
        if route.policy.body is not Body.FORM or route.policy.auth is Auth.TWILIO_SIGNATURE:
            continue  # a webhook's form is signed instead: test_twilio_webhooks.py
        for fields in ({"name": "x"}, {"name": "x", "csrf_token": "forged"}):
            response = web.post(concrete(route.path), data=fields, follow_redirects=False)
            assert response.status_code == 403, (route.path, fields)
            assert response.headers["content-type"].startswith("text/html")


def test_every_route_answers_with_its_declared_security_headers(api: TestClient) -> None:
    for route in routes(api):
        response = api.request(next(iter(route.methods or ())), concrete(route.path))
        assert response.headers["content-security-policy"] == CSP[route.policy.headers]
    assert api.get("/nowhere").headers["content-security-policy"] == API_POLICY
    assert api.get("/app/nowhere").headers["content-security-policy"] == CSP["app"]


def test_openapi_json_documents_exactly_the_schema_routes_secured_as_declared(
    api: TestClient,
) -> None:
    spec = api.get("/openapi.json").json()
    documented = {route.path: route for route in routes(api) if route.include_in_schema}
    assert set(spec["paths"]) == set(documented)
    undocumented = {route.path for route in routes(api)} - set(documented)
    assert {path for path in undocumented if not path.startswith("/app")} - {"/"} == UNDOCUMENTED
    assert not any(path.startswith("/app") for path in spec["paths"])
    security = {
        Auth.ACCOUNT: [{"basicAuth": []}],
        Auth.PUBLIC: [],
        Auth.TWILIO_SIGNATURE: [{"twilioSignature": []}],
    }
    for path, route in documented.items():
        for operation in spec["paths"][path].values():
            assert operation["security"] == security[route.policy.auth], path


def test_openapi_json_documents_401_and_the_quota_on_account_routes_only(
    api: TestClient,
) -> None:
    spec = api.get("/openapi.json").json()
    for route in routes(api):
        if not route.include_in_schema:
            continue
        (operation,) = spec["paths"][route.path].values()
        responses = operation["responses"]
        account = route.policy.auth is Auth.ACCOUNT
        assert ("401" in responses) == account, route.path
        assert ("RateLimit" in responses["200"]["headers"]) == account, route.path
        # 429: the account's quota, or an address refused too often (credentials or signatures).
        assert ("429" in responses) == (route.policy.auth is not Auth.PUBLIC), route.path


def test_short_account_routes_run_on_the_event_loop_only_when_the_context_allows(
    api: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/companies and /campaigns run their work (auth included) via `run_short`; /calls always
    in a worker thread."""
    on_loop: dict[str, bool] = {}

    def recorded(path: str, read: Any) -> Any:
        def recording(*args: Any, **kwargs: Any) -> Any:
            on_loop[path] = running_loop()
            return read(*args, **kwargs)

        return recording

    for module, read, path in [
        (companies, "list_companies", "/companies"),
        (companies, "list_campaigns", "/campaigns"),
        (calls, "read_page", "/calls"),
    ]:
        monkeypatch.setattr(module, read, recorded(path, getattr(module, read)))
    for path in ("/companies", "/campaigns", "/calls"):
        assert api.get(path, auth=tenant.auth).status_code == 200
    context: AppContext = api.app.state.context  # type: ignore[attr-defined]
    inline = context.short_work_inline
    assert on_loop == {"/companies": inline, "/campaigns": inline, "/calls": False}


def test_a_route_cannot_be_declared_without_its_auth() -> None:
    with pytest.raises(TypeError, match="auth"):
        endpoint("/new", ok)  # type: ignore[call-overload]


def test_an_account_handler_is_wrapped_and_a_public_one_routed_as_it_is() -> None:
    def page(request: Request, account_id: int) -> Response:
        return Response(str(account_id))

    short = endpoint("/short", page, auth=Auth.ACCOUNT, short=True)
    threaded = endpoint("/threaded", page, auth=Auth.ACCOUNT)
    public = endpoint("/public", ok, auth=Auth.PUBLIC, headers="docs")
    assert inspect.iscoroutinefunction(short.endpoint)
    assert not inspect.iscoroutinefunction(threaded.endpoint)
    assert public.endpoint is ok
    assert (short.name, public.policy) == ("page", Policy(Auth.PUBLIC, Body.NONE, "docs"))
    assert public.methods == {"GET", "HEAD"}


def test_an_app_with_a_route_that_declares_no_policy_is_not_built(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = app_module.api_routes
    plain = Route("/plain", ok, include_in_schema=False)
    monkeypatch.setattr(app_module, "api_routes", lambda: [*declared(), plain])
    with pytest.raises(TypeError, match="declares no policy"):
        create_app(settings, database)


def test_one_method_of_a_path_routed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="routed twice"):
        Policies([endpoint("/x", ok, auth=Auth.PUBLIC), endpoint("/x", ok, auth=Auth.PUBLIC)])


def test_get_and_post_of_one_path_each_have_their_policy() -> None:
    def page(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
        return Response(person.email)

    shown = endpoint("/app/thing", page, auth=Auth.SESSION)
    posted = endpoint("/app/thing", page, auth=Auth.SESSION, body=Body.FORM)
    policies = Policies([shown, posted])
    assert policies.of("/app/thing", "GET") == Policy(Auth.SESSION, Body.NONE, "app")
    assert policies.of("/app/thing", "HEAD") == Policy(Auth.SESSION, Body.NONE, "app")
    assert policies.of("/app/thing", "POST") == Policy(Auth.SESSION, Body.FORM, "app")
    assert policies.of("/app/thing", "DELETE") == policies.of("/app/thing", "GET")
    assert (shown.methods, posted.methods) == ({"GET", "HEAD"}, {"POST"})
    assert not shown.include_in_schema


def test_routes_of_one_path_must_share_their_header_profile() -> None:
    with pytest.raises(ValueError, match="header profiles"):
        Policies(
            [
                endpoint("/x", ok, auth=Auth.PUBLIC),
                endpoint("/x", ok, auth=Auth.PUBLIC, headers="docs", methods=("POST",)),
            ]
        )


def test_a_templated_path_finds_its_routes_policy() -> None:
    route = endpoint("/calls/{call_id:int}", ok, auth=Auth.PUBLIC, headers="docs")
    policies = Policies([endpoint("/calls", ok, auth=Auth.PUBLIC), route])
    assert policies.of("/calls/12") is route.policy
    assert policies.of("/calls/twelve") is None
    assert policies.of("/calls") == Policy(Auth.PUBLIC)
