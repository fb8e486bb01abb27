"""CPU inference of dense models, ONNX Runtime vs PyTorch eager at batch 1, and the detection
recipe's training throughput.

Models: the detector of the ``object-detection`` recipe (``ssdlite-mobilenetv2``, 3 classes as
BCCD, 320x240 as the recipe) and the segmenters of ``nuclei-segmentation`` (``unet``, 1 channel, 3 classes)
and ``scene-segmentation`` (``pspnet-mobilenetv2``), each exported with
``torchdojo.export.dense_exporter.export_dense_model`` (dynamo). Per model, interleaved repeats,
medians of: the network alone (eager ``model(x)`` vs ONNX Runtime ``session.run``) and the
whole answer for one image (:class:`torchdojo.export.dense.DensePredictor`: resize, network,
NMS or upsample + arg-max). The two paths share the pre- and post-processing, so the second
ratio is smaller. Quote the ratios: this machine's absolute speed moves between runs.

Training throughput: one epoch of ``torchdojo run object-detection`` (its default model and
320x240 input, backbone weights from ``$TORCH_HOME``) on ``--train-images`` synthetic scenes
in a subprocess; images/s is the median of the engine's logged ``samples_per_s``.

One thread by default: on this shared 2-core machine (load average above 5), two OpenMP
threads made eager PyTorch 5x slower than one (a U-Net forward 0.36 s -> 1.8-4 s, measured),
which would flatter ONNX Runtime.

    python benchmarks/dense_inference.py [--threads 1] [--repeats 7] [--train-images 64]

The last lines read ``<model>_onnx_vs_eager_batch1: <ratio>`` and
``detection_train_images_per_s: <value>``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from torchdojo.export.dense import DensePredictor, prepare
from torchdojo.export.dense_exporter import export_dense_model
from torchdojo.models import create_model

# name -> (builder kwargs, task, class names, input (C, H, W))
MODELS: dict[str, tuple[dict[str, object], str, list[str], tuple[int, int, int]]] = {
    "ssdlite-mobilenetv2": (
        {"num_classes": 3, "image_size": 320},
        "detection",
        ["RBC", "WBC", "Platelets"],
        (3, 240, 320),  # the recipe's default input, (H, W)
    ),
    "unet": (
        {"in_channels": 1, "num_classes": 3, "width": 8, "depth": 4},
        "segmentation",
        ["background", "nucleus", "boundary"],
        (1, 256, 256),
    ),
    "pspnet-mobilenetv2": (
        {"in_channels": 3, "num_classes": 6},
        "segmentation",
        ["background", "circle", "square", "triangle", "star", "ellipse"],
        (3, 256, 256),
    ),
}


def timed(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call, averaged over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def photo(size: tuple[int, int], channels: int) -> Image.Image:
    """A random image of ``size`` (width, height): the upload a server would get."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    return image.convert("L") if channels == 1 else image


def bench_model(name: str, out: Path, threads: int, repeats: int) -> dict[str, float]:
    """Median seconds of each engine for one model, and the export's parity line."""
    kwargs, task, classes, size = MODELS[name]
    model = create_model(name, **kwargs).eval()
    start = time.perf_counter()
    result = export_dense_model(
        model, out_dir=out / name, task=task, class_names=classes, input_size=size
    )
    print(f"{name}: exported with {result.card.exporter} in {time.perf_counter() - start:.1f} s")
    print(f"  parity: {result.parity.describe()}")
    onnx = DensePredictor.from_export(out / name, threads=threads)
    eager = DensePredictor.from_module(model, onnx.card)
    image = photo((640, 480), size[0])
    x = prepare([image], size)  # (1, C, H, W)
    engines: dict[str, Callable[[], object]] = {
        "eager net": lambda: eager.outputs(x),
        "onnx net": lambda: onnx.outputs(x),
        "eager image": lambda: eager.predict([image]),
        "onnx image": lambda: onnx.predict([image]),
    }
    for fn in engines.values():  # warm-up
        timed(fn, 2)
    samples: dict[str, list[float]] = {key: [] for key in engines}
    keys = list(engines)
    for repeat in range(repeats):
        for key in keys[repeat % len(keys) :] + keys[: repeat % len(keys)]:
            samples[key].append(timed(engines[key], 3))
    return {key: statistics.median(values) for key, values in samples.items()}


def train_throughput(images: int, threads: int) -> float | None:
    """Images/s of one epoch of ``torchdojo run object-detection`` (default model and input
    size) on ``images`` synthetic scenes, so it needs no data folder."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "torchdojo", "run", "object-detection", "--out", tmp]
        command += ["--no-progress", "--threads", str(threads)]
        for setting in ("dataset=scenes", f"scene_images={images}", "epochs=1"):
            command += ["--set", setting]
        print("$ torchdojo", " ".join(command[3:]))
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
            return None
        (run_dir,) = (Path(tmp) / "object-detection").iterdir()
        return images_per_second(run_dir)


def images_per_second(run_dir: Path) -> float | None:
    """Training images per second of a run: the median ``samples_per_s`` of its training log
    rows (the engine writes one every ``log_every`` steps to ``metrics.jsonl``)."""
    rates = [
        float(record["samples_per_s"])
        for record in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        if record.get("split") == "train" and "samples_per_s" in record
    ]
    return statistics.median(rates) if rates else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train-images", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            medians = bench_model(name, Path(tmp), args.threads, args.repeats)
            for key, value in medians.items():
                print(f"  {key:12s} {1000 * value:8.1f} ms")
            ratios[name] = medians["eager net"] / medians["onnx net"]
            whole = medians["eager image"] / medians["onnx image"]
            print(f"  onnx vs eager: network {ratios[name]:.2f}x, whole image {whole:.2f}x")
    throughput = train_throughput(args.train_images, args.threads) if args.train_images else None
    for name, ratio in ratios.items():
        print(f"{name}_onnx_vs_eager_batch1: {ratio:.2f}")
    print(
        f"detection_train_images_per_s: {throughput if throughput is None else round(throughput, 2)}"
    )


if __name__ == "__main__":
    main()
