"""What every benchmark shares: the machine's PostgreSQL, a scratch schema in it, the
version line, and docs/benchmarks.md, where each script owns one `## ` section."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
POSTGRES_URL = os.environ.get(
    "PHONEWAGON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections live in a fresh schema of the test database, dropped afterwards."""
    schema = f"pw_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def schema_of(url: str) -> str:
    """The schema a `postgres_schema()` URL lives in."""
    return url.rsplit("search_path%3D", 1)[1]


def postgres_version() -> str:
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return "unknown"
    return str(row[0]).split()[0] if row else "unknown"


def measured_on(*software: str) -> str:
    """The closing line of every section: when, on what machine, with which versions."""
    versions = ", ".join((f"Python {platform.python_version()}", *software))
    return (
        f"Measured {dt.date.today().isoformat()} on {platform.platform()},"
        f" {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {versions}."
    )


def write_section(text: str, title: str) -> None:
    """Replace the section `title` of docs/benchmarks.md, or append it; the others stay."""
    current = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    block = text.rstrip("\n") + "\n\n"
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + block
    BENCHMARKS.write_text(updated.rstrip("\n") + "\n")


def serve_replaying(
    port: int, answers: dict[str, dict[str, Any]], read: Callable[[bytes], object]
) -> None:
    """A bare ASGI app, served on 127.0.0.1 by the same `run_uvicorn` as `serve`: it reads each
    request's body with `read` and sends the answer recorded for its path (`status`, 200 if
    absent, `headers` as pairs, `body`)."""
    from phonewagon_server.cli.serve import run_uvicorn
    from phonewagon_server.config import Settings
    from phonewagon_server.logs import logging_config

    recorded = {
        path.encode(): (
            {
                "type": "http.response.start",
                "status": answer.get("status", 200),
                "headers": [(name.encode(), value.encode()) for name, value in answer["headers"]],
            },
            {"type": "http.response.body", "body": answer["body"].encode()},
        )
        for path, answer in answers.items()
    }

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # returning at once from "lifespan" is fine with uvicorn
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        read(body)
        start, answer = recorded[scope["raw_path"]]
        await send(start)
        await send(answer)

    log_config = logging_config("json", "info")
    run_uvicorn(
        app, Settings(), host="127.0.0.1", port=port, log_level="info", log_config=log_config
    )
