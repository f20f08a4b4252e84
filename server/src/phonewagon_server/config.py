"""Settings, built once from flags and `PHONEWAGON_*` variables and passed down.

Each setting is declared once, in SETTINGS: `Settings.from_env` and `as_env`, the flags of
`serve` and `demo` with their help, and the README's table of settings are made from it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
from click.decorators import FC

from phonewagon_server.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///phonewagon.db"
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")
BACKGROUND_WORK = ("process", "none")

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
    """What the server runs with: each field is a setting of SETTINGS, which says what it means."""

    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = "http://127.0.0.1:8000"
    rate_limit: Rate = Rate(limit=50, window=60)
    auth_failure_limit: Rate = Rate(limit=20, window=60)
    sign_in_limit: Rate = Rate(limit=10, window=900)
    sign_in_address_limit: Rate = Rate(limit=50, window=900)
    credential_cache_seconds: int = 5
    redis_url: str | None = None
    redis_prefix: str = "phonewagon"
    workers: int = 1
    trusted_proxies: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    metrics: bool = True
    metrics_allow: tuple[str, ...] = ()
    log_format: str = "json"
    twilio_account_sid: str = ""
    twilio_auth_tokens: tuple[str, ...] = ()
    twilio_api_base: str = "https://api.twilio.com"
    recordings_dir: Path = Path("recordings")
    background_work: str = "process"
    dni_hold_minutes: int = 15
    attribution_days: int = 30
    dni_visit_limit: Rate = Rate(limit=120, window=60)
    dni_company_limit: Rate = Rate(limit=6000, window=60)
    dni_holds_per_address: int = 3

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        flags: Mapping[str, object] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Settings from `PHONEWAGON_*` variables. A flag given (by setting name, as click passes
        it) wins, its variable unread; `defaults` replace ours where neither is given. An empty
        flag or variable counts as not given."""
        env = os.environ if env is None else env
        flags = flags or {}
        values = dict(defaults or {})
        for setting in SETTINGS:
            if not setting.variable:
                continue  # a flag of `serve` alone, not part of Settings
            if setting.flag and (text := _flag_text(flags.get(setting.name))):
                values[setting.name] = setting.parse(text, setting.flag)
            elif text := env.get(setting.variable, ""):
                values[setting.name] = setting.parse(text, setting.variable)
        settings = replace(cls(), **values)
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
        return {
            setting.variable: _as_text(value)
            for setting in SETTINGS
            if setting.variable and (value := getattr(self, setting.name)) is not None
        }


def _flag_text(flag_value: object) -> str:
    """A flag's value as it was typed (click has made `--workers` an int); empty if not given."""
    return "" if flag_value is None else str(flag_value)


def _as_text(value: object) -> str:
    """A setting's value as its variable says it, for `parse` to read back."""
    if isinstance(value, Rate):
        return value.spec
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


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


def _verbatim(text: str, source: str) -> str:
    return text


def _path(text: str, source: str) -> Path:
    return Path(text)


def parse_account_sid(text: str, name: str) -> str:
    if not re.match(r"^AC[0-9a-f]{32}$", text.strip()):
        raise ConfigurationError(f"{name} must be AC and 32 hexadecimal digits, not {text!r}")
    return text.strip()


def parse_tokens(text: str, name: str) -> tuple[str, ...]:
    """`token` or `new,old` while a token is rotated: each accepted."""
    tokens = tuple(token.strip() for token in text.split(",") if token.strip())
    if not tokens or any(len(token) < 16 or not token.isalnum() for token in tokens):
        raise ConfigurationError(
            f"{name} must be one or more comma-separated Twilio auth tokens (32 letters and digits)"
        )
    return tokens


def parse_api_base(text: str, name: str) -> str:
    if not re.match(r"^https?://[^/?#\s@]+$", text.strip().rstrip("/")):
        raise ConfigurationError(
            f"{name} must be scheme://host[:port] with no path, such as https://api.twilio.com"
        )
    return text.strip().rstrip("/")


def parse_background_work(text: str, name: str) -> str:
    if text not in BACKGROUND_WORK:
        raise ConfigurationError(
            f"{name} must be one of {', '.join(BACKGROUND_WORK)}, not {text!r}"
        )
    return text


def _rate(text: str, source: str) -> Rate:
    return Rate.parse(text)


def _origins(text: str, source: str) -> tuple[str, ...]:
    return parse_origins(text)


def plain(markdown: str) -> str:
    """A help or default text for a terminal: the README's backticks dropped."""
    return markdown.replace("`", "")


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of the server, declared once: see SETTINGS."""

    name: str  # its field of Settings; without a variable, a parameter of `serve` and `demo`
    flag: str  # "": set by its variable alone
    variable: str  # "": a flag of `serve` and `demo` alone, not part of Settings
    # Markdown, as the README's table shows them; `--help` shows them `plain`.
    default: str
    help: str
    # Reads the text of its flag or variable, naming the one it came from in its errors.
    parse: Callable[[str, str], Any] = _verbatim
    metavar: str | None = None
    flag_type: click.ParamType[Any] = click.STRING

    @property
    def flag_help(self) -> str:
        """Its meaning, variable and default, as `--help` shows them."""
        variable = f"env: {self.variable}; " if self.variable else ""
        return plain(f"{self.help} [{variable}default: {self.default}]")

    def click_option(self) -> Callable[[FC], FC]:
        """Its flag. Absent, one with a variable is None (the variable then Settings decide)."""
        return click.option(
            self.flag,
            type=self.flag_type,
            metavar=self.metavar,
            default=None if self.variable else plain(self.default),
            help=self.flag_help,
        )


# Every setting, in the order of `--help` and of the README's table.
SETTINGS = (
    Setting(
        name="database_url",
        flag="--database-url",
        variable="PHONEWAGON_DATABASE_URL",
        default=f"`{DEFAULT_DATABASE_URL}`",
        help="`sqlite:///FILE` (relative), `sqlite:////abs/FILE`,"
        " or `postgresql://user@host:5432/db`",
        metavar="URL",
    ),
    Setting(
        name="host",
        flag="--host",
        variable="",
        default="`127.0.0.1`",
        help="Address to listen on",
    ),
    Setting(
        name="port",
        flag="--port",
        variable="",
        default="`8000`",
        help="Port to listen on",
        flag_type=click.INT,
    ),
    Setting(
        name="public_url",
        flag="--public-url",
        variable="PHONEWAGON_PUBLIC_URL",
        default="`http://HOST:PORT`",
        help="Base of the `next` links (never taken from the request's `Host`)",
        metavar="URL",
    ),
    Setting(
        name="rate_limit",
        flag="--rate-limit",
        variable="PHONEWAGON_RATE_LIMIT",
        default="`50/minute`",
        help="Requests per account in any rolling window:"
        " `N/second`, `N/minute`, `N/hour`, `N/10second`",
        parse=_rate,
        metavar="N/PERIOD",
    ),
    Setting(
        name="auth_failure_limit",
        flag="",
        variable="PHONEWAGON_AUTH_FAILURE_LIMIT",
        default="`20/minute`",
        help="Failed authentications per client address before it is answered `429`",
        parse=_rate,
    ),
    Setting(
        name="sign_in_limit",
        flag="",
        variable="PHONEWAGON_SIGN_IN_LIMIT",
        default="`10/15minute`",
        help="Sign-in attempts to the web app per email address, right or wrong, before it is"
        " refused for a while (the right password too)",
        parse=_rate,
    ),
    Setting(
        name="sign_in_address_limit",
        flag="",
        variable="PHONEWAGON_SIGN_IN_ADDRESS_LIMIT",
        default="`50/15minute`",
        help="Sign-in attempts to the web app per client address, whatever the email",
        parse=_rate,
    ),
    Setting(
        name="credential_cache_seconds",
        flag="",
        variable="PHONEWAGON_CREDENTIAL_CACHE_SECONDS",
        default="`5`",
        help="How long a verified credential is trusted without asking the database:"
        " a revoked one is refused within this time; `0`: ask on every request",
        parse=_seconds,
    ),
    Setting(
        name="workers",
        flag="--workers",
        variable="PHONEWAGON_WORKERS",
        default="`1`",
        help="Worker processes; more than one needs `--redis-url`",
        parse=_positive,
        flag_type=click.IntRange(min=1),
    ),
    Setting(
        name="redis_url",
        flag="--redis-url",
        variable="PHONEWAGON_REDIS_URL",
        default="none",
        help="Redis that shares the rate limit between workers and machines",
        metavar="URL",
    ),
    Setting(
        name="redis_prefix",
        flag="",
        variable="PHONEWAGON_REDIS_PREFIX",
        default="`phonewagon`",
        help="Namespace of this deployment's keys in Redis, should several share one",
    ),
    Setting(
        name="trusted_proxies",
        flag="--trusted-proxies",
        variable="PHONEWAGON_TRUSTED_PROXIES",
        default="none",
        help="Comma-separated IPs/CIDRs of reverse proxies whose `X-Forwarded-For` names the"
        " client (for the auth-failure throttle and logs); from anyone else the header is ignored",
        parse=parse_networks,
        metavar="IPS",
    ),
    Setting(
        name="cors_origins",
        flag="--cors-origins",
        variable="PHONEWAGON_CORS_ORIGINS",
        default="none",
        help="Comma-separated browser origins (`https://app.example.com`) allowed to call the API"
        " with `Authorization`, or `*`; none: no CORS headers at all",
        parse=_origins,
        metavar="ORIGINS",
    ),
    Setting(
        name="metrics",
        flag="--metrics",
        variable="PHONEWAGON_METRICS",
        default="`on`",
        help="Prometheus metrics at `/metrics`, without credentials: do not expose them"
        " publicly; restrict them with `--metrics-allow` or at the proxy",
        parse=parse_switch,
        flag_type=click.Choice(("on", "off")),
    ),
    Setting(
        name="metrics_allow",
        flag="--metrics-allow",
        variable="PHONEWAGON_METRICS_ALLOW",
        default="any",
        help="Comma-separated IPs/CIDRs that may read `/metrics`; others get `404`",
        parse=parse_networks,
        metavar="IPS",
    ),
    Setting(
        name="log_format",
        flag="--log-format",
        variable="PHONEWAGON_LOG_FORMAT",
        default="`json` (`text` for `demo`)",
        help="Log lines on stderr",
        flag_type=click.Choice(LOG_FORMATS),
    ),
    Setting(
        name="twilio_account_sid",
        flag="",
        variable="PHONEWAGON_TWILIO_ACCOUNT_SID",
        default="none",
        help="Your Twilio account (`AC...`): webhooks of another account are refused",
        parse=parse_account_sid,
    ),
    Setting(
        name="twilio_auth_tokens",
        flag="",
        variable="PHONEWAGON_TWILIO_AUTH_TOKEN",
        default="none",
        help="Its auth token, which signs the webhooks (none: every webhook is refused);"
        " `new,old` accepts both while you rotate",
        parse=parse_tokens,
    ),
    Setting(
        name="twilio_api_base",
        flag="",
        variable="PHONEWAGON_TWILIO_API_BASE",
        default="`https://api.twilio.com`",
        help="Where recordings are fetched from, and the only place they are fetched from",
        parse=parse_api_base,
    ),
    Setting(
        name="recordings_dir",
        flag="--recordings-dir",
        variable="PHONEWAGON_RECORDINGS_DIR",
        default="`recordings` (here)",
        help="The directory where fetched call recordings are kept",
        parse=_path,
        metavar="DIR",
    ),
    Setting(
        name="background_work",
        flag="--background-work",
        variable="PHONEWAGON_BACKGROUND_WORK",
        default="`process`",
        help="`process`: `serve` applies webhooks and fetches recordings in a process of its own"
        " beside the web workers; `none`: you run `phonewagon-server work` yourself",
        parse=parse_background_work,
        flag_type=click.Choice(BACKGROUND_WORK),
    ),
    Setting(
        name="dni_hold_minutes",
        flag="",
        variable="PHONEWAGON_DNI_HOLD_MINUTES",
        default="`15`",
        help="How long a website visitor keeps a pool number after the page's last heartbeat",
        parse=_positive,
    ),
    Setting(
        name="attribution_days",
        flag="",
        variable="PHONEWAGON_ATTRIBUTION_DAYS",
        default="`30`",
        help="How far back a call looks for its visitor's first touch; older visits are purged",
        parse=_positive,
    ),
    Setting(
        name="dni_visit_limit",
        flag="",
        variable="PHONEWAGON_DNI_VISIT_LIMIT",
        default="`120/minute`",
        help="Requests to `/dni/visits` and `/dni/heartbeat` per client address",
        parse=_rate,
    ),
    Setting(
        name="dni_company_limit",
        flag="",
        variable="PHONEWAGON_DNI_COMPANY_LIMIT",
        default="`6000/minute`",
        help="Requests to `/dni/visits` and `/dni/heartbeat` per company's site key",
        parse=_rate,
    ),
    Setting(
        name="dni_holds_per_address",
        flag="",
        variable="PHONEWAGON_DNI_HOLDS_PER_ADDRESS",
        default="`3`",
        help="Visitors of one client address that may hold a company's pool numbers at once",
        parse=_positive,
    ),
    Setting(
        name="log_level",
        flag="--log-level",
        variable="",
        default="`info`",
        help="Log lines of this level and above: `debug`, `info`, `warning` or `error`",
        flag_type=click.Choice(LOG_LEVELS),
    ),
)


def setting_named(name: str) -> Setting:
    return next(setting for setting in SETTINGS if setting.name == name)


def settings_table_markdown() -> str:
    """The table of settings under "Running the server" in README.md."""
    rows = [
        (_code(setting.flag), _code(setting.variable), setting.default, setting.help)
        for setting in SETTINGS
    ]
    lines = ["| Flag | Variable | Default | Meaning |", "|---|---|---|---|"]
    lines += ["|" + "|".join(f" {cell} " if cell else " " for cell in row) + "|" for row in rows]
    return "\n".join(lines) + "\n"


def _code(name: str) -> str:
    return f"`{name}`" if name else ""
