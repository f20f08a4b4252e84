"""The request path alone: how many requests a second our cheapest route answers, against a bare
app, with and without the access log.

    uv run python bench/request_path.py            # 3 rounds of 3 s per server
    uv run python bench/request_path.py --write    # also update docs/benchmarks.md

`GET /healthz` reads nothing and writes nothing: what it costs is what every request pays on
its way in and out (uvicorn's HTTP parsing, the trusted-proxy check, the request id, the
security headers, routing, the error handlers, the metrics sample and the access log line).
The bare app is a raw ASGI app served by the same `run_uvicorn`, answering ours' bytes. The
ratio of the two bounds the ratio of any route: the webhooks' and page views' targets are
ratios to bare apps (docs/benchmarks.md, "Webhooks" and "Website visits").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from dni_visits import Versus, race_bare, table
from load_test import free_port, server_command
from testbed import measured_on, serve_replaying, write_section
from webhooks import HOST, clean_env, running

SECTION = "## Request path"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}'")
    parser.add_argument("--bare", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_replaying(int(args.bare[1]), {"/healthz": json.loads(args.bare[0])}, bytes)
        return
    rounds, seconds = 3, 3.0
    with tempfile.TemporaryDirectory(prefix="pw-bench-path-") as work:
        workdir = Path(work)
        results = []
        for name, level in (("GET /healthz", "info"), ("GET /healthz, no access log", "warning")):
            print(f"{name}: ours against bare …", file=sys.stderr, flush=True)
            results.append(against_bare(name, workdir, level, rounds=rounds, seconds=seconds))
    text = section(results, rounds, seconds)
    print(text)
    if args.write:
        write_section(text, SECTION)


def against_bare(name: str, workdir: Path, log_level: str, **kwargs: Any) -> Versus:
    port = free_port()
    env = clean_env(
        PHONEWAGON_DATABASE_URL=f"sqlite:///{workdir}/{log_level}.db",
        PHONEWAGON_PUBLIC_URL=f"http://{HOST}:{port}",
        PHONEWAGON_LOG_FORMAT="json",
        PHONEWAGON_LOG_LEVEL=log_level,
    )
    request = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    args = [*server_command(), "serve", "--port", str(port)]
    result = Versus(name, ("ours", "bare"))
    with running(args, env=env, log=workdir / f"serve-{port}.log", port=port) as ours:
        race_bare(result, ours, lambda: request, __file__, **kwargs)
    return result


def section(results: list[Versus], rounds: int, seconds: float) -> str:
    ratios = ", ".join(f"{r.name}: {r.ratio:.2f}x" for r in results)
    return "\n".join(
        [
            SECTION,
            "",
            "`GET /healthz` against `phonewagon-server serve` on SQLite, one worker: it reads and"
            " writes nothing, so its cost is the path every request takes in and out (uvicorn's"
            " HTTP parsing, the trusted-proxy check, the request id, the security headers,"
            " routing, the error handlers, the metrics sample and, at the default log level, the"
            f" access log line). {rounds} rounds of {seconds:.0f} s per server, alternating, 8"
            " keep-alive connections from one uvloop client. *bare* is a raw ASGI app served by"
            " the same `run_uvicorn`, answering ours' bytes.",
            "",
            f"Ours against bare: {ratios}. Every route pays this path on top of its own work."
            " The page views' bare app, reading a small JSON body, answers nearly as fast as"
            " this one: against it the path alone leaves about this ratio, before a page view"
            ' reads its body or writes a row (the crawler\'s row of "Website visits"). The'
            " webhooks' bare app parses a larger form and is several times slower, which leaves"
            " them more room. Without the access log line the ratio moves within the noise: the"
            " line is not what the path costs.",
            "",
            *table(results, unit="requests/s"),
            "",
            measured_on(),
            "",
            "Rerun: `uv run python bench/request_path.py --write`.",
        ]
    )


if __name__ == "__main__":
    main()
