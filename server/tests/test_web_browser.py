"""The web app in a real browser (Debian's Chromium, driven by Playwright) against a real
`phonewagon-server serve` on a real port: sign in, create, use, roll and revoke a credential,
sign out. Elements are found as people find them: by role and label."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from browser_kit import CHROMIUM, needs_chromium
from phonewagon_server.config import Settings
from server_testkit import clean_env
from test_e2e_serve import COMMAND, Server, cli

EMAIL = "ada@example.com"
PASSWORD = "a long browser password"

pytestmark = needs_chromium


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return clean_env() | {"PHONEWAGON_DATABASE_URL": database_url}


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[Server]:
    account = cli("accounts", "create", "Browser Agency", env=env)
    done = subprocess.run(
        [COMMAND, "users", "create", "--account", str(account["account_id"]), EMAIL,
         "--password-stdin", "--json"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    running = Server(["serve"], env)
    yield running
    running.stop()


def sign_in(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/app/login?next=%2Fapp%2Fcalls")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Calls", exact=True)).to_be_visible()


def status_with(server: Server, client_id: str, secret: str) -> int:
    return httpx.get(f"{server.url}/companies", auth=(client_id, secret)).status_code


def test_sign_in_and_create_a_credential_that_works(browser: Browser, server: Server) -> None:
    """On SQLite and on PostgreSQL."""
    page = browser.new_page()
    violations = watch_csp(page)
    sign_in(page, server)
    page.get_by_role("link", name="Account Settings").click()
    expect(page.get_by_role("heading", name="Credentials", exact=True)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Looker")
    page.get_by_role("button", name="Create credential").click()
    client_id = page.get_by_label("Client ID", exact=True).input_value()
    secret = page.get_by_label("Client secret", exact=True).input_value()
    assert client_id.startswith("pwid_")
    assert secret.startswith("pwsk_")
    assert status_with(server, client_id, secret) == 200
    page.get_by_role("button", name="Copy Client secret").click()
    expect(page.get_by_role("button", name="Copy Client secret")).to_have_text("Copied")
    assert violations == []
    page.close()


def test_roll_revoke_and_sign_out_end_what_they_say(browser: Browser, server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    violations = watch_csp(page)
    sign_in(page, server)
    page.get_by_role("link", name="Account Settings").click()
    page.get_by_label("Name", exact=True).fill("ETL")
    page.get_by_role("button", name="Create credential").click()
    client_id = page.get_by_label("Client ID", exact=True).input_value()
    old = page.get_by_label("Client secret", exact=True).input_value()
    assert status_with(server, client_id, old) == 200

    page.get_by_label("Keep the old secret of ETL for").select_option(label="1 hour")
    page.get_by_role("button", name="Roll ETL").click()
    expect(page.get_by_text("The previous secret keeps working until")).to_be_visible()
    new = page.get_by_label("Client secret", exact=True).input_value()
    assert new != old
    assert (status_with(server, client_id, old), status_with(server, client_id, new)) == (200, 200)

    page.get_by_role("link", name="Revoke ETL").click()
    page.get_by_role("button", name="Revoke credential").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    # A verified credential is trusted for PHONEWAGON_CREDENTIAL_CACHE_SECONDS after it was
    # checked: the revocation takes effect within that time.
    deadline = time.monotonic() + Settings().credential_cache_seconds + 2
    while (status := status_with(server, client_id, new)) != 401:
        assert status == 200
        assert time.monotonic() < deadline, "the revoked credential is still accepted"
        time.sleep(0.2)

    session = next(c["value"] for c in context.cookies() if c["name"] == "pw_session")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    again = httpx.get(f"{server.url}/app/calls", cookies={"pw_session": session})
    assert again.status_code == 303
    assert again.headers["location"].startswith("/app/login")
    assert violations == []
    context.close()

    _, _, log = server.stop()
    assert "/app/login" in log
    for value in (PASSWORD, old, new, session):
        assert value not in log


def watch_csp(page: Page) -> list[str]:
    """Messages of the page's console that say the CSP blocked something: there should be none."""
    found: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", listen)
    return found


def test_chromium_is_the_one_the_ci_installs() -> None:
    assert shutil.which("chromium") == CHROMIUM
