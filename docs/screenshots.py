"""Screenshots of the web app for the README: every page at a desktop's and a phone's width.

    make screenshots        # or: uv run python docs/screenshots.py

Loads the demo data (a third of its calls) into a scratch SQLite file, adds three tracking
numbers, serves it with `phonewagon-server serve`, signs in as the demo's person in Debian's
Chromium (Playwright) and writes docs/screenshots/<page>-<desktop|phone>.png.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from phonewagon_server.db import open_database
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.db.numbers import TrackingNumber, add_number
from phonewagon_server.demo import DEMO_USER_EMAIL, DEMO_USER_PASSWORD, load_demo

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}


def prepare(url: str) -> None:
    database = open_database(url)
    upgrade(database)
    data = load_demo(database, now_ms=int(time.time() * 1000), scale=0.3)
    campaigns = {campaign.name: campaign for campaign in data.campaigns}
    with database.transaction(write=True) as tx:
        for n, (name, source) in enumerate(
            [("Google Ads", "Google Ads"), ("Yelp", "Yelp"), ("Facebook", "")]
        ):
            campaign = campaigns.get(name) or data.campaigns[n]
            number = TrackingNumber(
                f"+1503555{100 + n:04d}", data.account_id, campaign.company_id, campaign.id,
                "+15035550142", source,
            )  # fmt: skip
            add_number(tx, number, now=int(time.time() * 1000))
    database.close()


def serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = shutil.which("phonewagon-server") or str(
        Path(sys.executable).with_name("phonewagon-server")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEWAGON_")}
    process = subprocess.Popen(  # noqa: S603 - our own command
        [command, "serve", "--port", str(port), "--database-url", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    sys.exit("the server did not start")


def shoot(page: Page, name: str, size: str) -> None:
    path = OUT / f"{name}-{size}.png"
    page.screenshot(path=str(path))
    print(f"wrote {path.relative_to(OUT.parent.parent)}")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'screens.db'}"
        prepare(url)
        process, base = serve(url)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                for size, (width, height) in WIDTHS.items():
                    context = browser.new_context(viewport={"width": width, "height": height})
                    page = context.new_page()
                    page.goto(f"{base}/app/login")
                    shoot(page, "login", size)
                    page.get_by_label("Email", exact=True).fill(DEMO_USER_EMAIL)
                    page.get_by_label("Password", exact=True).fill(DEMO_USER_PASSWORD)
                    page.get_by_role("button", name="Sign in").click()
                    page.get_by_role("heading", name="Calls", exact=True).wait_for()
                    shoot(page, "calls", size)
                    page.locator("table.calls").scroll_into_view_if_needed()
                    shoot(page, "calls-list", size)
                    page.goto(f"{base}/app/tracking")
                    shoot(page, "tracking", size)
                    page.goto(f"{base}/app/settings/credentials")
                    shoot(page, "credentials", size)
                    page.get_by_label("Name", exact=True).fill("Looker Studio export")
                    page.get_by_role("button", name="Create credential").click()
                    page.get_by_label("Client secret", exact=True).wait_for()
                    shoot(page, "credentials-secret-shown-once", size)
                    context.close()
                browser.close()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
