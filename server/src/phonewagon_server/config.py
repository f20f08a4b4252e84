"""Settings, built once from flags and `PHONEWAGON_*` variables and passed down."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from phonewagon_server.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///phonewagon.db"

_PERIODS = {"second": 1, "minute": 60, "hour": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour)s?\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    """`limit` requests in any rolling `window` seconds."""

    limit: int
    window: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Read `50/minute`, `100/hour`, `5/10second`."""
        match = _RATE.match(text)
        if not match or int(match[1]) < 1:
            raise ConfigurationError(
                f"rate limit {text!r} is not of the form N/minute, N/second or N/hour "
                "(e.g. 50/minute), with N at least 1"
            )
        count = int(match[2] or 1)
        return cls(limit=int(match[1]), window=count * _PERIODS[match[3]])

    def __str__(self) -> str:
        return f"{self.limit}/{self.window}s"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = "http://127.0.0.1:8000"
    rate_limit: Rate = Rate(limit=50, window=60)
    # Failed authentications one client address may make before it is answered 429.
    auth_failure_limit: Rate = Rate(limit=20, window=60)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `PHONEWAGON_*` variables; keyword overrides (from flags) win."""
        env = os.environ if env is None else env
        settings = cls()
        if url := env.get("PHONEWAGON_DATABASE_URL"):
            settings = replace(settings, database_url=url)
        if url := env.get("PHONEWAGON_PUBLIC_URL"):
            settings = replace(settings, public_url=url)
        if rate := env.get("PHONEWAGON_RATE_LIMIT"):
            settings = replace(settings, rate_limit=Rate.parse(rate))
        if rate := env.get("PHONEWAGON_AUTH_FAILURE_LIMIT"):
            settings = replace(settings, auth_failure_limit=Rate.parse(rate))
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        return replace(settings, public_url=normalize_public_url(settings.public_url))


def normalize_public_url(url: str) -> str:
    if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", url):
        raise ConfigurationError(
            f"public URL {url!r} must be an absolute http(s) URL such as https://api.example.com"
        )
    return url.rstrip("/")
