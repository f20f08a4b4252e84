"""Pull every call from a Phonewagon account.

from phonewagon import Client

with Client() as client:  # PHONEWAGON_CLIENT_ID, PHONEWAGON_CLIENT_SECRET
    for call in client.calls(start_time=datetime(2024, 1, 1, tzinfo=UTC)):
        print(call.started_at, call.from_number, call.user_source)
"""

from phonewagon._version import __version__
from phonewagon.client import DEFAULT_BASE_URL, Client
from phonewagon.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    PhonewagonError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from phonewagon.models import CALL_FIELDS, Call, Campaign, Company, Page
from phonewagon.retry import Wait

__all__ = [
    "CALL_FIELDS",
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "Call",
    "Campaign",
    "Client",
    "Company",
    "ConfigurationError",
    "NotFoundError",
    "Page",
    "PhonewagonError",
    "RateLimitError",
    "ServerError",
    "UnexpectedResponseError",
    "Wait",
    "__version__",
]
