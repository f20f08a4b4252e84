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
from phonewagon_server.api.recordings import CALL_SID_MAX_CHARS
from phonewagon_server.api.routing import Auth, PolicyRoute
from phonewagon_server.api.webhook_auth import FORM_TYPE, MAX_FORM_BYTES, MAX_FORM_FIELDS
from phonewagon_server.twilio import events, twiml
from phonewagon_server.twilio.webhooks import UNKNOWN_NUMBER

Json = dict[str, Any]

PROBLEM_JSON = "application/problem+json"
TWIML = "text/xml"
AUDIO_TYPES = ("audio/x-wav", "audio/wav", "audio/mpeg")

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
    "Accept-Ranges": ("bytes", "Parts of the file may be asked for with `Range`."),
    "Content-Range": ("bytes 0-1023/88244", "The part sent, and the whole file's size."),
    "Cache-Control": ("no-store", "On every response: call data must not linger in caches."),
    "X-Request-ID": (
        "e69fd1e11cdc40fea04d32b471d6978d",
        "On every response: this request's id in the server's logs. A plain"
        " `[A-Za-z0-9._-]{1,64}` sent by the client is kept; otherwise a new one.",
    ),
}
RATE_LIMIT = ("RateLimit-Policy", "RateLimit")
# Error responses (components/responses), each with the status it answers with.
ERRORS = {"InvalidParameters": 400, "InvalidWebhook": 400, "Unauthenticated": 401,
          "Forbidden": 403, "NotFound": 404, "NotAllowed": 405, "BodyRefused": 413,
          "PayloadTooLarge": 413, "URLTooLong": 414, "RateLimited": 429, "HeadersTooLarge": 431,
          "InternalError": 500, "DatabaseUnavailable": 503}  # fmt: skip
# Refused before any endpoint, for the request's size or shape: on every path...
REFUSALS = ("URLTooLong", "HeadersTooLarge")
# ... and, on every path that takes no body, any body.
READ_ONLY = (*REFUSALS, "BodyRefused")
ACCOUNT = ("Unauthenticated", "RateLimited", "DatabaseUnavailable", *READ_ONLY)
WEBHOOK = ("InvalidWebhook", "Forbidden", "PayloadTooLarge", "RateLimited",
           "DatabaseUnavailable", *REFUSALS)  # fmt: skip

# The example webhooks: one call (the seed's), ringing our number, then completed and recorded.
TWILIO_ACCOUNT = "ACaf9c2c44bb3f9902ddfbe1343eaec50b"
RECORDING_SID = "REae7053824e9865a3e1b9cfa47f2c405d"
FORWARD_TO = "+15035550100"
SIGNATURE_NOTE = (
    "# SIGNATURE: base64 HMAC-SHA1, keyed by your Twilio auth token, of the URL as Twilio calls "
    "it\n# followed by each field's name and value, sorted by name (Twilio computes it for you)."
)


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


def _response(description: str, media: str, schema: Json, examples: Json, headers: Json) -> Json:
    content = {media: {"schema": schema, "examples": examples}}
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
    examples = {"example": {"value": example}}
    return _response(description, PROBLEM_JSON, _ref("schemas", "Problem"), examples, headers)


def _refusal_responses() -> Json:
    """413, 414 and 431: `about:blank` problems, since the status says it all."""
    details = {
        "BodyRefused": "This API takes no request body: send parameters in the query string.",
        "URLTooLong": "The URL is longer than the server takes.",
        "HeadersTooLarge": "The request's headers are larger than the server takes.",
    }
    where = {"BodyRefused": " Any body, on every path but the webhooks'."}
    return {
        name: _error(
            {"type": "about:blank", "title": REFUSAL_TITLES[ERRORS[name]],
             "status": ERRORS[name], "detail": detail},
            _headers(),
            f"{REFUSAL_TITLES[ERRORS[name]]}: refused before any work, and the connection "
            f"closed.{where.get(name, '')}",
        )
        for name, detail in details.items()
    }  # fmt: skip


def _webhook_refusal(base: str) -> Json:
    """The webhooks' 400: two problems, each its own example."""
    field = errors.InvalidField("CallSid", "must be CA and 32 hexadecimal digits")
    unreadable = errors.UnreadableBody(f"Send the fields as {FORM_TYPE}, as Twilio does.")
    examples = {
        "invalid-field": {"summary": field.title, "value": _body(base, field), "description":
            "A field the webhook reads is missing, of the wrong shape, out of its bounds or "
            "given twice, or `AccountSid` is not this deployment's Twilio account: `detail` "
            "names the field. Only a signed webhook is read this far."},
        "unreadable-body": {"summary": unreadable.title, "value": _body(base, unreadable),
            "description": f"The body is not a form of up to {MAX_FORM_FIELDS} UTF-8 fields "
            f"sent as `{FORM_TYPE}`, or the client went away before sending all of it."},
    }  # fmt: skip
    return _response(
        "The webhook's body or one of its fields is refused; nothing is written.",
        PROBLEM_JSON,
        _ref("schemas", "Problem"),
        examples,
        _headers(),
    )


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
    forbidden = errors.Forbidden("The request is not signed by this deployment's Twilio account.")
    too_large = errors.PayloadTooLarge(f"The form is larger than {MAX_FORM_BYTES} bytes.")
    counted, retry = _headers(*RATE_LIMIT), _headers("Retry-After", optional=RATE_LIMIT)
    challenge = _headers("WWW-Authenticate")
    responses = {
        "InvalidParameters": _error(_body(base, errors.InvalidParameters([unknown])), counted,
            "A query parameter is wrong: not plain decimal digits where an integer is expected "
            "(negatives included), out of range, `page_size` below 1, `start_time` after "
            "`end_time`, an empty `campaign_id`, a parameter the endpoint does not know (a typo "
            "such as `compnay_id` is refused, never ignored), or one parameter repeated with "
            "different values. `errors` names each one."),
        "InvalidWebhook": _webhook_refusal(base),
        "Unauthenticated": _error(_body(base, errors.Unauthenticated()), challenge,
            "The credentials are missing, malformed, unknown, wrong or revoked: one answer for "
            "all. Failed attempts spend nothing of the account's quota, but an address that "
            "fails too often is answered 429 for a while."),
        "Forbidden": _error(_body(base, forbidden), _headers(),
            "A webhook not signed by this deployment's Twilio auth token: unsigned, tampered "
            "with, signed with another token or for another URL than `PHONEWAGON_PUBLIC_URL` + "
            "path + query, or no token is configured. Nothing is written; the server logs the "
            "reason, and an address refused too often is answered 429 for a while."),
        "NotFound": _error(_body(base, missing), _headers(optional=RATE_LIMIT),
            "The `company_id` or `campaign_id` is not one of the account's: the same answer "
            "whether it is another account's or does not exist. A recording: the call is "
            "another account's, does not exist or has no recording (yet). Also the answer for "
            "a path the API does not have."),
        "NotAllowed": _error(not_allowed, _headers("Allow"),
            "Each path answers its own methods, which `Allow` lists: the API's `GET` (and "
            "`HEAD`), the webhooks' `POST`. Any other method is answered 405."),
        "PayloadTooLarge": _error(_body(base, too_large), _headers(),
            f"A webhook's form over {MAX_FORM_BYTES} bytes (Twilio's are a few KiB): refused "
            "unread."),
        "RateLimited": _error(_body(base, limited), retry,
            "The account has used its quota for the rolling window, or this address failed to "
            "authenticate (or sent refused webhooks) too often (that answer carries no "
            "`RateLimit` headers). Retry after `Retry-After` seconds: the request will then be "
            "admitted."),
        "InternalError": _error(_body(base, bug), _headers(),
            "A bug on our side. It is logged for the operator; the answer reveals nothing of the "
            "server's insides."),
        "DatabaseUnavailable": _error(_body(base, errors.DatabaseUnavailable()), retry,
            "The database cannot be reached right now. Retry after `Retry-After` seconds; the "
            "service recovers by itself when the database is back."),
        **_refusal_responses(),
    }  # fmt: skip
    return {name: responses[name] for name in ERRORS}


def _answers(*names: str) -> Json:
    """Responses by reference, keyed by their status."""
    return {str(ERRORS[name]): _ref("responses", name) for name in names}


def _integer(maximum: int, **extra: Any) -> Json:
    return {"type": "integer", "format": "int64", "minimum": 0, "maximum": maximum, **extra}


def _object(properties: Json, *, required: list[str] | None = None, closed: bool = True) -> Json:
    required = list(properties) if required is None else required
    schema = {"type": "object", "properties": properties, "required": required}
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

E164 = r"^\+[1-9][0-9]{6,14}$"
RECORDING_STATUSES = ("in-progress", "completed", "absent", "failed")


# `From` when the caller hides their number, in any case: a pattern, as JSON Schema's `enum` cannot
# ignore case.
HIDDEN_CALLER: Json = {
    "type": "string",
    "title": f"{', '.join(events.HIDDEN_CALLERS)}, in any case",
    "pattern": "^({})$".format(
        "|".join(
            "".join(f"[{c.lower()}{c.upper()}]" for c in name) for name in events.HIDDEN_CALLERS
        )
    ),
}


def _sid(prefix: str, what: str) -> Json:
    return {"type": "string", "pattern": f"^{prefix}[0-9a-f]{{32}}$", "description": what}


def _name(what: str) -> Json:
    return {"type": "string", "maxLength": events.MAX_NAME_CHARS,
            "description": f"{what} Printable characters only."}  # fmt: skip


# The form fields the webhooks read, with the shape each must have; Twilio sends more, which are
# signed but not read.
FORM_FIELDS: dict[str, Json] = {
    "AccountSid": _sid("AC", "Your Twilio account: must be `PHONEWAGON_TWILIO_ACCOUNT_SID`."),
    "CallSid": _sid("CA", "The call: its `sid`."),
    "CallStatus": {"enum": [*events.CALL_STATUSES, *events.FINAL_STATUSES], "description": "The "
        "call's `status`. The last five are final: a late earlier status never undoes them."},
    "Direction": {"enum": list(events.DIRECTIONS), "description": "The call's `direction`."},
    "From": {"anyOf": [{"type": "string", "pattern": E164}, HIDDEN_CALLER],
             "description": "The caller, E.164, or a hidden caller as Twilio names it: the "
             "call's `from_number` (a hidden one in lower case)."},
    "To": {"type": "string", "pattern": E164, "description": "The tracking number called: the "
        "call's `to_number`. The number's campaign decides the call's account and company."},
    "CallerName": _name("The caller's name, when Twilio looks it up: the call's `contact_name`."),
    "FromCity": _name("Without `CallerName`, `contact_name` is `FromCity, FromState`."),
    "FromState": _name("See `FromCity`."),
    "SequenceNumber": {"type": "integer", "minimum": 0, "maximum": events.MAX_SEQUENCE,
        "description": "The order of the call's status callbacks: of two statuses, both final "
        "or both not, the higher number wins."},
    "CallDuration": {"type": "integer", "minimum": 0, "maximum": events.MAX_DURATION_SECONDS,
        "description": "Seconds, read on a final status: the call's `duration`."},
    "RecordingSid": _sid("RE", "The recording."),
    "RecordingStatus": {"enum": list(RECORDING_STATUSES), "description": "Only `completed` has "
        "the recording fetched; the others are acknowledged."},
    "RecordingUrl": {"type": "string", "format": "uri", "maxLength": 2048, "description": "Where "
        "Twilio keeps the recording. Fetched only when it lies under "
        "`PHONEWAGON_TWILIO_API_BASE/2010-04-01/Accounts/<AccountSid>/` with no `..`, `@`, "
        "query, fragment, backslash or space; anything else is refused and never requested."},
}  # fmt: skip
CALL_FIELDS = ("AccountSid", "CallSid", "CallStatus", "Direction", "From", "To")
NAME_FIELDS = ("CallerName", "FromCity", "FromState")
WEBHOOK_FORMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # (required, optional)
    "VoiceWebhook": (CALL_FIELDS, NAME_FIELDS),
    "StatusWebhook": (CALL_FIELDS, (*NAME_FIELDS, "SequenceNumber", "CallDuration")),
    "RecordingWebhook": (
        ("AccountSid", "CallSid", "RecordingSid", "RecordingStatus", "RecordingUrl"), ()),
}  # fmt: skip
VOICE_EXAMPLE: Json = {
    "AccountSid": TWILIO_ACCOUNT, "CallSid": CALL_EXAMPLE["sid"], "CallStatus": "ringing",
    "Direction": "inbound", "From": CALL_EXAMPLE["from_number"], "FromCity": "BRONX",
    "FromState": "NY", "To": CALL_EXAMPLE["to_number"],
}  # fmt: skip
STATUS_EXAMPLE: Json = VOICE_EXAMPLE | {"CallDuration": 54, "CallStatus": "completed",
                                        "SequenceNumber": 2}  # fmt: skip
RECORDING_EXAMPLE: Json = {
    "AccountSid": TWILIO_ACCOUNT, "CallSid": CALL_EXAMPLE["sid"], "RecordingSid": RECORDING_SID,
    "RecordingStatus": "completed", "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/"
    f"{TWILIO_ACCOUNT}/Recordings/{RECORDING_SID}",
}  # fmt: skip


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
    forms = {
        name: _object({field: FORM_FIELDS[field] for field in (*required, *optional)},
                      required=list(required), closed=False)
        | {"additionalProperties": True, "description": "The fields read, each checked; Twilio "
           "sends more, which the signature covers and the server ignores."}
        for name, (required, optional) in WEBHOOK_FORMS.items()
    }  # fmt: skip
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
        **forms,
    }


def _operation(summary: str, description: str, curl: str, responses: Json, *,
               parameters: Sequence[Json] = (), body: Json | None = None) -> Json:  # fmt: skip
    operation: Json = {"summary": summary, "description": description,
                       "parameters": list(parameters)}  # fmt: skip
    if body is not None:
        operation["requestBody"] = body
    by_status = dict(sorted(responses.items()))
    return operation | {"responses": by_status, "x-codeSamples": [
        {"lang": "Shell", "label": "curl", "source": curl}]}  # fmt: skip


def _get(summary: str, description: str, curl: str, ok: Json, *answers: str,
         params: tuple[str, ...] = ()) -> Json:  # fmt: skip
    parameters = [_ref("parameters", name) for name in params]
    responses = {"200": ok} | _answers(*answers)
    return {"get": _operation(summary, description, curl, responses, parameters=parameters)}


def _ok(description: str, schema: str, example: Any, *, public: bool = False) -> Json:
    headers = _headers() if public else _headers(*RATE_LIMIT)
    examples = {"example": {"value": example}}
    return _response(description, "application/json", _ref("schemas", schema), examples, headers)


def _recording_file(base: str, curl: str) -> Json:
    """The recording route: audio, whole or in ranges, to the call's account."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    audio = dict.fromkeys(AUDIO_TYPES, binary)
    plain = {"text/plain": {"schema": {"type": "string"}}}
    sid = CALL_EXAMPLE["sid"]
    parameters = [
        {"name": "sid", "in": "path", "required": True, "example": sid,
         "schema": {"type": "string", "minLength": 1, "maxLength": CALL_SID_MAX_CHARS},
         "description": "The call's `sid`, as its `recording_url` names it."},
        {"name": "cb", "in": "query", "required": False, "example": "1575395046734",
         "schema": {"type": "string", "pattern": "^[0-9]{1,32}$"}, "description": "A cache buster, "
         "as the seed's recording URLs carry: taken, and ignored."},
        {"name": "Range", "in": "header", "required": False, "example": "bytes=0-1023",
         "schema": {"type": "string"}, "description": "`bytes=START-END`, or several such "
         "ranges comma-separated: only those bytes, answered 206. Audio players send it to "
         "seek."},
    ]  # fmt: skip
    responses = {
        "200": {"description": "The recording's audio, of the type Twilio gave it: WAV or MP3.",
                "headers": _headers("Accept-Ranges", optional=RATE_LIMIT), "content": audio},
        "206": {"description": "The bytes `Range` asked for; several ranges come as "
                "`multipart/byteranges`, each part with its `Content-Range`.",
                "headers": _headers("Accept-Ranges", optional=("Content-Range", *RATE_LIMIT)),
                "content": audio | {"multipart/byteranges": binary}},
        "400": {"description": "The `Range` header is malformed (a plain-text answer), or a "
                "query parameter is unknown or wrong (a problem).", "headers": _headers(),
                "content": plain | {PROBLEM_JSON: {"schema": _ref("schemas", "Problem")}}},
        "416": {"description": "`Range` starts past the end of the file: a plain-text answer; "
                "`Content-Range` gives the file's size (`bytes */88244`).",
                "headers": _headers("Content-Range"), "content": plain},
        **_answers("NotFound", *ACCOUNT),
    }  # fmt: skip
    return {"get": _operation(
        "A call's recording",
        "The audio of the call's recording, where its `recording_url` points, to the account "
        "that owns the call. Range requests let a player seek.",
        f'{curl} -o call.wav "{base}/call-recordings/{sid}/file"',
        responses,
        parameters=parameters,
    )}  # fmt: skip


def _twiml(description: str, **examples: bytes) -> Json:
    shown = {name: {"value": body.decode()} for name, body in examples.items()}
    return _response(description, TWIML, {"type": "string"}, shown, _headers())


def _webhook(base: str, path: str, form: str, example: Json, ok: Json, *, summary: str,
             description: str) -> Json:  # fmt: skip
    """A webhook Twilio posts: its form, signed, answered with TwiML."""
    fields = " \\\n".join(f'  --data-urlencode "{name}={value}"' for name, value in example.items())
    curl = (f'{SIGNATURE_NOTE}\ncurl "{base}{path}" \\\n'
            f'  -H "X-Twilio-Signature: $SIGNATURE" \\\n{fields}')  # fmt: skip
    schema = {"schema": _ref("schemas", form), "examples": {"example": {"value": example}}}
    body = {"required": True, "content": {FORM_TYPE: schema}}
    responses = {"200": ok} | _answers(*WEBHOOK)
    return {"post": _operation(summary, description, curl, responses, body=body)}


def _webhooks(base: str) -> Json:
    forward = twiml.forward(FORWARD_TO, caller_id=VOICE_EXAMPLE["From"],
                            recording_callback_url=f"{base}/twilio/recording")  # fmt: skip
    done = _twiml("Received: an empty TwiML `<Response/>`.", example=twiml.empty())
    return {
        "/twilio/voice": _webhook(base, "/twilio/voice", "VoiceWebhook", VOICE_EXAMPLE,
            _twiml("What Twilio does with the call: for one of our numbers, `<Dial>` its "
                   "`forward_to`, recorded from the answer, the recording announced to "
                   "`/twilio/recording`; for a number we do not have, `<Say>` and `<Hangup/>`.",
                   forward=forward, unknown_number=twiml.decline(UNKNOWN_NUMBER)),
            summary="Twilio: a call comes in", description="Twilio asks what to do with a call "
            "to one of our numbers (its Voice webhook, \"A call comes in\"). A call to a number "
            "we have is accepted into the work queue, stored in the background (`sid`, numbers, "
            "`direction`, `status`, `contact_name`, `start_time` = now; account, company, "
            "campaign and `user_source` from the number) and forwarded; a call to a number we "
            "do not have is declined, nothing stored. Answered at once, also while the database "
            "is busy with an import."),
        "/twilio/status": _webhook(base, "/twilio/status", "StatusWebhook", STATUS_EXAMPLE, done,
            summary="Twilio: a call's status changes", description="Twilio tells that a call "
            "moved (its status callback, \"Call status changes\"): ringing, in-progress, then "
            "completed, busy, no-answer, failed or canceled with the duration. Accepted into the "
            "work queue and applied in the background, in any order and any number of times: "
            "a late `ringing` never undoes `completed`, ten deliveries are one change, and a "
            "status that arrives before the voice webhook still makes the right call."),
        "/twilio/recording": _webhook(base, "/twilio/recording", "RecordingWebhook",
            RECORDING_EXAMPLE, done, summary="Twilio: a recording is ready",
            description="Twilio tells that the recording our `<Dial>` asked for is ready (its "
            "`recordingStatusCallback`). On `completed` it is fetched in the background, with "
            "retries, and kept; the call's `recording_url` then points at "
            "`/call-recordings/{sid}/file`."),
    }  # fmt: skip


def _security(auth: Auth) -> list[Json]:
    """An operation's `security`, as its route declares: Basic credentials, a Twilio signature,
    or none."""
    if auth is Auth.ACCOUNT:
        return [{"basicAuth": []}]
    if auth is Auth.PUBLIC:
        return []
    if auth is Auth.TWILIO_SIGNATURE:
        return [{"twilioSignature": []}]
    if auth is Auth.SESSION:  # the web app's pages are never documented; were one, no Basic
        return []
    assert_never(auth)


def _paths(items: Json, routes: Iterable[PolicyRoute]) -> Json:
    """`items`, one per documented route with its methods (HEAD aside), each operation secured
    as its route declares."""
    routed = {route.path: route for route in routes if route.include_in_schema}
    if unpaired := routed.keys() ^ items.keys():
        raise LookupError(f"routed and documented paths differ: {sorted(unpaired)}")
    for path, item in items.items():
        methods = {method.lower() for method in routed[path].methods or ()} - {"head"}
        if methods != set(item):
            raise LookupError(f"{path} is routed for {sorted(methods)}, documented {sorted(item)}")
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
                 "Responses are never cached (`Cache-Control: no-store`). Live calls arrive from "
                 "Twilio, through the webhooks at the end of this page."},
        "servers": [{"url": public_url}],
        "security": [{"basicAuth": []}],
        "paths": _paths({
            "/companies": _get("List companies", "The account's companies, ordered by id.",
                f'{curl} "{base}/companies"',
                _ok("The companies.", "CompaniesPage", {"companies": companies}),
                "InvalidParameters", *ACCOUNT),
            "/campaigns": _get("List campaigns", "Campaign ids are strings. Without "
                "`company_id`: every campaign of the account.",
                f'{curl} "{base}/campaigns?company_id=1001"',
                _ok("The campaigns.", "CampaignsPage", {"campaigns": campaigns}),
                "InvalidParameters", "NotFound", *ACCOUNT, params=("company_id",)),
            "/calls": _get("Query calls", "No parameter is required: without any, every call "
                "of the account. Newest first (`start_time`, then `id`, descending); follow "
                "`next` until it is absent to get every matching call exactly once.",
                f'{curl} "{base}/calls?campaign_id=s2212&page_size=1"',
                _ok("A page of calls.", "CallsPage", {"calls": [CALL_EXAMPLE], "next": next_url}),
                "InvalidParameters", "NotFound", *ACCOUNT, params=tuple(PARAMETERS)),
            "/call-recordings/{sid}/file": _recording_file(base, curl),
            "/healthz": _get("Liveness", "The process answers. No credentials needed.",
                f'curl "{base}/healthz"', _ok("Alive.", "Health", {"status": "ok"}, public=True)),
            "/readyz": _get("Readiness", "The database answers too. No credentials needed.",
                f'curl "{base}/readyz"',
                _ok("Ready to serve.", "Health", {"status": "ready"}, public=True),
                "DatabaseUnavailable"),
            **_webhooks(base),
        }, routes),
        "components": {
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic", "description": "HTTP Basic "
                    "auth on every API request: the client id is the username, the client "
                    "secret the password."},
                "twilioSignature": {"type": "apiKey", "in": "header",
                    "name": "X-Twilio-Signature", "description": "Twilio signs each webhook: "
                    "base64 HMAC-SHA1, keyed by the account's auth token, of the URL Twilio was "
                    "given (`PHONEWAGON_PUBLIC_URL` + path + query, exactly: scheme, host, port) "
                    "followed by every posted field's name and value, sorted by name. Any of "
                    "the comma-separated `PHONEWAGON_TWILIO_AUTH_TOKEN` values is accepted, so "
                    "a token can be rotated."},
            },
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

# How each security scheme is named beside an operation, linking to where it is explained.
CREDENTIALS = {
    "basicAuth": '<a href="#authentication">HTTP Basic</a>, your client id and secret.',
    "twilioSignature": '<a href="#webhook-signature"><code>X-Twilio-Signature</code></a>, '
    "Twilio's signature by your auth token.",
}


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


def _examples(response: Json) -> list[tuple[str, Json]]:
    """A response's named examples, over all its media types."""
    content = response.get("content", {}).values()
    return [pair for media in content for pair in media.get("examples", {}).items()]


def _slug(problem: Json) -> str:
    return str(problem["type"]).rpartition("#problem-")[2]


def _anchor(problem: Json) -> str:
    """Where the page explains `problem`: by its slug, or by status for an `about:blank` one."""
    if problem["type"] == "about:blank":
        return f"refused-{problem['status']}"
    return f"problem-{_slug(problem)}"


def _shape(schema: Json) -> str:
    """A field's schema in words."""
    if "anyOf" in schema:
        return " or ".join(_shape(choice) for choice in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    if "title" in schema:
        return str(schema["title"])
    kind = str(schema["type"])
    if "pattern" in schema:
        return f"{kind} `{schema['pattern']}`"
    if "maximum" in schema:
        return f"{kind}, {schema.get('minimum', '')} to {schema['maximum']}"
    if "maxLength" in schema:
        return f"{kind}, up to {schema['maxLength']} characters"
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _answer(spec: Json, status: str, response: Json) -> str:
    """One line of an operation's answers: a problem links to its explanation."""
    problems = [example["value"] for _, example in _examples(response)
                if PROBLEM_JSON in response["content"]]  # fmt: skip
    if problems:
        links = ", ".join(
            f'<a href="#{html.escape(_anchor(p))}">{_text(p["title"])}</a>' for p in problems
        )
        return f"<li><strong>{_text(status)}</strong> {links}</li>"
    media = ", ".join(_code(name) for name in response.get("content", {}))
    return f"<li><strong>{_text(status)}</strong> {_text(response['description'])} {media}</li>"


def _fields(spec: Json, body: Json) -> str:
    """The form fields an operation reads, with their shapes."""
    ((media, content),) = body["content"].items()
    schema = _resolve(spec, content["schema"])
    rows = [
        (_code(name), _text(_shape(field)), "yes" if name in schema["required"] else "no",
         _text(field.get("description", ""))) for name, field in schema["properties"].items()
    ]  # fmt: skip
    note = f"<p>Sent as {_code(media)}. {_text(schema['description'])}</p>"
    return note + _table(("Field", "Shape", "Required", "Notes"), rows)


def _endpoint(spec: Json, path: str, method: str, operation: Json) -> str:
    parameters = [_resolve(spec, p) for p in operation["parameters"]]
    rows = [(_code(p["name"]), _text(p["in"]), _text(p["schema"]["type"]),
             _text(str(p["schema"].get("default", ""))), _text(p["description"]))
            for p in parameters]  # fmt: skip
    schemes = [name for requirement in operation["security"] for name in requirement]
    credentials = " ".join(CREDENTIALS[name] for name in schemes) or "None."
    responses = {s: _resolve(spec, r) for s, r in operation["responses"].items()}
    answers = "".join(_answer(spec, status, response) for status, response in responses.items())
    ok = responses["200"]
    shown = _examples(ok)
    named = len(shown) > 1
    examples = "".join(
        f"<p>Example response{' (' + name.replace('_', ' ') + ')' if named else ''}:</p>"
        f"{_pre(example['value'])}"
        for name, example in shown
    )
    anchor = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
    parts = [
        f'<h3 id="{anchor}">{method.upper()} {html.escape(path)}</h3>',
        f"<p><strong>{_text(operation['summary'])}.</strong> {_text(operation['description'])}</p>",
        f"<p>Credentials: {credentials}</p>",
        _pre(operation["x-codeSamples"][0]["source"]),
        _table(("Parameter", "In", "Type", "Default", "Notes"), rows) if rows else "",
        _fields(spec, operation["requestBody"]) if "requestBody" in operation else "",
        f"<ul>{answers}</ul>",
        examples,
    ]
    return "".join(parts)


def _endpoints(spec: Json, *, webhooks: bool) -> list[str]:
    """The operations secured by a Twilio signature, or all the others."""
    return [
        _endpoint(spec, path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if ({"twilioSignature": []} in operation["security"]) == webhooks
    ]


def _problems(spec: Json) -> list[str]:
    """Each problem the server answers with, under its anchor."""
    return [
        f'<h3 id="{html.escape(_anchor(example["value"]))}">{example["value"]["status"]} '
        f"{html.escape(example['value']['title'])}</h3>"
        f"<p>{_text(example.get('description', response['description']))}</p>"
        f"{_pre(example['value'])}"
        for response in spec["components"]["responses"].values()
        for _, example in _examples(response)
    ]


def render_docs(spec: dict[str, Any]) -> str:
    """One self-contained HTML page for people, generated from `spec`."""
    esc, base, title = html.escape, spec["servers"][0]["url"], spec["info"]["title"]
    components, calls_get = spec["components"], spec["paths"]["/calls"]["get"]
    rate_limited = _resolve(spec, calls_get["responses"]["429"])
    limits = calls_get["responses"]["200"]["headers"] | rate_limited["headers"]
    limit_rows = [(_code(name), _code(str(header["example"])), _text(header["description"]))
                  for name, header in limits.items() if name != "Cache-Control"]  # fmt: skip
    page_size = components["parameters"]["page_size"]["schema"]["default"]
    signature = components["securitySchemes"]["twilioSignature"]["description"]
    calls_example = _examples(calls_get["responses"]["200"])[0][1]["value"]
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1><p>{_text(spec['info']['description'])}</p>",
        '<nav><a href="#authentication">Authentication</a><a href="#rate-limit">Rate limit</a>'
        '<a href="#endpoints">Endpoints</a><a href="#pagination">Pagination</a>'
        '<a href="#webhooks">Webhooks</a><a href="#errors">Errors</a>'
        f'<a href="{esc(base)}/openapi.json">OpenAPI</a></nav>',
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
        *_endpoints(spec, webhooks=False),
        '<h2 id="pagination">Pagination</h2>',
        "<p>Calls come newest first (<code>start_time</code>, then <code>id</code>, descending), "
        f"at most {esc(str(page_size))} a page (fewer with <code>page_size</code>). While more "
        "match, the answer carries <code>next</code>, the absolute URL of the next page with every "
        "filter and the page size: follow it until it is absent to get each call once.</p>",
        _pre(calls_example["next"]),
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
        '<h2 id="webhooks">Twilio webhooks</h2>',
        "<p>Twilio calls these when one of the deployment's numbers rings: point a number's "
        "voice webhook at <code>/twilio/voice</code> and its status callback at "
        "<code>/twilio/status</code> (HTTP POST); <code>/twilio/recording</code> is named by our "
        "own answer. Each is accepted into a work queue and answered at once; the calls are "
        "written in the background and show in <code>/calls</code> and its change feed.</p>",
        f'<p id="webhook-signature">{_text(signature)} A webhook that is unsigned, tampered '
        'with or signed otherwise is answered <a href="#problem-forbidden">403</a> and nothing '
        "is written.</p>",
        *_endpoints(spec, webhooks=True),
        '<h2 id="errors">Errors</h2>',
        f"<p>Errors are <code>{PROBLEM_JSON}</code> (RFC 9457): <code>type</code> links to its "
        "explanation below, <code>title</code> names it, <code>status</code> repeats the HTTP "
        "status and <code>detail</code> tells what happened; for bad parameters, "
        "<code>errors</code> names each one.</p>",
        *_problems(spec),
        "</body></html>",
    ]
    return "\n".join(parts)
