"""What every request handler shares: settings, database, limiters and clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from starlette.requests import Request

from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.ratelimit import Limiter


@dataclass(slots=True)
class AppContext:
    settings: Settings
    database: Database
    account_limiter: Limiter
    auth_failure_limiter: Limiter
    wall_clock: Callable[[], float] = field(default=time.time)

    def now_ms(self) -> int:
        return int(self.wall_clock() * 1000)


def context_of(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)
