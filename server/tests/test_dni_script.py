"""The website script `/dni.js` in a real browser (Debian's Chromium, driven by Playwright), against
a fake of the server's side of the DNI contract (`POST /dni/visits`, `POST /dni/heartbeat`).

Two servers on two origins, like a customer's site and Phonewagon: the site serves the landing
pages (http://127.0.0.1:A), the fake serves the script file from the package and the two
endpoints (http://localhost:B), records what it received and answers as the test tells it."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
)
from starlette import routing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

import phonewagon_server
from browser_kit import needs_chromium
from phonewagon_server.twilio.simulator import serve_in_thread

pytestmark = needs_chromium

SCRIPT = Path(phonewagon_server.__file__).parent / "dni" / "static" / "dni.js"
# bytes, gzip -9; docs/dni.md ("Size and caching") states the measured size
GZIPPED_BOUND = 3 * 1024
KEY = "pwk_" + "Ab3_" * 6
VISITOR = "pwv_" + "Zy9-" * 6
VISIT = "vt_" + "Qm7x" * 6  # the server's shape: 16 to 128 of [A-Za-z0-9_-]
TARGET, NUMBER, LATER = "+15035550100", "+19715550188", "+14585550177"
TOLL_TARGET, TOLL_NUMBER = "+18005550199", "+18885550142"
SWAPS = [
    {"target": TARGET, "number": NUMBER},
    {"target": TOLL_TARGET, "number": TOLL_NUMBER},
]
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, for the tests that drive the page's clock
QUERY = "?gclid=Cj0KCQ_test&utm_source=google&utm_medium=cpc"
REFERRER = "https://search.yahoo.com/search?p=plumber"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPAD_AS_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)

# The contract's list of formats, each with what it becomes for TARGET -> NUMBER.
FORMATS = [
    ("(503) 555-0100", "(971) 555-0188"),
    ("503-555-0100", "971-555-0188"),
    ("503.555.0100", "971.555.0188"),
    ("503 555 0100", "971 555 0188"),
    ("+1 503 555 0100", "+1 971 555 0188"),
    ("+1-503-555-0100", "+1-971-555-0188"),
    ("1 (503) 555-0100", "1 (971) 555-0188"),
    ("5035550100", "9715550188"),
    ("+15035550100", "+19715550188"),
    ("Call us: 503-555-0100, today", "Call us: 971-555-0188, today"),
    ("1-800-555-0199", "1-888-555-0142"),  # the second pool's target
]
# Left alone: inside longer runs of digits, and a number that is not a target.
UNTOUCHED = ["Order 45035550100 shipped", "ref 5035550100123", "(503) 555-0199"]

# A test-only switch for document.visibilityState, as a browser tab going to the background.
VISIBILITY = """
(() => {
  let state = "visible";
  const define = (name, get) =>
    Object.defineProperty(Document.prototype, name, {configurable: true, get});
  define("visibilityState", () => state);
  define("hidden", () => state === "hidden");
  window.setVisibility = (next) => {
    state = next;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();
"""
# A test-only prerendered page (Chrome's speculation rules), shown when `activate()` is called.
PRERENDERING = """
(() => {
  let prerendering = true;
  Object.defineProperty(Document.prototype, "prerendering",
                        {configurable: true, get: () => prerendering});
  window.activate = () => {
    prerendering = false;
    document.dispatchEvent(new Event("prerenderingchange"));
  };
})();
"""
NO_LOCAL_STORAGE = """
Object.defineProperty(window, "localStorage", {configurable: true, get() {
  throw new DOMException("The operation is insecure.", "SecurityError");
}});
"""
NO_COOKIES = """
Object.defineProperty(Document.prototype, "cookie", {configurable: true,
  get() { throw new DOMException("The operation is insecure.", "SecurityError"); },
  set(value) { throw new DOMException("The operation is insecure.", "SecurityError"); }});
"""


@dataclass
class Seen:
    method: str
    path: str
    content_type: str
    origin: str


@dataclass
class Fake:
    """The server's side of the contract, steered by the test, and the customer's site."""

    api: str = ""
    site: str = ""
    pages: dict[str, str] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    # How to answer a visit.
    swaps: list[dict[str, str]] = field(default_factory=lambda: list(SWAPS))
    visit_status: int = 200
    visit_raw: bytes | None = None  # instead of the JSON answer
    visit_cors: bool = True
    visit_delay: float = 0.0
    heartbeat_seconds: float = 60
    # How to answer a heartbeat: the same swaps unless told otherwise.
    heartbeat_swaps: list[dict[str, str]] | None = None
    heartbeat_status: int = 200

    def headers(self, request: Request, cors: bool = True) -> dict[str, str]:
        headers = {"Cache-Control": "no-store"}
        if cors:
            headers["Access-Control-Allow-Origin"] = request.headers.get("origin", "*")
            headers["Vary"] = "Origin"
        return headers

    def seen(self, request: Request) -> None:
        self.requests.append(
            Seen(
                request.method,
                request.url.path,
                request.headers.get("content-type", ""),
                request.headers.get("origin", ""),
            )
        )

    async def visit(self, request: Request) -> Response:
        self.seen(request)
        if request.method != "POST":
            return Response(status_code=405)
        self.visits.append(json.loads(await request.body()))
        if self.visit_delay:
            await asyncio.sleep(self.visit_delay)
        answer = self.visit_raw
        if answer is None:
            answer = json.dumps(
                {
                    "visitor": VISITOR,
                    "visit": VISIT,
                    "swaps": self.swaps,
                    "heartbeat_seconds": self.heartbeat_seconds,
                }
            ).encode()
        self.answered.append(time.monotonic())
        return Response(
            answer,
            status_code=self.visit_status,
            media_type="application/json",
            headers=self.headers(request, self.visit_cors),
        )

    async def heartbeat(self, request: Request) -> Response:
        self.seen(request)
        if request.method != "POST":
            return Response(status_code=405)
        self.heartbeats.append(json.loads(await request.body()))
        swaps = self.swaps if self.heartbeat_swaps is None else self.heartbeat_swaps
        return Response(
            json.dumps({"swaps": swaps}),
            status_code=self.heartbeat_status,
            media_type="application/json",
            headers=self.headers(request),
        )

    def api_app(self) -> Starlette:
        async def script(request: Request) -> Response:
            return Response(SCRIPT.read_bytes(), media_type="text/javascript")

        return Starlette(
            routes=[
                routing.Route("/dni.js", script),
                routing.Route("/dni/visits", self.visit, methods=["POST", "OPTIONS"]),
                routing.Route("/dni/heartbeat", self.heartbeat, methods=["POST", "OPTIONS"]),
            ]
        )

    def site_app(self) -> Starlette:
        async def slow(request: Request) -> Response:
            await asyncio.sleep(3.0)  # room for the script and the visit on a busy machine
            return Response("window.slowDone = true;", media_type="text/javascript")

        async def page(request: Request) -> Response:
            name = request.path_params["name"]
            if name not in self.pages:
                return Response(status_code=404)
            return HTMLResponse(self.pages[name])

        return Starlette(routes=[routing.Route("/slow.js", slow), routing.Route("/{name}", page)])

    def snippet(self) -> str:
        return f'<script async src="{self.api}/dni.js" data-key="{KEY}"></script>'

    def landing(self, body: str, *, head: str = "", name: str = "landing") -> str:
        """A landing page with the snippet in its head; returns its URL with a Google Ads query."""
        self.pages[name] = (
            f'<!doctype html><html><head><meta charset="utf-8"><title>Plumbing</title>{head}'
            f"{self.snippet()}</head><body>{body}"
            "<script>window.ticks = 0; setInterval(() => { window.ticks += 1; }, 20);</script>"
            "</body></html>"
        )
        return f"{self.site}/{name}{QUERY}"


@dataclass
class Tab:
    """A page and what it reported: uncaught errors (exceptions and unhandled rejections)."""

    page: Page
    errors: list[str]

    def text(self, element_id: str) -> str:
        return str(self.page.eval_on_selector(f"#{element_id}", "e => e.textContent"))

    def href(self, element_id: str) -> str:
        return str(self.page.get_attribute(f"#{element_id}", "href"))


@pytest.fixture
def fake() -> Iterator[Fake]:
    fake = Fake()
    api, stop_api = serve_in_thread(fake.api_app())
    site, stop_site = serve_in_thread(fake.site_app())
    # Two origins, as on a real site: the page's (127.0.0.1) and Phonewagon's (localhost).
    fake.api, fake.site = api.replace("127.0.0.1", "localhost"), site
    yield fake
    stop_site()
    stop_api()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context()
    yield made
    made.close()


def open_tab(context: BrowserContext, *init_scripts: str) -> Tab:
    page = context.new_page()
    for script in init_scripts:
        page.add_init_script(script)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def console(message: ConsoleMessage) -> None:
        if "Uncaught" in message.text:
            errors.append(message.text)

    page.on("console", console)
    return Tab(page, errors)


def wait_until(done: Callable[[], bool], tab: Tab, seconds: float = 5, what: str = "") -> None:
    """Wait for what the fake saw, letting Playwright handle the page's events meanwhile."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        tab.page.wait_for_timeout(20)


def pause(tab: Tab, seconds: float) -> None:
    tab.page.wait_for_timeout(seconds * 1000)


def body(pairs: list[tuple[str, str]], prefix: str) -> str:
    return "".join(f'<p id="{prefix}{i}">{shown}</p>' for i, (shown, _) in enumerate(pairs))


def swapped(tab: Tab, element_id: str, expected: str) -> None:
    tab.page.wait_for_function(
        "([id, text]) => document.getElementById(id)?.textContent === text",
        arg=[element_id, expected],
        timeout=5000,
    )


# The visit


def test_the_visit_carries_page_referrer_device_key_and_the_visitor_comes_back(
    fake: Fake, context: BrowserContext
) -> None:
    url = fake.landing('<p id="n">503-555-0100</p>')
    tab = open_tab(context)
    tab.page.goto(url, referer=REFERRER)
    swapped(tab, "n", "971-555-0188")

    [visit] = fake.visits
    assert visit == {
        "key": KEY,
        "visitor": None,
        "page": url,
        "referrer": REFERRER,
        "device": "desktop",
    }
    # A CORS simple request from the page's origin: text/plain, no preflight.
    assert fake.requests[0] == Seen("POST", "/dni/visits", "text/plain", fake.site)
    assert all(seen.method == "POST" for seen in fake.requests)

    # The id the server answered is kept, in localStorage and in a first-party cookie.
    assert tab.page.evaluate("localStorage.getItem('phonewagon_visitor')") == VISITOR
    [cookie] = [c for c in context.cookies() if c["name"] == "phonewagon_visitor"]
    assert cookie["value"] == VISITOR
    assert cookie["path"] == "/"
    assert cookie["sameSite"] == "Lax"
    assert cookie["domain"] == "127.0.0.1"  # the site's, not Phonewagon's
    assert abs(cookie["expires"] - (time.time() + 30 * 86400)) < 120

    tab.page.reload()
    swapped(tab, "n", "971-555-0188")
    assert [v["visitor"] for v in fake.visits] == [None, VISITOR]
    assert tab.errors == []


def test_on_an_https_site_the_cookie_is_secure(fake: Fake, context: BrowserContext) -> None:
    """The site and Phonewagon on https, as in production: Playwright answers for both names,
    passing Phonewagon's requests on to the fake."""
    site, api = "https://shop.example", "https://calls.example"
    fake.landing('<p id="n">503-555-0100</p>')
    html = fake.pages["landing"].replace(fake.api, api)

    def serve_site(route: Route) -> None:
        route.fulfill(body=html, content_type="text/html")

    def serve_api(route: Route) -> None:
        route.fulfill(response=route.fetch(url=route.request.url.replace(api, fake.api)))

    context.route(f"{site}/**", serve_site)
    context.route(f"{api}/**", serve_api)
    tab = open_tab(context)
    tab.page.goto(f"{site}/landing{QUERY}")
    swapped(tab, "n", "971-555-0188")
    assert fake.visits[0]["page"] == f"{site}/landing{QUERY}"
    [cookie] = [c for c in context.cookies() if c["name"] == "phonewagon_visitor"]
    assert (cookie["domain"], cookie["secure"], cookie["value"]) == ("shop.example", True, VISITOR)
    assert tab.errors == []


@pytest.mark.parametrize(
    ("user_agent", "touch_points", "device"),
    [
        (IPHONE, 5, "mobile"),
        (ANDROID_PHONE, 5, "mobile"),
        (IPAD, 5, "tablet"),
        (ANDROID_TABLET, 10, "tablet"),
        (IPAD_AS_MAC, 5, "tablet"),  # iPadOS 13+ asks for the desktop site by default
        (IPAD_AS_MAC, 0, "desktop"),  # the same user agent on a Mac
    ],
)
def test_the_device_class_follows_the_browser(
    fake: Fake, browser: Browser, user_agent: str, touch_points: int, device: str
) -> None:
    context = browser.new_context(user_agent=user_agent)
    tab = open_tab(
        context,
        "Object.defineProperty(Navigator.prototype, 'maxTouchPoints', "
        f"{{configurable: true, get: () => {touch_points}}});",
    )
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    swapped(tab, "n", "971-555-0188")
    assert [v["device"] for v in fake.visits] == [device]
    context.close()


def test_without_current_script_it_finds_its_tag_by_its_src(
    fake: Fake, context: BrowserContext
) -> None:
    no_current = (
        "Object.defineProperty(Document.prototype, 'currentScript', "
        "{configurable: true, get: () => null});"
    )
    tab = open_tab(context, no_current)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    swapped(tab, "n", "971-555-0188")
    assert fake.visits[0]["key"] == KEY


def test_a_long_address_is_cut_to_what_the_server_takes(
    fake: Fake, context: BrowserContext
) -> None:
    url = fake.landing('<p id="n">503-555-0100</p>') + "&utm_content=" + "x" * 3000
    tab = open_tab(context)
    tab.page.goto(url)
    swapped(tab, "n", "971-555-0188")
    assert fake.visits[0]["page"] == url[:2048]


def test_a_prerendered_page_records_its_visit_only_once_shown(
    fake: Fake, context: BrowserContext
) -> None:
    tab = open_tab(context, PRERENDERING)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    pause(tab, 1.0)
    assert fake.visits == []
    assert tab.text("n") == "503-555-0100"
    tab.page.evaluate("activate()")
    swapped(tab, "n", "971-555-0188")
    assert [v["key"] for v in fake.visits] == [KEY]
    assert tab.errors == []


def test_unbounce_ids_are_sent_when_the_page_is_an_unbounce_page(
    fake: Fake, context: BrowserContext
) -> None:
    unbounce = (
        "<script>window.ub = {page: {id: 'a1b2c3d4-e5f6', variantId: 'b', "
        "visitorId: 'ubv-42', name: 'Spring sale', usedAs: 'main'}};</script>"
    )
    tab = open_tab(context)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>', head=unbounce))
    swapped(tab, "n", "971-555-0188")
    assert fake.visits[0]["unbounce"] == {
        "page_id": "a1b2c3d4-e5f6",
        "variant_id": "b",
        "visitor_id": "ubv-42",
    }


# Swapping


def test_every_format_is_swapped_in_its_own_format_and_nothing_else(
    fake: Fake, context: BrowserContext
) -> None:
    kept = "".join(f'<p id="k{i}">{text}</p>' for i, text in enumerate(UNTOUCHED))
    page = (
        body(FORMATS, "f")
        + kept
        + '<a id="tel" href="tel:+15035550100">call</a>'
        + '<a id="tel2" href="tel:503-555-0100">call</a>'
        + '<a id="callto" href="callto:1.800.555.0199">call</a>'
        + '<a id="web" href="https://example.com/5035550100">site</a>'
        + '<script id="js">window.phone = "503-555-0100";</script>'
        + '<style id="css">.x::after { content: "503-555-0100"; }</style>'
        + '<textarea id="area">503-555-0100</textarea>'
        + '<input id="field" value="503-555-0100">'
        + '<noscript id="ns">503-555-0100</noscript>'
        + '<div contenteditable="true" id="editor">503-555-0100</div>'
    )
    tab = open_tab(context)
    tab.page.goto(fake.landing(page))
    swapped(tab, "f0", FORMATS[0][1])

    assert [tab.text(f"f{i}") for i in range(len(FORMATS))] == [new for _, new in FORMATS]
    assert [tab.text(f"k{i}") for i in range(len(UNTOUCHED))] == UNTOUCHED
    assert tab.href("tel") == "tel:+19715550188"
    assert tab.href("tel2") == "tel:971-555-0188"
    assert tab.href("callto") == "callto:1.888.555.0142"
    assert tab.href("web") == "https://example.com/5035550100"
    for untouched in ("js", "css", "area", "ns", "editor"):
        assert "503-555-0100" in tab.text(untouched), untouched
    assert tab.page.input_value("#area") == "503-555-0100"
    assert tab.page.input_value("#field") == "503-555-0100"
    assert tab.page.get_attribute("#field", "value") == "503-555-0100"
    assert tab.errors == []


def test_content_added_later_is_swapped_without_looping(
    fake: Fake, context: BrowserContext
) -> None:
    later = """<p id="changed">nothing yet</p><a id="link" href="/contact">contact</a>
    <script>
      window.mutations = 0;
      new MutationObserver((records) => { window.mutations += records.length; })
        .observe(document.body, {subtree: true, childList: true, characterData: true,
                                 attributes: true});
      setTimeout(() => {
        const p = document.createElement("p");
        p.id = "late";
        p.innerHTML = "Call <b>(503) 555-0100</b> or "
          + "<a id='late-tel' href='tel:5035550100'>tap</a>";
        document.body.append(p);
      }, 1000);
      setTimeout(() => {
        document.getElementById("changed").firstChild.data = "now +1 503 555 0100";
        document.getElementById("link").setAttribute("href", "tel:+1-503-555-0100");
      }, 1300);
    </script>"""
    tab = open_tab(context)
    tab.page.goto(fake.landing(later))
    swapped(tab, "late", "Call (971) 555-0188 or tap")
    assert tab.href("late-tel") == "tel:9715550188"
    swapped(tab, "changed", "now +1 971 555 0188")
    tab.page.wait_for_function(
        "document.getElementById('link').getAttribute('href') === 'tel:+1-971-555-0188'"
    )
    # Our own changes do not wake us again: the page's mutation count settles.
    settled = tab.page.evaluate("window.mutations")
    pause(tab, 0.5)
    assert tab.page.evaluate("window.mutations") == settled
    assert tab.errors == []


def test_loaded_before_the_page_is_parsed_it_swaps_what_the_parser_adds(
    fake: Fake, context: BrowserContext
) -> None:
    # The script in the head runs while a slow script holds up the parser; the number comes after.
    slow = f'<script src="{fake.site}/slow.js"></script><p id="n">(503) 555-0100</p>'
    tab = open_tab(context)
    tab.page.goto(fake.landing(slow), wait_until="commit")
    wait_until(lambda: len(fake.answered) == 1, tab, what="the visit")
    assert tab.page.evaluate("document.readyState") == "loading"
    assert tab.page.evaluate("window.slowDone") is None
    swapped(tab, "n", "(971) 555-0188")
    assert tab.errors == []


def test_loaded_after_the_page_it_swaps_what_is_there(fake: Fake, context: BrowserContext) -> None:
    fake.pages["late"] = (
        '<!doctype html><html><head><meta charset="utf-8"></head><body>'
        '<p id="n">503.555.0100</p><script>'
        'window.addEventListener("load", () => setTimeout(() => {'
        '  const s = document.createElement("script");'
        f'  s.async = true; s.src = "{fake.api}/dni.js"; s.dataset.key = "{KEY}";'
        "  document.head.append(s);"
        "}, 300));</script></body></html>"
    )
    tab = open_tab(context)
    tab.page.goto(f"{fake.site}/late")
    swapped(tab, "n", "971.555.0188")
    assert fake.visits[0]["key"] == KEY
    assert tab.errors == []


# Failures leave the page as it is


def fail_visits_with(fake: Fake, how: str) -> None:
    if how == "500":
        fake.visit_status, fake.visit_raw = 500, b'{"title": "oops"}'
    elif how == "403 without CORS":
        fake.visit_status, fake.visit_cors = 403, False
    elif how == "429":
        fake.visit_status = 429
    elif how == "malformed JSON":
        fake.visit_raw = b'{"visitor": "' + VISITOR.encode() + b'", "swaps": ['
    elif how == "not an object":
        fake.visit_raw = b'"swaps"'
    elif how == "swaps of the wrong shape":
        fake.visit_raw = json.dumps(
            {"visitor": 7, "visit": ["x"], "swaps": [None, 5, {"target": TARGET}, "x",
             {"target": "5035550100", "number": NUMBER}, {"target": TARGET, "number": {}}],
             "heartbeat_seconds": "soon"}
        ).encode()  # fmt: skip
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "server down",
        "500",
        "403 without CORS",
        "429",
        "malformed JSON",
        "not an object",
        "swaps of the wrong shape",
    ],
)
def test_a_failed_visit_leaves_the_page_as_it_is(
    fake: Fake, context: BrowserContext, how: str
) -> None:
    tab = open_tab(context)
    refused: list[str] = []
    if how == "server down":

        def refuse(route: Route) -> None:
            refused.append(route.request.url)
            route.abort("connectionrefused")

        tab.page.route(f"{fake.api}/dni/visits", refuse)
    else:
        fail_visits_with(fake, how)
    tab.page.goto(fake.landing(body(FORMATS, "f") + '<a id="tel" href="tel:+15035550100">c</a>'))
    wait_until(lambda: bool(refused or fake.answered), tab, what="the visit")
    pause(tab, 0.5)
    ticks = tab.page.evaluate("window.ticks")
    pause(tab, 0.2)
    assert tab.page.evaluate("window.ticks") > ticks  # the page's own script goes on
    assert [tab.text(f"f{i}") for i in range(len(FORMATS))] == [old for old, _ in FORMATS]
    assert tab.href("tel") == "tel:+15035550100"
    assert tab.page.evaluate("localStorage.getItem('phonewagon_visitor')") is None
    assert tab.errors == []


@pytest.mark.parametrize(("waited_ms", "used"), [(4_900, True), (5_000, False)])
def test_an_answer_is_waited_for_five_seconds(
    fake: Fake, context: BrowserContext, waited_ms: int, used: bool
) -> None:
    """The page's clock is paused: it moves only as the test says while the answer is awaited."""
    fake.visit_delay = 1.0
    tab = open_tab(context)
    tab.page.clock.install(time=START)
    tab.page.clock.pause_at(START + 1)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    wait_until(lambda: len(fake.visits) == 1, tab, what="the visit")
    tab.page.clock.run_for(waited_ms)
    wait_until(lambda: bool(fake.answered), tab, what="the answer")
    pause(tab, 0.5)
    assert tab.text("n") == ("971-555-0188" if used else "503-555-0100")
    assert tab.errors == []


def test_without_local_storage_the_cookie_keeps_the_visitor(
    fake: Fake, context: BrowserContext
) -> None:
    tab = open_tab(context, NO_LOCAL_STORAGE)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    swapped(tab, "n", "971-555-0188")
    tab.page.reload()
    swapped(tab, "n", "971-555-0188")
    assert [v["visitor"] for v in fake.visits] == [None, VISITOR]
    assert tab.errors == []


def test_without_storage_or_cookies_it_still_swaps(fake: Fake, context: BrowserContext) -> None:
    tab = open_tab(context, NO_LOCAL_STORAGE, NO_COOKIES)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    swapped(tab, "n", "971-555-0188")
    tab.page.reload()
    swapped(tab, "n", "971-555-0188")
    assert [v["visitor"] for v in fake.visits] == [None, None]
    assert tab.errors == []


# Heartbeats


def test_heartbeats_are_sent_while_the_page_is_visible(fake: Fake, context: BrowserContext) -> None:
    fake.heartbeat_seconds = 1
    tab = open_tab(context)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    swapped(tab, "n", "971-555-0188")
    started = time.monotonic()
    wait_until(lambda: len(fake.heartbeats) >= 2, tab, seconds=4, what="two heartbeats")
    assert time.monotonic() - started > 1.5  # every second, not all at once
    assert fake.heartbeats[0] == {"key": KEY, "visitor": VISITOR, "visit": VISIT}
    assert [s.path for s in fake.requests if s.path == "/dni/heartbeat"] == [
        "/dni/heartbeat"
    ] * len(fake.heartbeats)
    assert all(s.content_type.startswith("text/plain") for s in fake.requests)
    assert tab.errors == []


def test_no_heartbeats_while_hidden_and_one_at_once_when_visible_again(
    fake: Fake, context: BrowserContext
) -> None:
    """The server's 60 seconds, on the page's clock, paused: it moves only as the test says."""
    fake.heartbeat_seconds = 60
    tab = open_tab(context, VISIBILITY)
    tab.page.clock.install(time=START)
    tab.page.clock.pause_at(START + 1)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    swapped(tab, "n", "971-555-0188")

    def beats_after(run_ms: int) -> int:
        if run_ms:
            tab.page.clock.run_for(run_ms)
        pause(tab, 0.5)  # a heartbeat sent has arrived by now
        return len(fake.heartbeats)

    assert beats_after(59_000) == 0
    assert beats_after(1_000) == 1
    tab.page.evaluate("setVisibility('hidden')")
    assert beats_after(10 * 60_000) == 1  # ten minutes in the background: none
    tab.page.evaluate("setVisibility('visible')")
    assert beats_after(0) == 2  # at once, the clock standing still
    assert beats_after(59_000) == 2
    assert beats_after(1_000) == 3  # then every 60 s again
    assert tab.errors == []


def test_a_heartbeat_with_a_new_number_swaps_again(fake: Fake, context: BrowserContext) -> None:
    fake.heartbeat_seconds = 1
    fake.heartbeat_swaps = [{"target": TARGET, "number": LATER}, SWAPS[1]]
    page = body(FORMATS, "f") + '<a id="tel" href="tel:+15035550100">c</a>'
    tab = open_tab(context)
    tab.page.goto(fake.landing(page))
    swapped(tab, "f0", "(971) 555-0188")
    swapped(tab, "f0", "(458) 555-0177")
    assert [tab.text(f"f{i}") for i in range(len(FORMATS))] == [
        new.replace("971", "458").replace("0188", "0177") for _, new in FORMATS
    ]
    assert tab.href("tel") == "tel:+14585550177"
    # Content added now gets the number held now.
    tab.page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<p id=\"after\">503 555 0100</p>')"
    )
    swapped(tab, "after", "458 555 0177")
    assert tab.errors == []


@pytest.mark.parametrize(("status", "later"), [(404, 1), (429, 3)])
def test_a_refused_heartbeat_stops_them_a_rate_limited_one_does_not(
    fake: Fake, context: BrowserContext, status: int, later: int
) -> None:
    fake.heartbeat_seconds = 60
    fake.heartbeat_status = status
    tab = open_tab(context)
    tab.page.clock.install(time=START)
    tab.page.clock.pause_at(START + 1)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>'))
    swapped(tab, "n", "971-555-0188")
    tab.page.clock.run_for(60_000)
    wait_until(lambda: len(fake.heartbeats) == 1, tab, what="a heartbeat")
    for _ in range(2):
        tab.page.clock.run_for(60_000)
        pause(tab, 0.5)
    assert len(fake.heartbeats) == later
    assert tab.text("n") == "971-555-0188"  # the page keeps what it shows
    assert tab.errors == []


# The script itself


def test_nothing_leaks_into_the_page_global_scope(fake: Fake, context: BrowserContext) -> None:
    head = "<script>window.before = Object.getOwnPropertyNames(window);</script>"
    tab = open_tab(context)
    tab.page.goto(fake.landing('<p id="n">503-555-0100</p>', head=head))
    swapped(tab, "n", "971-555-0188")
    added = tab.page.evaluate(
        "Object.getOwnPropertyNames(window).filter(name => !window.before.includes(name))"
    )
    assert sorted(added) == ["before", "ticks"]  # the page's own


def test_the_script_stays_small() -> None:
    source = SCRIPT.read_bytes()
    assert len(gzip.compress(source, 9)) < GZIPPED_BOUND
    assert b'"use strict"' in source
