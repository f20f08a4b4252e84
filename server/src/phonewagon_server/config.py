"""Settings, built once from flags and `PHONEWAGON_*` variables and passed down."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from phonewagon_server.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///phonewagon.db"
LOG_FORMATS = ("json", "text")

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

    @property
    def spec(self) -> str:
        """The text `parse` reads back into this rate."""
        return f"{self.limit}/{self.window}second"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = "http://127.0.0.1:8000"
    rate_limit: Rate = Rate(limit=50, window=60)
    # Failed authentications one client address may make before it is answered 429.
    auth_failure_limit: Rate = Rate(limit=20, window=60)
    # How long a verified credential is trusted without asking the database again: a revoked
    # one is refused at most this many seconds after its revocation. 0: ask on every request.
    credential_cache_seconds: int = 5
    # Where rate-limit logs are shared between worker processes and machines.
    redis_url: str | None = None
    # Namespace of this deployment's keys in Redis, should several share one.
    redis_prefix: str = "phonewagon"
    workers: int = 1
    # Peers (IPs or CIDRs) whose X-Forwarded-For is believed; from anyone else it is ignored.
    trusted_proxies: tuple[str, ...] = ()
    # Browser origins allowed to call the API (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    metrics: bool = True
    # Client addresses (IPs or CIDRs) that may read /metrics; empty: anyone who reaches the port.
    metrics_allow: tuple[str, ...] = ()
    log_format: str = "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `PHONEWAGON_*` variables; keyword overrides (from flags) win."""
        env = os.environ if env is None else env
        given = {name: value for name, value in overrides.items() if value is not None}
        read_from_env = {
            name: read(text)
            for name, (variable, read) in _VARIABLES.items()
            if name not in given and (text := env.get(variable))
        }
        settings = replace(cls(), **read_from_env, **given)
        settings = replace(settings, public_url=normalize_public_url(settings.public_url))
        if settings.log_format not in LOG_FORMATS:
            raise ConfigurationError(
                f"log format {settings.log_format!r} is not one of {', '.join(LOG_FORMATS)}"
            )
        if settings.workers > 1 and settings.redis_url is None:
            raise ConfigurationError(
                f"{settings.workers} workers would each count requests on their own, letting an"
                " account through several times its rate limit: set PHONEWAGON_REDIS_URL"
                " (e.g. redis://127.0.0.1:6379/0) to share the count, or run one worker"
            )
        return settings

    def as_env(self) -> dict[str, str]:
        """These settings as `PHONEWAGON_*` variables, for worker processes to rebuild them."""
        env = {
            "PHONEWAGON_DATABASE_URL": self.database_url,
            "PHONEWAGON_PUBLIC_URL": self.public_url,
            "PHONEWAGON_RATE_LIMIT": self.rate_limit.spec,
            "PHONEWAGON_AUTH_FAILURE_LIMIT": self.auth_failure_limit.spec,
            "PHONEWAGON_CREDENTIAL_CACHE_SECONDS": str(self.credential_cache_seconds),
            "PHONEWAGON_WORKERS": str(self.workers),
            "PHONEWAGON_REDIS_PREFIX": self.redis_prefix,
            "PHONEWAGON_TRUSTED_PROXIES": ",".join(self.trusted_proxies),
            "PHONEWAGON_CORS_ORIGINS": ",".join(self.cors_origins),
            "PHONEWAGON_METRICS": "on" if self.metrics else "off",
            "PHONEWAGON_METRICS_ALLOW": ",".join(self.metrics_allow),
            "PHONEWAGON_LOG_FORMAT": self.log_format,
        }
        if self.redis_url is not None:
            env["PHONEWAGON_REDIS_URL"] = self.redis_url
        return env


def _positive(text: str, name: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigurationError(f"{name} must be a whole number of at least 1, not {text!r}")
    return int(text)


def _seconds(text: str, name: str) -> int:
    if not text.strip().isdigit():
        raise ConfigurationError(f"{name} must be a whole number of seconds, not {text!r}")
    return int(text)


def parse_networks(text: str, name: str) -> tuple[str, ...]:
    """`10.0.0.1, 192.168.0.0/16, ::1` -> each entry, checked to be an IP address or network."""
    entries = tuple(entry.strip() for entry in text.split(",") if entry.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry)
        except ValueError:
            raise ConfigurationError(
                f"{name}: {entry!r} is not an IP address or network (such as 10.0.0.0/8)"
            ) from None
    return entries


def parse_origins(text: str) -> tuple[str, ...]:
    """`https://app.example.com, http://localhost:3000` (or `*`) -> each origin, checked."""
    origins = tuple(origin.strip().rstrip("/") for origin in text.split(",") if origin.strip())
    for origin in origins:
        if origin != "*" and not re.match(r"^https?://[^/?#\s]+$", origin):
            raise ConfigurationError(
                f"CORS origin {origin!r} must be scheme://host[:port] (such as"
                " https://app.example.com) or *"
            )
    return origins


def parse_switch(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ("on", "off"):
        raise ConfigurationError(f"{name} must be on or off, not {text!r}")
    return value == "on"


def normalize_public_url(url: str) -> str:
    if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", url):
        raise ConfigurationError(
            f"public URL {url!r} must be an absolute http(s) URL such as https://api.example.com"
        )
    return url.rstrip("/")


def _text(value: str) -> str:
    return value


# Each setting's variable and how its text is read; a flag given for it wins, unread.
_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "database_url": ("PHONEWAGON_DATABASE_URL", _text),
    "public_url": ("PHONEWAGON_PUBLIC_URL", _text),
    "rate_limit": ("PHONEWAGON_RATE_LIMIT", Rate.parse),
    "auth_failure_limit": ("PHONEWAGON_AUTH_FAILURE_LIMIT", Rate.parse),
    "credential_cache_seconds": (
        "PHONEWAGON_CREDENTIAL_CACHE_SECONDS",
        lambda text: _seconds(text, "PHONEWAGON_CREDENTIAL_CACHE_SECONDS"),
    ),
    "redis_url": ("PHONEWAGON_REDIS_URL", _text),
    "redis_prefix": ("PHONEWAGON_REDIS_PREFIX", _text),
    "workers": ("PHONEWAGON_WORKERS", lambda text: _positive(text, "PHONEWAGON_WORKERS")),
    "trusted_proxies": (
        "PHONEWAGON_TRUSTED_PROXIES",
        lambda text: parse_networks(text, "PHONEWAGON_TRUSTED_PROXIES"),
    ),
    "cors_origins": ("PHONEWAGON_CORS_ORIGINS", lambda text: parse_origins(text)),
    "metrics": ("PHONEWAGON_METRICS", lambda text: parse_switch(text, "PHONEWAGON_METRICS")),
    "metrics_allow": (
        "PHONEWAGON_METRICS_ALLOW",
        lambda text: parse_networks(text, "PHONEWAGON_METRICS_ALLOW"),
    ),
    "log_format": ("PHONEWAGON_LOG_FORMAT", _text),
}
