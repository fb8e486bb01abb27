"""CPU inference speed of exported models: ONNX Runtime vs PyTorch eager vs torch.compile.

For each model (default: ResNet-18, and MobileNetV2, the ``image-folder`` recipe's backbone), one
run, interleaved repeats, medians: ONNX Runtime, eager (NCHW, what ``model(x)`` does), eager with
channels_last (what a tuned PyTorch user would run) and ``torch.compile`` (inductor, freezing).
Then the HTTP server (``torchdojo.serve``) on the first model against an in-process
``session.run``. Quote only the ratios: this machine's absolute speed moves 2x between runs
(docs: cpu-performance). Each engine's GFLOP/s is also shown as a share of a large fp32 matmul's
GFLOP/s measured in the same run: an engine near 100 % has no fp32 speed left to find.

    python benchmarks/inference.py [--models resnet18,mobilenet_v2] [--threads 2] [--repeats 7]

Goals: ORT >= 1.6x eager at batch 1 and >= 2.0x at batch 32; server p50 <= 1.15x in-process.
The last lines read ``onnx_vs_eager_speedup_batch32: <min over models>`` and
``onnx_vs_eager_speedup_batch1: <min over models>``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import http.client
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from torchdojo.export import OnnxPredictor, decode_image, export_model, preprocess_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BATCHES = {1: 10, 32: 2}  # batch size -> calls per timed sample


def timed(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call, averaged over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def build_engines(
    model: torch.nn.Module, predictor: OnnxPredictor, inputs: dict[int, torch.Tensor]
) -> dict[str, dict[int, Callable[[], object]]]:
    torch._inductor.config.freezing = True  # inference compile only pays off with frozen weights
    compiled = torch.compile(model)
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    engines: dict[str, dict[int, Callable[[], object]]] = {
        "onnxruntime": {},
        "eager": {},
        "eager-cl": {},
        "compile": {},
    }
    for batch, x in inputs.items():
        x_np, x_cl = x.numpy(), x.contiguous(memory_format=torch.channels_last)
        engines["onnxruntime"][batch] = lambda x_np=x_np: predictor.logits(x_np)
        engines["eager"][batch] = lambda x=x: model(x)
        engines["eager-cl"][batch] = lambda x_cl=x_cl: channels_last(x_cl)
        engines["compile"][batch] = lambda x=x: compiled(x)
        start = time.perf_counter()
        compiled(x)  # compile for this shape outside the timed loop
        print(
            f"torch.compile (inductor, freezing) for batch {batch}: {time.perf_counter() - start:.1f} s"
        )
    return engines


def bench_engines(
    engines: dict[str, dict[int, Callable[[], object]]], repeats: int
) -> dict[tuple[str, int], float]:
    """Median seconds per call for each (engine, batch), engines interleaved within every repeat."""
    samples: dict[tuple[str, int], list[float]] = {}
    names = list(engines)
    for fns in engines.values():  # warm-up
        for batch, fn in fns.items():
            timed(fn, 2 if batch == 1 else 1)
    for repeat in range(repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]  # rotate who goes first
        for batch, calls in BATCHES.items():
            for name in order:
                samples.setdefault((name, batch), []).append(timed(engines[name][batch], calls))
    return {key: statistics.median(values) for key, values in samples.items()}


def start_server(export_dir: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket_port() as port:
        pass
    code = (
        "import sys; from torchdojo.serve import run_server; "
        "run_server(sys.argv[1], port=int(sys.argv[2]), threads=int(sys.argv[3]), "
        "max_concurrency=1, log_level='warning', access_log=False)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(export_dir), str(port), str(threads)]
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("server did not start")


class socket_port:  # noqa: N801 - used as a context manager
    """Find a free loopback port."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


class RawClient:
    """One keep-alive ``http.client`` connection posting a prebuilt multipart body.

    It times the server with almost no client-side Python work per request; httpx spends about a
    millisecond of its own per request building and parsing, which is the client's cost.
    """

    def __init__(self, url: str, data: bytes) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)
        boundary = "torchdojo-benchmark-boundary"
        part = 'Content-Disposition: form-data; name="file"; filename="x.jpg"'
        self.body = (
            f"--{boundary}\r\n{part}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        self.headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    def post(self) -> bytes:
        self.connection.request("POST", "/predict", body=self.body, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"/predict answered {response.status}: {body[:200]!r}")
        return body

    def close(self) -> None:
        self.connection.close()


def jpeg_bytes(size: int = 256) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
        buffer, format="JPEG", quality=90
    )
    return buffer.getvalue()


def bench_server(export_dir: Path, threads: int, requests: int, repeats: int) -> dict[str, float]:
    predictor = OnnxPredictor(export_dir, threads=threads)
    data = jpeg_bytes()
    x = preprocess_image(decode_image(data), predictor.card)[None]  # (1, 3, 224, 224)
    process, url = start_server(export_dir, threads)
    files = {"file": ("x.jpg", data, "image/jpeg")}
    run_only, pipeline, served, served_httpx = [], [], [], []
    raw = RawClient(url, data)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(5):
                client.post("/predict", files=files).raise_for_status()
                raw.post()
            per_round = max(1, requests // repeats)
            for _ in range(repeats):  # interleave in-process and HTTP latencies
                run_only += [timed(lambda: predictor.logits(x), 1) for _ in range(per_round)]
                pipeline += [
                    timed(
                        lambda: predictor.predict(
                            preprocess_image(decode_image(data), predictor.card)[None]
                        ),
                        1,
                    )
                    for _ in range(per_round)
                ]
                served += [timed(raw.post, 1) for _ in range(per_round)]
                served_httpx += [
                    timed(lambda: client.post("/predict", files=files).raise_for_status(), 1)
                    for _ in range(per_round)
                ]
        throughput = asyncio.run(server_throughput(url, data, requests, concurrency=4))
    finally:
        raw.close()
        process.terminate()
        process.wait(timeout=20)
    return {
        "inprocess_run_p50": float(np.percentile(run_only, 50)),
        "inprocess_run_p99": float(np.percentile(run_only, 99)),
        "inprocess_pipeline_p50": float(np.percentile(pipeline, 50)),
        "server_p50": float(np.percentile(served, 50)),
        "server_p99": float(np.percentile(served, 99)),
        "server_httpx_p50": float(np.percentile(served_httpx, 50)),
        "server_rps_c4": throughput,
        "inprocess_rps": 1.0 / float(np.mean(run_only)),
    }


async def server_throughput(url: str, data: bytes, requests: int, *, concurrency: int) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        remaining = list(range(requests))

        async def worker() -> None:
            while remaining:
                remaining.pop()
                response = await client.post(
                    "/predict", files={"file": ("x.jpg", data, "image/jpeg")}
                )
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - start)


def matmul_peak_gflops(repeats: int = 5, n: int = 4096) -> float:
    """This CPU's fp32 GFLOP/s on an n x n matmul (median): a practical ceiling for conv nets."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    return 2 * n**3 / statistics.median(timed(lambda: a @ b, 1) for _ in range(repeats)) / 1e9


def flops_per_image(model: torch.nn.Module) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 224, 224))
    return float(counter.get_total_flops())


def report_engines(
    model_name: str, medians: dict[tuple[str, int], float], *, flops: float, peak: float
) -> dict[int, float]:
    """Print one model's table; return its ORT/eager speedup per batch size."""
    print(f"\n{model_name}: {flops / 1e9:.2f} GFLOP per image")
    print(
        f"{'engine':<12} {'batch':>5} {'latency ms':>11} {'images/s':>9} {'GFLOP/s':>8} {'of peak':>7}"
    )
    for (name, batch), seconds in sorted(medians.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        gflops = batch * flops / seconds / 1e9
        print(
            f"{name:<12} {batch:>5} {seconds * 1000:>11.2f} {batch / seconds:>9.1f} "
            f"{gflops:>8.0f} {gflops / peak:>7.0%}"
        )
    speedups = {}
    for batch in BATCHES:
        eager = medians[("eager", batch)]
        speedups[batch] = eager / medians[("onnxruntime", batch)]
        print(
            f"batch {batch}: onnxruntime/eager {speedups[batch]:.2f}x, "
            f"onnxruntime/eager-channels_last {medians[('eager-cl', batch)] / medians[('onnxruntime', batch)]:.2f}x, "
            f"compile/eager {eager / medians[('compile', batch)]:.2f}x"
        )
    return speedups


def report_server(server: dict[str, float]) -> None:
    print(
        f"\nserver (1 client, sequential): p50 {server['server_p50'] * 1000:.2f} ms, "
        f"p99 {server['server_p99'] * 1000:.2f} ms (http.client); with httpx as the client "
        f"p50 {server['server_httpx_p50'] * 1000:.2f} ms; 4 httpx clients: "
        f"{server['server_rps_c4']:.1f} req/s"
    )
    print(
        f"in-process session.run: p50 {server['inprocess_run_p50'] * 1000:.2f} ms, "
        f"p99 {server['inprocess_run_p99'] * 1000:.2f} ms, {server['inprocess_rps']:.1f} req/s; "
        f"decode+preprocess+run p50 {server['inprocess_pipeline_p50'] * 1000:.2f} ms"
    )
    print(
        f"server_p50_vs_session_run_p50: {server['server_p50'] / server['inprocess_run_p50']:.3f}"
    )
    print(
        "server_p50_vs_inprocess_pipeline_p50 (httpx client): "
        f"{server['server_httpx_p50'] / server['inprocess_pipeline_p50']:.3f}"
    )
    print(
        f"server_p50_vs_inprocess_pipeline_p50: {server['server_p50'] / server['inprocess_pipeline_p50']:.3f}"
    )


def export(model_name: str, out_dir: Path) -> torch.nn.Module:
    """An untrained torchvision ``model_name`` (speed does not depend on the weights), exported."""
    model = torchvision.models.get_model(model_name, weights=None).eval()
    start = time.perf_counter()
    export_model(
        model,
        out_dir=out_dir,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        class_names=[f"class_{i}" for i in range(1000)],
    )
    print(f"{model_name}: export to ONNX (dynamo) + parity: {time.perf_counter() - start:.1f} s")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,mobilenet_v2", help="torchvision names")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--server-requests", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    peak = matmul_peak_gflops()
    print(f"fp32 matmul 4096^3: {peak:.0f} GFLOP/s ({args.threads} threads)")
    speedups: dict[str, dict[int, float]] = {}
    server: dict[str, float] = {}
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(names):
            torch.manual_seed(0)
            torch._dynamo.reset()
            export_dir = Path(tmp) / name
            model = export(name, export_dir)
            predictor = OnnxPredictor(export_dir, threads=args.threads, allow_spinning=False)
            generator = torch.Generator().manual_seed(0)
            inputs = {b: torch.randn(b, 3, 224, 224, generator=generator) for b in BATCHES}
            with torch.inference_mode():
                engines = build_engines(model, predictor, inputs)
                medians = bench_engines(engines, args.repeats)
            flops = flops_per_image(model)
            speedups[name] = report_engines(name, medians, flops=flops, peak=peak)
            if i == 0:
                server = bench_server(export_dir, args.threads, args.server_requests, args.repeats)
    load = os.getloadavg()[0]
    busy = " -- BUSY MACHINE, ratios unreliable" if load > (os.cpu_count() or 1) else ""
    print(
        f"\nthreads={args.threads} (torch.set_num_threads and ORT intra_op), allow_spinning=0, "
        f"medians of {args.repeats}; load average at the end: {load:.1f}{busy}"
    )
    print(f"server: {names[0]}")
    report_server(server)
    for batch in sorted(BATCHES, reverse=True):
        per_model = ", ".join(f"{n} {speedups[n][batch]:.2f}x" for n in names)
        print(f"onnx vs eager, batch {batch}: {per_model}")
    for batch in sorted(BATCHES, reverse=True):
        worst = min(speedups[n][batch] for n in names)
        print(f"onnx_vs_eager_speedup_batch{batch}: {worst:.3f}")


if __name__ == "__main__":
    main()
