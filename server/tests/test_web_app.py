"""The web app over HTTP: signing in and out, sessions, CSRF, tenants kept apart, escaping,
credentials created, rolled and revoked as the API then sees them, and its pages."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from phonewagon_server import demo
from phonewagon_server.api import create_app
from phonewagon_server.cli import main
from phonewagon_server.config import Rate, Settings
from phonewagon_server.db import Database
from phonewagon_server.logs import JsonFormatter
from server_testkit import (
    NOW_MS,
    PASSWORD,
    PUBLIC_URL,
    FakeClock,
    Tenant,
    World,
    csrf_token,
    sign_in,
)

HOUR = 3600
SECRET_FIELD = re.compile(r'id="new-client-secret"[^>]*value="([^"]+)"')
ID_FIELD = re.compile(r'id="new-client-id"[^>]*value="([^"]+)"')
XSS = "<script>alert(1)</script>"


@pytest.fixture
def ada(world: World, tenant: Tenant) -> str:
    return world.user(tenant, "ada@example.com")


@pytest.fixture
def signed_in(web: TestClient, ada: str) -> TestClient:
    assert sign_in(web, ada).status_code == 303
    return web


def session_cookie(client: TestClient) -> str | None:
    return client.cookies.get("pw_session")


def create_credential(client: TestClient, name: str = "") -> tuple[str, str]:
    page = client.get("/app/settings/credentials")
    created = client.post(
        "/app/settings/credentials", data={"csrf_token": csrf_token(page), "name": name}
    )
    assert created.status_code == 200
    client_id, secret = ID_FIELD.search(created.text), SECRET_FIELD.search(created.text)
    assert client_id
    assert secret
    return client_id[1], secret[1]


def post_form(client: TestClient, page_path: str, path: str, **fields: str) -> object:
    token = csrf_token(client.get(page_path))
    return client.post(path, data={"csrf_token": token, **fields}, follow_redirects=False)


# --- signing in and out ---------------------------------------------------------------------


def test_root_sends_a_browser_into_the_app_and_the_app_to_sign_in(web: TestClient) -> None:
    assert web.get("/", follow_redirects=False).headers["location"] == "/app/calls"
    page = web.get("/app/calls?source=Yelp", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/app/login?next=%2Fapp%2Fcalls%3Fsource%3DYelp"


def cookies(**values: str) -> dict[str, str]:
    """A `Cookie` header of exactly these cookies (the client's own jar left out)."""
    return {"cookie": "; ".join(f"{name}={value}" for name, value in values.items())}


def with_session(client: TestClient, session: str, path: str = "/app/calls") -> int:
    """The status of a page asked for with this session cookie alone."""
    response = client.get(path, headers=cookies(pw_session=session), follow_redirects=False)
    return response.status_code


def test_signing_in_gives_a_new_session_cookie_httponly_lax_and_secure(
    web: TestClient, ada: str
) -> None:
    """A session id planted in the browser beforehand is not adopted (no session fixation)."""
    planted = "pwss_planted-by-an-attacker"
    token = csrf_token(web.get("/app/login"))
    signed = web.post(
        "/app/login",
        data={"csrf_token": token, "email": ada, "password": PASSWORD},
        headers=cookies(pw_sign_in=token, pw_session=planted),
        follow_redirects=False,
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/app/calls"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("pw_session="))
    assert {"HttpOnly", "Secure", "Path=/app", "SameSite=lax"} <= set(cookie.split("; "))
    given = cookie.split(";")[0].removeprefix("pw_session=")
    assert given.startswith("pwss_")
    assert given != planted
    assert with_session(web, given) == 200
    assert with_session(web, planted) == 303


def test_the_session_id_changes_at_every_sign_in(web: TestClient, ada: str) -> None:
    sign_in(web, ada)
    first = session_cookie(web)
    sign_in(web, ada)
    second = session_cookie(web)
    assert first
    assert second
    assert first != second
    assert with_session(web, first) == 303  # ended by the second sign-in
    assert with_session(web, second) == 200


def test_a_wrong_password_or_unknown_email_signs_nobody_in(web: TestClient, ada: str) -> None:
    for email, password in ((ada, "wrong password!"), ("eve@example.com", PASSWORD)):
        refused = sign_in(web, email, password)
        assert refused.status_code == 400
        assert "do not match" in refused.text
        assert session_cookie(web) is None


def test_sign_in_is_throttled_per_email_and_then_refuses_the_right_password_too(
    database: Database, settings: Settings, clock: FakeClock, world: World, tenant: Tenant
) -> None:
    email = world.user(tenant, "ada@example.com")
    throttled = replace(settings, sign_in_limit=Rate(3, 900))
    app = create_app(throttled, database, wall_clock=clock, monotonic=clock)
    with TestClient(app, base_url="https://testserver") as web:
        assert [sign_in(web, email, "wrong password!").status_code for _ in range(3)] == [400] * 3
        refused = sign_in(web, email)
        assert refused.status_code == 429
        assert "Too many sign-in attempts" in refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert session_cookie(web) is None
        clock.advance(901)
        assert sign_in(web, email).status_code == 303


def test_sign_in_is_throttled_per_address_whatever_the_email(
    database: Database, settings: Settings, clock: FakeClock, world: World, tenant: Tenant
) -> None:
    email = world.user(tenant, "ada@example.com")
    throttled = replace(settings, sign_in_address_limit=Rate(2, 900))
    app = create_app(throttled, database, wall_clock=clock, monotonic=clock)
    with TestClient(app, base_url="https://testserver") as web:
        for n in range(2):
            assert sign_in(web, f"guess{n}@example.com", "x" * 12).status_code == 400
        assert sign_in(web, email).status_code == 429


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(
    signed_in: TestClient,
) -> None:
    cookie = session_cookie(signed_in)
    assert cookie
    out = post_form(signed_in, "/app/calls", "/app/logout")
    assert out.status_code == 303  # type: ignore[attr-defined]
    assert with_session(signed_in, cookie) == 303


def test_users_disable_ends_every_session_of_that_user(
    signed_in: TestClient, database_url: str, ada: str
) -> None:
    assert signed_in.get("/app/calls").status_code == 200
    done = CliRunner().invoke(main, ["users", "disable", ada, "--database-url", database_url])
    assert done.exit_code == 0, done.output
    assert signed_in.get("/app/calls", follow_redirects=False).status_code == 303
    assert sign_in(signed_in, ada).status_code == 400


def test_a_set_password_link_works_once_and_then_the_password_signs_in(
    web: TestClient, database_url: str, tenant: Tenant
) -> None:
    done = CliRunner().invoke(
        main,
        [
            "users",
            "create",
            "--account",
            str(tenant.account_id),
            "Bo@Example.com",
            "--json",
            "--database-url",
            database_url,
        ],
        env={"PHONEWAGON_PUBLIC_URL": "https://app.example.com"},
    )
    assert done.exit_code == 0, done.output
    created = json.loads(done.output)
    assert created["email"] == "bo@example.com"
    link = created["set_password_url"]
    assert link.startswith("https://app.example.com/app/set-password?token=pwst_")
    path = link.removeprefix("https://app.example.com")
    form = web.get(path)
    assert form.status_code == 200
    assert "bo@example.com" in form.text
    token = link.rsplit("=", 1)[1]
    fields = {"csrf_token": csrf_token(form), "token": token, "password": "a new long password"}
    differ = web.post("/app/set-password", data=fields | {"confirm": "something else"})
    assert differ.status_code == 400
    assert "differ" in differ.text
    fields |= {"confirm": fields["password"], "csrf_token": csrf_token(differ)}
    set_ = web.post("/app/set-password", data=fields, follow_redirects=False)
    assert set_.status_code == 303
    assert web.get(path).status_code == 404  # used up
    assert sign_in(web, "bo@example.com", "a new long password").status_code == 303


def test_users_create_with_a_password_on_stdin_and_refusals(
    database_url: str, tenant: Tenant
) -> None:
    def create(email: str, password: str) -> object:
        args = ["users", "create", "--account", str(tenant.account_id), email, "--password-stdin"]
        return CliRunner().invoke(
            main, [*args, "--json", "--database-url", database_url], input=password + "\n"
        )

    made = create("cy@example.com", "long enough password")
    assert made.exit_code == 0, made.output  # type: ignore[attr-defined]
    assert "set_password_url" not in json.loads(made.output)  # type: ignore[attr-defined]
    assert create("cy@example.com", "long enough password").exit_code == 1  # type: ignore[attr-defined]
    assert create("dee@example.com", "short").exit_code == 2  # type: ignore[attr-defined]
    assert create("not an email", "long enough password").exit_code == 2  # type: ignore[attr-defined]


# --- CSRF, tenants, escaping ------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    signed_in: TestClient, tenant: Tenant
) -> None:
    before = signed_in.get("/app/settings/credentials").text.count("<code>pwid_")
    for token in ({}, {"csrf_token": "forged"}):
        refused = signed_in.post("/app/settings/credentials", data={"name": "evil", **token})
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
    revoke = signed_in.post(f"/app/settings/credentials/{tenant.client_id}/revoke", data={})
    assert revoke.status_code == 403
    assert signed_in.get("/companies", auth=tenant.auth).status_code == 200
    after = signed_in.get("/app/settings/credentials").text
    assert after.count("<code>pwid_") == before
    assert "evil" not in after


def test_a_sign_in_form_without_its_token_or_with_another_cookie_is_refused(
    web: TestClient, ada: str
) -> None:
    fields = {"email": ada, "password": PASSWORD}
    assert web.post("/app/login", data=fields).status_code == 403
    token = csrf_token(web.get("/app/login"))
    for cookie in ("forged.0000", token.split(".")[0] + ".0000", ""):
        forged = web.post(
            "/app/login",
            data=fields | {"csrf_token": cookie or token},
            headers=cookies(pw_sign_in=cookie),
        )
        assert forged.status_code == 403, cookie
    assert session_cookie(web) is None


def test_another_accounts_ids_give_404_anywhere_in_the_app(
    signed_in: TestClient, world: World, tenant: Tenant
) -> None:
    other = world.tenant("Other Agency")
    for path in (
        f"/app/calls?company={other.company.id}",
        f"/app/calls?campaign={other.campaign.id}",
        "/app/calls?company=99999999",
        f"/app/settings/credentials/{other.client_id}/revoke",
    ):
        response = signed_in.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
    for action, fields in (("roll", {"keep": "now"}), ("revoke", {})):
        path = f"/app/settings/credentials/{other.client_id}/{action}"
        response = post_form(signed_in, "/app/settings/credentials", path, **fields)
        assert response.status_code == 404, path  # type: ignore[attr-defined]
    assert signed_in.get("/companies", auth=other.auth).status_code == 200  # untouched


def test_names_and_callers_that_look_like_script_show_as_text(
    signed_in: TestClient, world: World, tenant: Tenant
) -> None:
    company = world.company(tenant, XSS)
    campaign = world.campaign(company, XSS)
    world.calls(tenant, [NOW_MS - 1000], campaign, contact_name=XSS, user_source=XSS)
    create_credential(signed_in, name=XSS)
    for path in ("/app/calls", "/app/settings/credentials", f"/app/calls?source={XSS}"):
        page = signed_in.get(path)
        assert page.status_code == 200
        assert XSS not in page.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path


def test_errors_under_app_are_html_and_the_apis_stay_problem_json(signed_in: TestClient) -> None:
    page = signed_in.get("/app/nowhere")
    assert page.status_code == 404
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1" in page.text
    assert signed_in.get("/app/calls?before=garbage").status_code == 400
    api = signed_in.get("/nowhere")
    assert api.headers["content-type"] == "application/problem+json"


def test_app_pages_carry_a_strict_csp_and_no_inline_script_or_style(
    signed_in: TestClient,
) -> None:
    for path in ("/app/login", "/app/calls", "/app/tracking", "/app/settings/credentials"):
        page = signed_in.get(path)
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src https://api.phonewagon.test/app/static/;" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        assert "form-action 'self'" in policy
        assert page.headers["cache-control"] == "no-store"
        assert re.search(r"<script(?![^>]*\ssrc=)", page.text) is None, path
        assert " style=" not in page.text, path
        assert "<style" not in page.text, path
    css = signed_in.get("/app/static/app.css")
    assert css.headers["content-type"].startswith("text/css")
    assert signed_in.get("/app/static/missing.js").status_code == 404


# --- credentials, as the API sees them --------------------------------------------------------


def test_a_created_credential_is_shown_once_and_works_at_once(signed_in: TestClient) -> None:
    client_id, secret = create_credential(signed_in, name="Looker")
    assert client_id.startswith("pwid_")
    assert secret.startswith("pwsk_")
    assert signed_in.get("/companies", auth=(client_id, secret)).status_code == 200
    page = signed_in.get("/app/settings/credentials").text
    assert client_id in page
    assert "Looker" in page
    assert secret not in page


def roll(signed_in: TestClient, client_id: str, *, keep: str) -> tuple[str, str]:
    """Roll the credential from its page, keeping the old secret for `keep`: the page answered,
    and the new secret it shows once."""
    rolled = post_form(
        signed_in,
        "/app/settings/credentials",
        f"/app/settings/credentials/{client_id}/roll",
        keep=keep,
    )
    page: str = rolled.text  # type: ignore[attr-defined]
    new = SECRET_FIELD.search(page)
    assert new
    return page, new[1]


def test_a_roll_keeps_the_old_secret_for_the_chosen_while(
    signed_in: TestClient, clock: FakeClock
) -> None:
    client_id, old = create_credential(signed_in, name="ETL")
    page, new = roll(signed_in, client_id, keep="1h")
    assert new != old
    assert "keeps working until" in page
    for secret in (old, new):
        assert signed_in.get("/companies", auth=(client_id, secret)).status_code == 200
    clock.advance(HOUR + 10)  # past the grace, and past the credential cache
    assert signed_in.get("/companies", auth=(client_id, old)).status_code == 401
    assert signed_in.get("/companies", auth=(client_id, new)).status_code == 200


def test_a_roll_that_ends_the_old_secret_now(signed_in: TestClient, clock: FakeClock) -> None:
    client_id, old = create_credential(signed_in)
    _, new = roll(signed_in, client_id, keep="now")
    assert signed_in.get("/companies", auth=(client_id, old)).status_code == 401
    assert signed_in.get("/companies", auth=(client_id, new)).status_code == 200


def test_revoking_asks_to_confirm_then_the_api_refuses_the_credential(
    signed_in: TestClient, clock: FakeClock
) -> None:
    client_id, secret = create_credential(signed_in)
    assert signed_in.get("/companies", auth=(client_id, secret)).status_code == 200
    confirm = signed_in.get(f"/app/settings/credentials/{client_id}/revoke")
    assert "Revoke credential</button>" in confirm.text
    done = signed_in.post(
        f"/app/settings/credentials/{client_id}/revoke",
        data={"csrf_token": csrf_token(confirm)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    clock.advance(6)  # the credential cache's few seconds
    assert signed_in.get("/companies", auth=(client_id, secret)).status_code == 401
    assert "Revoked" in signed_in.get("/app/settings/credentials").text


def test_last_used_is_recorded_to_the_hour_when_the_database_is_asked(
    signed_in: TestClient, tenant: Tenant
) -> None:
    assert "Never" in signed_in.get("/app/settings/credentials").text
    assert signed_in.get("/companies", auth=tenant.auth).status_code == 200
    hour = time.strftime("%Y-%m-%d %H:00", time.gmtime(NOW_MS // 1000))
    deadline = time.monotonic() + 10  # written in a thread of its own, off the request's path
    while hour not in (page := signed_in.get("/app/settings/credentials").text):
        assert time.monotonic() < deadline, page
        time.sleep(0.05)


# --- the pages -------------------------------------------------------------------------------


def test_calls_are_paged_newest_first_with_a_before_cursor_and_none_twice(
    signed_in: TestClient, world: World, tenant: Tenant
) -> None:
    sids = world.calls(tenant, [NOW_MS - 1000 * (n // 3) for n in range(120)])
    seen: list[str] = []
    path: str | None = "/app/calls"
    while path:
        page = signed_in.get(path)
        assert page.status_code == 200
        seen += re.findall(r'data-sid="([^"]+)"', page.text)
        found = re.search(r'<a class="button" href="([^"]+)" rel="next">', page.text)
        path = found[1].replace("&amp;", "&") if found else None
    assert sorted(seen) == sorted(sids)
    assert len(seen) == len(set(seen))


def test_calls_filter_by_source_company_campaign_and_dates(
    signed_in: TestClient, world: World, tenant: Tenant
) -> None:
    other_campaign = world.campaign(tenant.company, "Yelp")
    yelp = world.calls(tenant, [NOW_MS - 5000], other_campaign, user_source="Yelp")
    google = world.calls(tenant, [NOW_MS - 90 * 86_400_000], user_source="Google Ads")

    def shown(query: str) -> set[str]:
        page = signed_in.get(f"/app/calls?{query}")
        assert page.status_code == 200
        return set(re.findall(r'data-sid="([^"]+)"', page.text))

    assert shown("source=Yelp") == set(yelp)
    assert shown(f"campaign={other_campaign.id}") == set(yelp)
    assert shown(f"company={tenant.company.id}") == set(yelp + google)
    assert shown("to=2023-09-01") == set(google)
    assert shown("from=2023-09-01&source=Google+Ads") == set()


def test_the_chart_draws_the_last_30_days_by_source_without_script(
    signed_in: TestClient, world: World, tenant: Tenant
) -> None:
    world.calls(tenant, [NOW_MS - 1000] * 3, user_source="Yelp")
    world.calls(tenant, [NOW_MS - 2 * 86_400_000], user_source="Google Ads")
    world.calls(tenant, [NOW_MS - 40 * 86_400_000], user_source="Bing Ads")  # too old
    page = signed_in.get("/app/calls").text
    assert '<svg class="chart"' in page
    assert "Yelp" in page
    assert "Google Ads" in page
    legend = re.findall(
        r'<li><span class="swatch[^>]*></span>([^<]+) <span class="small">(\d+)', page
    )
    assert dict(legend) == {"Yelp": "3", "Google Ads": "1"}


def test_tracking_lists_the_accounts_numbers_only(
    signed_in: TestClient, database_url: str, world: World, tenant: Tenant
) -> None:
    other = world.tenant("Other Agency")
    for campaign, number in (
        (tenant.campaign.id, "+15035550100"),
        (other.campaign.id, "+15035550199"),
    ):
        done = CliRunner().invoke(
            main,
            [
                "numbers",
                "add",
                number,
                "--campaign",
                campaign,
                "--forward-to",
                "+15035550142",
                "--source",
                "Yelp",
                "--database-url",
                database_url,
            ],
        )
        assert done.exit_code == 0, done.output
    page = signed_in.get("/app/tracking").text
    assert "+15035550100" in page
    assert "+15035550142" in page
    assert "Yelp" in page
    assert "+15035550199" not in page
    assert "No website pools yet" in page


def run_cli(*args: str, database_url: str) -> str:
    done = CliRunner().invoke(main, [*args, "--database-url", database_url])
    assert done.exit_code == 0, done.output
    return done.output


def test_tracking_shows_each_pool_and_the_snippet_of_its_companys_site_only(
    signed_in: TestClient, database_url: str, world: World, tenant: Tenant
) -> None:
    other = world.tenant("Other Agency")
    for owner, campaign_id, target in (
        (tenant, "w1", "+15035550100"),
        (other, "w2", "+15035550177"),
    ):
        run_cli(
            "campaigns", "create", "--company", str(owner.company.id), "Website", "--id",
            campaign_id, "--swap-target", target, database_url=database_url,
        )  # fmt: skip
    run_cli(
        "numbers", "add", "+18445550161", "--campaign", "w1", "--forward-to", "+15035550100",
        database_url=database_url,
    )  # fmt: skip
    run_cli(
        "dni", "origins", "--company", str(tenant.company.id), "https://www.acme.example",
        database_url=database_url,
    )  # fmt: skip
    key = json.loads(
        run_cli(
            "dni",
            "snippet",
            "--company",
            str(tenant.company.id),
            "--json",
            database_url=database_url,
        )
    )["key"]
    other_key = json.loads(
        run_cli(
            "dni",
            "snippet",
            "--company",
            str(other.company.id),
            "--json",
            database_url=database_url,
        )
    )["key"]

    page = signed_in.get("/app/tracking").text
    snippet = (
        f"&lt;script async src=&#34;{PUBLIC_URL}/dni.js&#34;"
        f" data-key=&#34;{key}&#34;&gt;&lt;/script&gt;"
    )
    assert f'value="{snippet}"' in page
    assert f'aria-label="Copy snippet for {tenant.company.name}"' in page
    assert "+15035550100" in page
    assert "+18445550161" in page
    assert "Visits are recorded from https://www.acme.example only." in page
    assert other_key not in page
    assert "+15035550177" not in page


# --- logs -------------------------------------------------------------------------------------


def test_no_password_secret_token_or_session_id_reaches_a_log_line(
    web: TestClient, database_url: str, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    done = CliRunner().invoke(
        main,
        [
            "users",
            "create",
            "--account",
            str(tenant.account_id),
            "lo@example.com",
            "--json",
            "--database-url",
            database_url,
        ],
    )
    link = json.loads(done.output)["set_password_url"]
    token = link.rsplit("=", 1)[1]
    path = "/app/set-password?token=" + token
    form = web.get(path)
    password = "my very own secret phrase"
    web.post(
        "/app/set-password",
        data={
            "csrf_token": csrf_token(form),
            "token": token,
            "password": password,
            "confirm": password,
        },
    )
    sign_in(web, "lo@example.com", password)
    session = session_cookie(web)
    client_id, secret = create_credential(web)
    web.get("/companies", auth=(client_id, secret))
    web.get(f"/app/calls?x={session}&y={secret}")  # pasted where they do not belong
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("/app/set-password" in line for line in lines)
    for value in (token, password, session, secret, token.removeprefix("pwst_")):
        assert value
        assert not any(value in line for line in lines), value


def test_the_demos_person_signs_in_and_sees_the_demo_calls(
    web: TestClient, database: Database
) -> None:
    data = demo.load_demo(database, now_ms=NOW_MS, scale=0.01)
    assert sign_in(web, data.user_email, data.user_password).status_code == 303
    page = web.get("/app/calls")
    assert page.status_code == 200
    assert data.companies[0].name in page.text
    assert 'data-sid="CA' in page.text
    again = demo.load_demo(database, now_ms=NOW_MS, scale=0.01)  # reused, its person kept
    assert (again.created, again.user_email) == (False, data.user_email)
