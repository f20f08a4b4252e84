"""What every benchmark shares: the machine's PostgreSQL, a scratch schema in it, the
version line, and docs/benchmarks.md, where each script owns one `## ` section."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

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
