"""Domain errors that know their HTTP status; `api.problems` renders them as problem+json.

PhonewagonError
├── InvalidParameters   400  one or more query parameters are wrong (each one named)
├── UnreadableBody      400  a body that is not its route's form
├── InvalidField        400  a webhook's field is missing or of the wrong shape (named)
├── Unauthenticated     401  missing, unknown, wrong or revoked credentials (one answer for all)
├── Forbidden           403  a webhook not signed by this deployment's Twilio account
├── NotFound            404  no such resource for this account (also: another account's)
├── PayloadTooLarge     413  a body over its route's bound
├── RateLimited         429  the account (or a client address failing auth) is over its limit
└── DatabaseUnavailable 503  the database cannot be reached; retry later
    ├── DatabaseTimeout 503  it answered, but a statement ran past its time limit
    └── WriteConflict   503  it rolled the transaction back for a concurrent writer's sake
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParameterError:
    name: str
    detail: str


class PhonewagonError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidParameters(PhonewagonError):
    status = 400
    slug = "invalid-parameters"
    title = "Invalid Query Parameters"

    def __init__(self, errors: list[ParameterError]) -> None:
        names = ", ".join(e.name for e in errors)
        super().__init__(f"Check the query parameters: {names}.")
        self.errors = errors


class UnreadableBody(PhonewagonError):
    status = 400
    slug = "unreadable-body"
    title = "Unreadable Request Body"


class InvalidField(PhonewagonError):
    status = 400
    slug = "invalid-field"
    title = "Invalid Field"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"The field {field} {problem}.")
        self.field = field


class Forbidden(PhonewagonError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class PayloadTooLarge(PhonewagonError):
    status = 413
    slug = "payload-too-large"
    title = "Payload Too Large"


class Unauthenticated(PhonewagonError):
    status = 401
    slug = "unauthenticated"
    title = "Unauthenticated"

    def __init__(self) -> None:
        super().__init__(
            "Send your client id and client secret as the HTTP Basic auth username and password."
        )


class NotFound(PhonewagonError):
    status = 404
    slug = "not-found"
    title = "Not Found"


class RateLimited(PhonewagonError):
    status = 429
    slug = "rate-limited"
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class DatabaseUnavailable(PhonewagonError):
    status = 503
    slug = "database-unavailable"
    title = "Service Unavailable"
    retry_after = 5

    def __init__(
        self,
        *,
        reason: str = "",
        detail: str = "The database cannot be reached right now. Retry shortly.",
    ) -> None:
        super().__init__(detail)
        self.reason = reason  # for the operator's eyes only: never sent to API clients


class DatabaseTimeout(DatabaseUnavailable):
    def __init__(self) -> None:
        super().__init__(
            reason="statement timeout",
            detail="The database took too long to answer. Retry shortly.",
        )


class WriteConflict(DatabaseUnavailable):
    """A deadlock or serialization failure: nothing of the transaction was written."""

    retry_after = 1

    def __init__(self, *, reason: str) -> None:
        super().__init__(
            reason=reason,
            detail="A concurrent change conflicted with this request. Retry it.",
        )


class ConfigurationError(Exception):
    """The operator's settings cannot work; the message says what to change."""
