"""The real server on a real port in this process; `server_testkit.World` writes its data."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from phonewagon_server.api import create_app
from phonewagon_server.config import Rate, Settings
from phonewagon_server.db import Database

ROOMY = Rate(limit=100_000, window=60)  # pages as fast as it likes: pacing is tested end to end


class LiveServer:
    """`create_app(settings, database)` under uvicorn on a free loopback port, in a thread."""

    def __init__(self, database: Database, *, rate_limit: Rate = ROOMY) -> None:
        # Bind first and hand uvicorn the socket: the port is ours, with no race to claim it.
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        settings = Settings(database_url=database.url, public_url=self.url, rate_limit=rate_limit)
        config = uvicorn.Config(
            create_app(settings, database),
            log_config=None,  # leave the test process's logging alone
            log_level="warning",
            access_log=False,
            ws="none",  # no websockets import, and none of its deprecation warnings
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()
