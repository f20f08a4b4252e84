"""The client's export: memory and time of `phonewagon calls --output FILE`, per file format.

    uv run python bench/client_export.py --base-url http://127.0.0.1:8000 \\
        --client-id pwid_... --client-secret pwsk_...

Against a server that is already running (with its data, and a rate limit raised out of the way),
each format runs the real `phonewagon` command as a subprocess, credentials in its environment,
writing every call of the account to OUTPUT_DIR/calls.FORMAT. The resident memory of the process
and its children is sampled with psutil every 50 ms, and the process's own high-water mark
(VmHWM, Linux) catches a spike between samples: the peak is the larger of the two.
`early_peak_rss_mb` is the sampled peak over the first half of the run; memory that stays flat
has it close to `peak_rss_mb`. Calls written are counted by reading the file back.
`measure_export(...)` returns one dict per format.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil

COMMAND = str(Path(sys.executable).with_name("phonewagon"))
SAMPLE_SECONDS = 0.05
MB = 1024 * 1024


def measure_export(
    base_url: str,
    client_id: str,
    client_secret: str,
    output_dir: Path,
    formats: Sequence[str] = ("jsonl", "csv", "parquet"),
) -> list[dict[str, Any]]:
    """Export every call once per format; each result says calls, seconds, peak RSS and bytes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEWAGON_")} | {
        "PHONEWAGON_BASE_URL": base_url,
        "PHONEWAGON_CLIENT_ID": client_id,
        "PHONEWAGON_CLIENT_SECRET": client_secret,
    }
    results = []
    for file_format in formats:
        path = Path(output_dir) / f"calls.{file_format}"
        command = [COMMAND, "calls", "--format", file_format, "--output", str(path)]
        seconds, samples, high_water = run_sampled(command, env)
        early = [rss for at, rss in samples if at <= seconds / 2]
        results.append(
            {
                "format": file_format,
                "calls": count_calls(path, file_format),
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(max([high_water, *(rss for _, rss in samples)]) / MB, 1),
                "early_peak_rss_mb": round(max(early, default=0) / MB, 1),
                "file_mb": round(path.stat().st_size / MB, 1),
            }
        )
    return results


def run_sampled(
    command: list[str], env: dict[str, str]
) -> tuple[float, list[tuple[float, int]], int]:
    """Run `command` to its end: its wall time, (seconds, RSS bytes) samples and VmHWM bytes."""
    started = time.perf_counter()
    child = subprocess.Popen(  # noqa: S603 - our own command
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    process = psutil.Process(child.pid)
    samples: list[tuple[float, int]] = []
    high_water = 0
    while child.poll() is None:
        if rss := tree_rss(process):
            samples.append((time.perf_counter() - started, rss))
        high_water = max(high_water, high_water_mark(child.pid))
        time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - started
    _, error = child.communicate()
    if child.returncode != 0:
        message = error.decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(command)} exited {child.returncode}: {message}")
    return seconds, samples, high_water


def high_water_mark(pid: int) -> int:
    """The process's own peak RSS so far (Linux's VmHWM), or 0 once it has gone.

    Not wait4's ru_maxrss, which also counts the parent's memory at the fork before the exec.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of `process` and its children; 0 once it has exited."""
    total = 0
    with suppress(psutil.Error):  # one that ends mid-way ends the sample there
        for member in [process, *process.children(recursive=True)]:
            total += member.memory_info().rss
    return total


def count_calls(path: Path, file_format: str) -> int:
    if file_format == "parquet":
        import pyarrow.parquet as pq  # only this format needs pyarrow

        return int(pq.ParquetFile(path).metadata.num_rows)
    with open(path, encoding="utf-8", newline="") as stream:
        if file_format == "csv":
            return sum(1 for _ in csv.reader(stream)) - 1  # a newline inside a value is one row
        return sum(1 for line in stream if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--formats", default="jsonl,csv,parquet", help="comma-separated")
    args = parser.parse_args()
    credentials = args.base_url, args.client_id, args.client_secret
    with tempfile.TemporaryDirectory(prefix="phonewagon-export-") as directory:
        results = measure_export(*credentials, Path(directory), tuple(args.formats.split(",")))
    print(f"{'format':8} {'calls':>10} {'seconds':>8} {'peak RSS':>9} {'1st half':>9} {'file':>9}")
    for r in results:
        print(
            f"{r['format']:8} {r['calls']:>10,} {r['seconds']:>8.1f} {r['peak_rss_mb']:>6.1f} MB"
            f" {r['early_peak_rss_mb']:>6.1f} MB {r['file_mb']:>6.1f} MB"
        )


if __name__ == "__main__":
    main()
