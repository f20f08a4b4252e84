"""The application as worker processes build it: from `PHONEWAGON_*` variables alone.

`phonewagon-server serve --workers N` hands uvicorn `app_from_env` as a factory; each worker
opens its own database pool and closes it when it stops. The background work runs in a process
of its own (`phonewagon_server.background`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from phonewagon_server.api.app import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import open_database
from phonewagon_server.memory import keep_page_memory


def app_from_env() -> Starlette:
    keep_page_memory()
    settings = Settings.from_env()
    database = open_database(settings.database_url)
    app = create_app(settings, database, background=False)  # `serve` runs it beside

    running = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Starlette) -> AsyncIterator[None]:
        async with running(started):
            yield
        database.close()

    app.router.lifespan_context = lifespan
    return app
