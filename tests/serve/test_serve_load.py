"""A bounded load test: many concurrent requests, some malformed, against a server process.

Checks no 5xx, the exact status of every malformed request, correct answers for the valid ones,
and that the server's resident memory stops growing after warm-up. The default lane sends 400
requests; the ``slow`` lane sends 2,000.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

LIMIT = 64 * 1024
CONCURRENCY = 16
RSS_GROWTH_LIMIT_MIB = 30.0

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs Linux /proc for RSS"
)


@dataclass(frozen=True)
class Case:
    body: bytes
    content_type: str
    expected_status: int
    expected_label: str | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line")


@pytest.fixture(scope="module")
def server(export_dir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    code = (
        "import sys; from torchdojo.serve import run_server; "
        "run_server(sys.argv[1], port=int(sys.argv[2]), max_upload_bytes=int(sys.argv[3]), "
        "max_concurrency=2, max_queue=64, threads=1, log_level='warning', access_log=False)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(export_dir), str(port), str(LIMIT)], env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not become healthy in 60 s")


def make_cases(
    count: int, make_image: Callable[..., bytes], labels: tuple[str, ...], seed: int = 0
) -> list[Case]:
    """About 90 % valid images of a dominant color, 10 % malformed in three ways."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.05:
            cases.append(Case(b"\x89PNG\r\n\x1a\n" + rng.randbytes(200), "image/png", 400))
        elif roll < 0.08:
            cases.append(Case(b"plain text", "text/plain", 415))
        elif roll < 0.10:
            cases.append(Case(rng.randbytes(LIMIT + 1000), "image/jpeg", 413))
        else:
            index = rng.randrange(3)
            color = [rng.randrange(0, 60) for _ in range(3)]
            color[index] = rng.randrange(180, 256)  # the dominant channel is the class
            fmt, content_type = rng.choice([("PNG", "image/png"), ("JPEG", "image/jpeg")])
            size = (rng.randrange(20, 80), rng.randrange(20, 80))
            body = make_image((color[0], color[1], color[2]), size=size, fmt=fmt)
            cases.append(Case(body, content_type, 200, labels[index]))
    return cases


async def fire(
    url: str, cases: list[Case], on_progress: list[float], pid: int
) -> list[tuple[Case, int, str | None]]:
    queue: asyncio.Queue[Case] = asyncio.Queue()
    for case in cases:
        queue.put_nowait(case)
    results: list[tuple[Case, int, str | None]] = []
    warmup = len(cases) // 5
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                case = queue.get_nowait()
                files = {"file": ("upload", case.body, case.content_type)}
                response = await client.post("/predict", files=files, params={"k": 1})
                label = (
                    response.json()["predictions"][0]["label"]
                    if response.status_code == 200
                    else None
                )
                results.append((case, response.status_code, label))
                if len(results) == warmup:
                    on_progress.append(rss_mib(pid))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return results


def run_load(server: tuple[str, int], cases: list[Case]) -> None:
    count = len(cases)
    url, pid = server
    rss_after_warmup: list[float] = []
    start = time.perf_counter()
    results = asyncio.run(fire(url, cases, rss_after_warmup, pid))
    elapsed = time.perf_counter() - start
    rss_end = rss_mib(pid)
    statuses = Counter(status for _, status, _ in results)
    assert len(results) == count
    assert not [s for s in statuses if s >= 500], statuses
    wrong_status = [(c.expected_status, s) for c, s, _ in results if s != c.expected_status]
    assert not wrong_status, wrong_status[:5]
    wrong_label = [
        (c.expected_label, label)
        for c, s, label in results
        if s == 200 and label != c.expected_label
    ]
    assert not wrong_label, wrong_label[:5]
    growth = rss_end - rss_after_warmup[0]
    assert growth < RSS_GROWTH_LIMIT_MIB, f"server RSS grew {growth:.1f} MiB after warm-up"
    sys.stderr.write(
        f"\nload: {count} requests, {CONCURRENCY} concurrent, {elapsed:.1f} s "
        f"({count / elapsed:.0f} req/s), statuses {dict(statuses)}, "
        f"RSS {rss_after_warmup[0]:.1f} -> {rss_end:.1f} MiB\n"
    )


def test_load_reduced(
    server: tuple[str, int], make_image: Callable[..., bytes], class_names: tuple[str, ...]
) -> None:
    run_load(server, make_cases(400, make_image, class_names))


@pytest.mark.slow
def test_load_full(
    server: tuple[str, int], make_image: Callable[..., bytes], class_names: tuple[str, ...]
) -> None:
    run_load(server, make_cases(2000, make_image, class_names))
