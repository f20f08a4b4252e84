"""The API's OpenAPI 3.1 document (plain data) and the human docs page rendered from it.

The page is self-contained (no scripts, fonts or styles from elsewhere); its `#problem-<slug>`
anchors are where the `type` URI of every problem the server answers with points."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, assert_never

from phonewagon_server import errors, models
from phonewagon_server.api import calls
from phonewagon_server.api.problems import REFUSAL_TITLES
from phonewagon_server.api.routing import Auth, PolicyRoute

Json = dict[str, Any]

PROBLEM_JSON = "application/problem+json"

# The seed's example call, plus `campaign_id`, which we add beside `campaign_name`, and
# `updated_at`, which the change feed is ordered by.
CALL_EXAMPLE: Json = {
    "account_id": 696, "ad_position": "", "campaign_id": "s2212", "campaign_name": "Dummy name",
    "company_id": 1386, "contact_name": "Bronx        Ny", "device": "", "direction": "inbound",
    "duration": 54, "fbclid": "", "from_number": "+19295559999", "gclid": "", "id": 6315,
    "is_first_time_caller": False, "keyword": "", "landing_page": "http://tommy123.com/staging.html",
    "match_type": "", "msclkid": "", "network": "",
    "recording_url": "https://core-api.phonewagon.com/call-recordings/"
    "CA9d0462dd32f10134829dde342c1ec85c/file?cb=1575395046734",
    "referral_value": "http://yahoo.com/yahoo.html", "sid": "CA9d0462dd32f10134829dde342c1ec85c",
    "start_time": 1575322416000, "status": "completed", "to_number": "+18445551234",
    "unbounce_page_id": "", "unbounce_variant_id": "", "unbounce_visitor_id": "",
    "updated_at": 1575395046734, "user_source": "Yahoo organic", "utm_campaign": "",
    "utm_content": "", "utm_medium": "", "utm_source": "", "utm_term": "",
}  # fmt: skip

CALL_NOTES = {
    "campaign_id": "The campaign's id, as `/campaigns` lists it.",
    "duration": "Seconds.",
    "start_time": "When the call started, epoch milliseconds.",
    "updated_at": "When what the API shows of the call last changed, epoch milliseconds: the "
    "order of the change feed (`updated_since`).",
    "from_number": "The caller, E.164.",
    "to_number": "The tracking number called, E.164.",
    "sid": "The telephony provider's call id (Twilio: `CA` + 32 hex), unique per account.",
    "user_source": "The marketing source: `Google Ads`, `Yahoo organic`, `Direct`, ...",
}

# Response headers, each described once: name -> (example, description).
HEADERS: dict[str, tuple[str | int, str]] = {
    "RateLimit-Policy": ('"default";q=50;w=60', "The quota: `q` requests in any rolling `w` s."),
    "RateLimit": ('"default";r=49;t=30', "`r` requests left; in `t` s the oldest stops counting."),
    "Retry-After": (12, "Whole seconds to wait before retrying."),
    "WWW-Authenticate": ('Basic realm="phonewagon"', "The Basic challenge."),
    "Allow": ("GET, HEAD", "The methods the path answers."),
    "Cache-Control": ("no-store", "On every response: call data must not linger in caches."),
    "X-Request-ID": (
        "e69fd1e11cdc40fea04d32b471d6978d",
        "On every response: this request's id in the server's logs. A plain"
        " `[A-Za-z0-9._-]{1,64}` sent by the client is kept; otherwise a new one.",
    ),
}
RATE_LIMIT = ("RateLimit-Policy", "RateLimit")
# Error responses (components/responses), by the status they answer with.
ERRORS = {400: "InvalidParameters", 401: "Unauthenticated", 404: "NotFound", 405: "NotAllowed",
          413: "BodyRefused", 414: "URLTooLong", 429: "RateLimited", 431: "HeadersTooLarge",
          500: "InternalError", 503: "DatabaseUnavailable"}  # fmt: skip
# Refused before any endpoint, for the request's size or shape: on every API path.
REFUSALS = (413, 414, 431)


def _headers(*required: str, optional: tuple[str, ...] = ()) -> Json:
    """The response headers named, each with its example; `Cache-Control` and `X-Request-ID`
    always."""
    headers = {}
    for name in (*required, "Cache-Control", "X-Request-ID", *optional):
        example, description = HEADERS[name]
        schema = {"type": "integer" if isinstance(example, int) else "string"}
        headers[name] = {"description": description, "required": name not in optional,
                         "schema": schema, "example": example}  # fmt: skip
    return headers


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _response(description: str, media: str, schema: str, example: Any, headers: Json) -> Json:
    examples = {"example": {"value": example}}
    content = {media: {"schema": _ref("schemas", schema), "examples": examples}}
    return {"description": description, "headers": headers, "content": content}


def _problem(base: str, slug: str, title: str, status: int, detail: str) -> Json:
    return {"type": f"{base}/docs#problem-{slug}", "title": title, "status": status,
            "detail": detail}  # fmt: skip


def _body(base: str, error: errors.PhonewagonError) -> Json:
    """The problem `api.problems` renders for `error`."""
    body = _problem(base, error.slug, error.title, error.status, error.detail)
    if isinstance(error, errors.InvalidParameters):
        body["errors"] = [{"name": e.name, "in": "query", "detail": e.detail} for e in error.errors]
    return body


def _error(example: Json, headers: Json, description: str) -> Json:
    return _response(description, PROBLEM_JSON, "Problem", example, headers)


def _refusal_responses() -> Json:
    """413, 414 and 431: `about:blank` problems, since the status says it all."""
    details = {
        413: "This API takes no request body: send parameters in the query string.",
        414: "The URL is longer than the server takes.",
        431: "The request's headers are larger than the server takes.",
    }
    return {
        ERRORS[status]: _error(
            {"type": "about:blank", "title": REFUSAL_TITLES[status], "status": status,
             "detail": detail},
            _headers(),
            f"{REFUSAL_TITLES[status]}: refused before any work, and the connection closed.",
        )
        for status, detail in details.items()
    }  # fmt: skip


def _error_responses(base: str) -> Json:
    unknown = errors.ParameterError(
        "compnay_id",
        "is not a parameter of this endpoint; did you mean company_id? "
        f"known parameters: {', '.join(calls.PARAMETERS)}",
    )
    limited = errors.RateLimited(
        "This account may make 50 requests in any 60 seconds. Retry in 12 seconds.", retry_after=12
    )
    bug = errors.PhonewagonError("Something went wrong on our side. It has been logged.")
    not_allowed = _problem(base, "method-not-allowed", "Method Not Allowed", 405, "POST is not "
                           "allowed here; use GET, HEAD.")  # fmt: skip
    missing = errors.NotFound("There is no company 1386 in this account.")
    counted, retry = _headers(*RATE_LIMIT), _headers("Retry-After", optional=RATE_LIMIT)
    challenge = _headers("WWW-Authenticate")
    return {
        "InvalidParameters": _error(_body(base, errors.InvalidParameters([unknown])), counted,
            "A query parameter is wrong: not plain decimal digits where an integer is expected "
            "(negatives included), out of range, `page_size` below 1, `start_time` after "
            "`end_time`, an empty `campaign_id`, a parameter the endpoint does not know (a typo "
            "such as `compnay_id` is refused, never ignored), or one parameter repeated with "
            "different values. `errors` names each one."),
        "Unauthenticated": _error(_body(base, errors.Unauthenticated()), challenge,
            "The credentials are missing, malformed, unknown, wrong or revoked: one answer for "
            "all. Failed attempts spend nothing of the account's quota, but an address that "
            "fails too often is answered 429 for a while."),
        "NotFound": _error(_body(base, missing), _headers(optional=RATE_LIMIT),
            "The `company_id` or `campaign_id` is not one of the account's: the same answer "
            "whether it is another account's or does not exist. Also the answer for a path the "
            "API does not have."),
        **_refusal_responses(),
        "NotAllowed": _error(not_allowed, _headers("Allow"),
            "The API only reads: its paths answer `GET` (and `HEAD`), other methods 405."),
        "RateLimited": _error(_body(base, limited), retry,
            "The account has used its quota for the rolling window, or this address failed to "
            "authenticate too often (that answer carries no `RateLimit` headers). Retry after "
            "`Retry-After` seconds: the request will then be admitted."),
        "InternalError": _error(_body(base, bug), _headers(),
            "A bug on our side. It is logged for the operator; the answer reveals nothing of the "
            "server's insides."),
        "DatabaseUnavailable": _error(_body(base, errors.DatabaseUnavailable()), retry,
            "The database cannot be reached right now. Retry after `Retry-After` seconds; the "
            "service recovers by itself when the database is back."),
    }  # fmt: skip


def _integer(maximum: int, **extra: Any) -> Json:
    return {"type": "integer", "format": "int64", "minimum": 0, "maximum": maximum, **extra}


def _object(properties: Json, *, required: list[str] | None = None, closed: bool = True) -> Json:
    schema = {"type": "object", "properties": properties, "required": required or list(properties)}
    return schema | {"additionalProperties": False} if closed else schema


QUERY: dict[str, tuple[Json, str]] = {  # name: (schema, description)
    "company_id": (_integer(models.MAX_ID), "A company id from `/companies`: only its "
        "campaigns or calls. One the account does not own is answered 404."),
    "campaign_id": ({"type": "string", "minLength": 1, "maxLength": 200}, "A campaign id "
        "from `/campaigns`: only its calls. One the account does not own is answered 404."),
    "start_time": (_integer(models.MAX_EPOCH_MS, default=0),
        "Epoch milliseconds: only calls that started at or after it (inclusive)."),
    "end_time": (_integer(models.MAX_EPOCH_MS),
        "Epoch milliseconds: only calls that started at or before it (inclusive). Default: now."),
    "page_size": ({"type": "integer", "minimum": 1, "default": models.MAX_PAGE_SIZE},
        f"Calls per page; any larger value is truncated to {models.MAX_PAGE_SIZE}."),
    "before_id": (_integer(models.MAX_ID), "The tie-breaker cursor that `next` links "
        "carry. Together with `end_time`, resumes inside a millisecond: only calls at exactly "
        "`end_time` with a smaller id, then older calls."),
    "updated_since": (_integer(models.MAX_EPOCH_MS), "Epoch milliseconds: turns the answer "
        "into the change feed, the calls whose `updated_at` is at or after it, oldest change "
        "first (`updated_at`, then `id`). The other filters apply; `end_time` has no default "
        "here. Following `next` to its end returns every call changed since then, in its latest "
        "version, none skipped even while calls are written; then ask again from the last call "
        "received: its `updated_at` as `updated_since` and its `id` as `after_id` (with "
        "`updated_since` alone, that millisecond's calls come again)."),
    "after_id": (_integer(models.MAX_ID), "The change feed's tie-breaker cursor, which its "
        "`next` links carry: with `updated_since`, only calls changed at exactly that "
        "millisecond with a larger id, then later changes."),
}  # fmt: skip
PARAMETERS: dict[str, Json] = {
    name: {"name": name, "in": "query", "schema": schema, "description": description}
    for name, (schema, description) in QUERY.items()
}


def _schemas() -> Json:
    text, uri = {"type": "string"}, {"type": "string", "format": "uri"}
    items = ("Company", "Campaign", "Call")
    list_of = {name: {"type": "array", "items": _ref("schemas", name)} for name in items}
    types = dict.fromkeys(models.CALL_INTEGER_FIELDS, "integer")
    types |= dict.fromkeys(models.CALL_BOOLEAN_FIELDS, "boolean")
    call = {field: {"type": types.get(field, "string")} for field in models.CALL_FIELDS}
    for field, note in CALL_NOTES.items():
        call[field]["description"] = note
    next_link = uri | {"description": "Present only when more calls match: the absolute URL of "
                       "the next page, keeping every filter and the page size."}  # fmt: skip
    parameter_error = _object({"name": text, "in": {"const": "query"}, "detail": text})
    problem = {"type": uri | {"description": "Links to its explanation in the docs."},
               "title": text, "status": {"type": "integer"}, "detail": text}  # fmt: skip
    return {
        "Company": _object({"id": _integer(models.MAX_ID), "name": text}),
        "Campaign": _object({"id": text, "name": text}),
        "Call": _object(call) | {"description": 'Unknown strings are `""`, never null.'},
        "CompaniesPage": _object({"companies": list_of["Company"]}),
        "CampaignsPage": _object({"campaigns": list_of["Campaign"]}),
        "CallsPage": _object({"calls": list_of["Call"], "next": next_link}, required=["calls"]),
        "Problem": _object(
            problem | {"errors": {"type": "array", "items": parameter_error}},
            required=list(problem),
            closed=False,
        ),
        "Health": _object({"status": text}, closed=False),
    }


def _get(summary: str, description: str, curl: str, ok: Json, *statuses: int,
         params: tuple[str, ...] = ()) -> Json:  # fmt: skip
    operation: Json = {
        "summary": summary,
        "description": description,
        "parameters": [_ref("parameters", name) for name in params],
        "responses": {"200": ok} | {str(s): _ref("responses", ERRORS[s]) for s in statuses},
        "x-codeSamples": [{"lang": "Shell", "label": "curl", "source": curl}],
    }
    return {"get": operation}


def _ok(description: str, schema: str, example: Any, *, public: bool = False) -> Json:
    headers = _headers() if public else _headers(*RATE_LIMIT)
    return _response(description, "application/json", schema, example, headers)


def _security(auth: Auth) -> list[Json]:
    """An operation's `security`, as its route declares: Basic credentials, or none."""
    if auth is Auth.ACCOUNT:
        return [{"basicAuth": []}]
    if auth is Auth.PUBLIC:
        return []
    if auth is Auth.SESSION:  # the web app's pages are never documented; were one, no Basic
        return []
    assert_never(auth)


def _paths(items: Json, routes: Iterable[PolicyRoute]) -> Json:
    """`items`, one per documented route, each operation secured as its route declares."""
    routed = {route.path: route for route in routes if route.include_in_schema}
    if unpaired := routed.keys() ^ items.keys():
        raise LookupError(f"routed and documented paths differ: {sorted(unpaired)}")
    return {
        path: {method: operation | {"security": _security(routed[path].policy.auth)}
               for method, operation in item.items()}
        for path, item in items.items()
    }  # fmt: skip


def build_openapi(public_url: str, routes: Iterable[PolicyRoute]) -> dict[str, Any]:
    """The API's OpenAPI 3.1 document for `routes` (those `include_in_schema`); links, `type`
    URIs and examples under `public_url`."""
    base, curl = public_url, "curl -u client-id:client-secret"
    query = models.CallQuery(696, campaign_id="s2212", start_time=0, end_time=0, page_size=1)
    last = (CALL_EXAMPLE["start_time"], CALL_EXAMPLE["id"])
    next_url = calls.next_link(public_url, query, last=last)
    companies = [{"id": 1001, "name": "Phonewagon"}, {"id": 9812, "name": "Jake's rake company"}]
    campaigns = [{"id": "s2212", "name": "Facebook"}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Phonewagon API", "version": "1.0.0", "description": "Phonewagon "
                 "tracks phone calls and the marketing source of each. This read API lets a "
                 "reporting tool pull an account's companies, campaigns and calls as JSON (UTF-8). "
                 "Responses are never cached (`Cache-Control: no-store`)."},
        "servers": [{"url": public_url}],
        "security": [{"basicAuth": []}],
        "paths": _paths({
            "/companies": _get("List companies", "The account's companies, ordered by id.",
                f'{curl} "{base}/companies"',
                _ok("The companies.", "CompaniesPage", {"companies": companies}),
                400, 401, 429, 503, *REFUSALS),
            "/campaigns": _get("List campaigns", "Campaign ids are strings. Without "
                "`company_id`: every campaign of the account.",
                f'{curl} "{base}/campaigns?company_id=1001"',
                _ok("The campaigns.", "CampaignsPage", {"campaigns": campaigns}),
                400, 401, 404, 429, 503, *REFUSALS, params=("company_id",)),
            "/calls": _get("Query calls", "No parameter is required: without any, every call "
                "of the account. Newest first (`start_time`, then `id`, descending); follow "
                "`next` until it is absent to get every matching call exactly once.",
                f'{curl} "{base}/calls?campaign_id=s2212&page_size=1"',
                _ok("A page of calls.", "CallsPage", {"calls": [CALL_EXAMPLE], "next": next_url}),
                400, 401, 404, 429, 503, *REFUSALS, params=tuple(PARAMETERS)),
            "/healthz": _get("Liveness", "The process answers. No credentials needed.",
                f'curl "{base}/healthz"', _ok("Alive.", "Health", {"status": "ok"}, public=True)),
            "/readyz": _get("Readiness", "The database answers too. No credentials needed.",
                f'curl "{base}/readyz"',
                _ok("Ready to serve.", "Health", {"status": "ready"}, public=True), 503),
        }, routes),
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic", "description":
                "HTTP Basic auth on every API request: the client id is the username, the "
                "client secret the password."}},
            "parameters": PARAMETERS,
            "schemas": _schemas(),
            "responses": _error_responses(base),
        },
    }  # fmt: skip


CSS = """body { font: 16px/1.55 system-ui, sans-serif; color: #1f2328; max-width: 56rem;
margin: 0 auto; padding: 1rem 1.5rem 4rem } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd }
code, pre { font: 0.875em/1.45 ui-monospace, Menlo, Consolas, monospace; background: #f3f4f6 }
code { padding: 0.1em 0.3em; border-radius: 4px } pre code { padding: 0 } a { color: #0969da }
pre { border: 1px solid #ddd; border-radius: 6px; padding: 0.75rem 1rem; overflow-x: auto }
table { border-collapse: collapse; width: 100% } th { text-align: left; background: #f6f8fa }
th, td { border: 1px solid #ddd; padding: 0.35rem 0.6rem; vertical-align: top }
nav a { margin-right: 1rem } :target { background: #fff8c5 }"""


def _text(text: str) -> str:
    """Escaped prose with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _pre(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return f"<pre><code>{html.escape(shown)}</code></pre>"


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _resolve(spec: Json, node: Json) -> Json:
    """`node`, or the component its `$ref` names."""
    if "$ref" in node:
        _, _, kind, name = node["$ref"].split("/")
        component: Json = spec["components"][kind][name]
        return component
    return node


def _example(response: Json) -> Any:
    (media,) = response["content"].values()
    return media["examples"]["example"]["value"]


def _slug(problem: Json) -> str:
    return str(problem["type"]).rpartition("#problem-")[2]


def _endpoint(spec: Json, path: str, operation: Json) -> str:
    rows = [
        (_code(p["name"]), _text(p["schema"]["type"]), _text(str(p["schema"].get("default", ""))),
         _text(p["description"])) for p in (_resolve(spec, p) for p in operation["parameters"])
    ]  # fmt: skip
    ok = operation["responses"]["200"]
    answers = [f"<li><strong>200</strong> {_text(ok['description'])}</li>"]
    for status, response in operation["responses"].items():
        if status != "200":
            problem = _example(_resolve(spec, response))
            link = f'<a href="#problem-{_text(_slug(problem))}">{_text(problem["title"])}</a>'
            answers.append(f"<li><strong>{_text(status)}</strong> {link}</li>")
    parts = [
        f'<h3 id="{html.escape(path.strip("/"))}">GET {html.escape(path)}</h3>',
        f"<p><strong>{_text(operation['summary'])}.</strong> {_text(operation['description'])}</p>",
        _pre(operation["x-codeSamples"][0]["source"]),
        _table(("Parameter", "Type", "Default", "Notes"), rows) if rows else "",
        f"<ul>{''.join(answers)}</ul><p>Example response:</p>",
        _pre(_example(ok)),
    ]
    return "".join(parts)


def render_docs(spec: dict[str, Any]) -> str:
    """One self-contained HTML page for people, generated from `spec`."""
    esc, base, title = html.escape, spec["servers"][0]["url"], spec["info"]["title"]
    components, calls_get = spec["components"], spec["paths"]["/calls"]["get"]
    rate_limited = _resolve(spec, calls_get["responses"]["429"])
    limits = calls_get["responses"]["200"]["headers"] | rate_limited["headers"]
    limit_rows = [(_code(name), _code(str(header["example"])), _text(header["description"]))
                  for name, header in limits.items() if name != "Cache-Control"]  # fmt: skip
    problems = [_example(response) for response in components["responses"].values()]
    page_size = components["parameters"]["page_size"]["schema"]["default"]
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1><p>{_text(spec['info']['description'])}</p>",
        '<nav><a href="#authentication">Authentication</a><a href="#rate-limit">Rate limit</a>'
        '<a href="#endpoints">Endpoints</a><a href="#pagination">Pagination</a>'
        f'<a href="#errors">Errors</a><a href="{esc(base)}/openapi.json">OpenAPI</a></nav>',
        '<h2 id="authentication">Authentication</h2>',
        f"<p>{_text(components['securitySchemes']['basicAuth']['description'])} "
        "Use your account's client id and secret:</p>",
        _pre(f'curl -u client-id:client-secret "{base}/companies"'),
        '<h2 id="rate-limit">Rate limit</h2>',
        "<p>An account may make 50 requests in any rolling minute (unless the operator set "
        "another limit). Every authenticated response tells where the account stands; a request "
        'over the limit is answered <a href="#problem-rate-limited">429</a>: retry it after '
        "<code>Retry-After</code> seconds and it will be admitted.</p>",
        _table(("Header", "Example", "Meaning"), limit_rows),
        '<h2 id="endpoints">Endpoints</h2>',
        *(_endpoint(spec, path, item["get"]) for path, item in spec["paths"].items()),
        '<h2 id="pagination">Pagination</h2>',
        "<p>Calls come newest first (<code>start_time</code>, then <code>id</code>, descending), "
        f"at most {esc(str(page_size))} a page (fewer with <code>page_size</code>). While more "
        "match, the answer carries <code>next</code>, the absolute URL of the next page with every "
        "filter and the page size: follow it until it is absent to get each call once.</p>",
        _pre(_example(calls_get["responses"]["200"])["next"]),
        "<p>Many calls can share one millisecond, so <code>next</code> sets <code>end_time</code> "
        "to the last call's <code>start_time</code> and adds <code>before_id</code>, the last "
        "call's id: the next page starts with the calls of that millisecond not sent yet, then "
        "older ones. Nothing is skipped or sent twice, also while new calls are being written. "
        "(Paging yourself with <code>end_time</code> = last <code>start_time</code> &minus; 1, "
        "as the original API documented, skips calls that share that millisecond.)</p>",
        '<h2 id="changes">Changes</h2>',
        "<p>Calls change after they are first listed: a call ends, its recording arrives, its "
        "campaign is renamed. Each call's <code>updated_at</code> (epoch milliseconds) moves "
        "whenever what the API shows of it changes, and never otherwise. "
        "<code>/calls?updated_since=T</code> is the change feed: the calls changed at or after "
        "<code>T</code>, oldest change first, with <code>next</code> links carrying "
        "<code>updated_since</code> and <code>after_id</code>. Keep the last call you received "
        "and ask again later from its <code>updated_at</code> and <code>id</code> "
        "(<code>updated_since</code>, <code>after_id</code>): a call changed twice comes twice, "
        "in its latest version each time, and no change is ever skipped, even one whose writer "
        "committed after you passed.</p>",
        '<h2 id="errors">Errors</h2>',
        f"<p>Errors are <code>{PROBLEM_JSON}</code> (RFC 9457): <code>type</code> links to its "
        "explanation below, <code>title</code> names it, <code>status</code> repeats the HTTP "
        "status and <code>detail</code> tells what happened; for bad parameters, "
        "<code>errors</code> names each one.</p>",
        *(
            f'<h3 id="problem-{esc(_slug(problem))}">{problem["status"]} {esc(problem["title"])}'
            f"</h3><p>{_text(response['description'])}</p>{_pre(problem)}"
            for response, problem in zip(components["responses"].values(), problems, strict=True)
        ),
        "</body></html>",
    ]
    return "\n".join(parts)
