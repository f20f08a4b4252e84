"""Large page buffers reuse the heap instead of being faulted in from the kernel each time."""

from __future__ import annotations

import subprocess
import sys

import pytest

FAULTS_PER_PAGE = """
import resource, sys
from phonewagon_server.memory import keep_page_memory
if sys.argv[1] == "tuned":
    assert keep_page_memory()
def page():  # as a page is built: rows, a join, an encoding, a body, ~1 MB each, then freed
    return [b"".join([b"x" * 1024] * 1024) for _ in range(4)]
for _ in range(20):
    page()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    page()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 200)
"""


def _faults_per_page(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_PAGE, mode], capture_output=True, check=True, text=True
    )
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_a_page_buffer_no_longer_faults_in_its_memory() -> None:
    """Untuned, each page's few 1 MB buffers cost hundreds of page faults; tuned, almost none."""
    assert _faults_per_page("untuned") > 100
    assert _faults_per_page("tuned") < 5
