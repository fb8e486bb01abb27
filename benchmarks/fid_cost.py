"""What FID costs on a CPU, and the FID / KID / domain FID of a finished generative run.

Cost: images per second through :class:`torchdojo.models.fid.InceptionFeatures` (fid-helper's
TorchScript InceptionV3 at 299 px) and through a classifier's penultimate features (the domain
FID), on ``--threads`` threads, after one warm-up batch; median of ``--batches`` batches.

Scores (with ``--run``): ``--n`` seeded samples of the run's generator against the first
``--n-real`` MNIST (or Fashion-MNIST) test images: domain FID/KID with ``--classifier``'s
features, and Inception FID/KID on the first ``--inception-n`` of the same samples and real
images (Inception is the expensive part: 10k + 10k images took ~112 CPU-minutes at ~3 images/s).
The domain scores of ``--n`` real training images give the floor at that size (with
``--inception-floor``, the Inception scores of ``--inception-n`` of them too). Real-image
features are cached (``~/.cache/torchdojo/fid``), so a second run pays for the
samples only; ``--real-only`` fills that cache and stops, so a 10k + 10k Inception score can
run as two processes on two cores (the scoring one computes its samples' features first).
fid-helper's network is not bit-identical to pytorch-fid's: compare trends, not
digits, with published FIDs.

    python benchmarks/fid_cost.py [--threads 1] [--batches 3] [--batch-size 16]
    python benchmarks/fid_cost.py --run RUN_DIR --classifier MNIST_CNN_RUN_DIR \\
        [--n 10000] [--inception-n 10000] [--data-dir ../shared/data] [--dataset MNIST]
        [--checkpoint RUN_DIR/checkpoints/step-N.safetensors --model dcgan-28 \\
         --model-kwargs '{"z_dim": 100, "width": 64}']   # a run still training

Several ``--run`` at once score each the same way (the real features are computed once) and end
with one markdown table: training CPU-minutes and epochs (from the run folder), domain FID/KID,
Inception FID/KID, the fraction of copied samples and the sampling CPU-ms per image. A
diffusion model samples with ``--sample-steps`` DDIM steps (default: its own); ``--no-rates``
skips the throughput probe.

    python benchmarks/fid_cost.py --no-rates --n 10000 --inception-n 1000 \
        --classifier MNIST_CNN_RUN_DIR --run DCGAN_RUN --run SAGAN_RUN --run DIFFUSION_RUN

The last lines read ``inception_images_per_s: <value>`` (wall), ``inception_images_per_cpu_s``,
the same for ``domain_`` and, with ``--run``, one ``<name>: <value>`` line per score (prefixed
by a ``## RUN_DIR`` line per run), then the table when there are several runs. ``*_cpu_s``
values are this process's CPU seconds for that stage.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from torchdojo.data.mnist import resolve_idx_dataset
from torchdojo.models import create_model, load_bundle
from torchdojo.models.fid import ClassifierFeatures, InceptionFeatures
from torchdojo.runs.sample_quality import (
    FID_CAVEAT,
    SampleScorer,
    cached_features,
    extract_features,
    memorisation_check,
    sample_images,
    to_unit_range,
)


def images_per_s(net: nn.Module, *, batches: int, batch_size: int) -> tuple[float, float]:
    """Median throughput of ``net`` on random 28x28 grey images, after one warm-up batch: per
    wall second and per CPU second of this process (the honest figure on a loaded machine)."""
    x = torch.rand(batch_size, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    wall, cpu = [], []
    with torch.inference_mode():
        net(x)
        for _ in range(batches):
            start, start_cpu = time.perf_counter(), time.process_time()
            net(x)
            wall.append(batch_size / (time.perf_counter() - start))
            cpu.append(batch_size / (time.process_time() - start_cpu))
    return statistics.median(wall), statistics.median(cpu)


def generator(args: argparse.Namespace, run: Path | None) -> nn.Module:
    """The run's generator: its bundle, or (``--checkpoint``) a training checkpoint's player
    ``--player`` in a model built as ``--model`` with ``--model-kwargs`` (a run still training)."""
    if args.checkpoint is None:
        assert run is not None
        return load_bundle(run)[0]
    model = create_model(args.model, **json.loads(args.model_kwargs))
    prefix = f"s.models.{args.player}."
    state = load_file(str(args.checkpoint))
    model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return model.eval()


def scores(
    args: argparse.Namespace, domain: ClassifierFeatures | None, run: Path | None
) -> dict[str, float]:
    """FID/KID (Inception and domain) and the memorisation check of ``run``'s samples."""
    test = resolve_idx_dataset(args.dataset, "test", root=args.data_dir, download=False)
    train = resolve_idx_dataset(args.dataset, "train", root=args.data_dir, download=False)
    real = test.x[: args.n_real].float() / 255  # (N, 1, 28, 28) in [0, 1]
    model = generator(args, run)
    start, start_cpu = time.perf_counter(), time.process_time()
    samples = sample_images(model, args.n, seed=args.seed, steps=sampler_steps(args, model))
    samples = to_unit_range(samples)  # (n, C, H, W)
    out: dict[str, float] = {"sampling_s": time.perf_counter() - start}
    out["sampling_cpu_s"] = time.process_time() - start_cpu
    out["sample_cpu_ms_per_image"] = 1000 * out["sampling_cpu_s"] / args.n
    if domain is not None:
        start, start_cpu = time.perf_counter(), time.process_time()
        score = SampleScorer(domain, real, batch_size=256).score(samples, seed=args.seed)
        out |= {"domain_fid": score.fid, "domain_kid": score.kid_mean}
        out["domain_s"] = time.perf_counter() - start
        out["domain_cpu_s"] = time.process_time() - start_cpu
        # the floor at this size: real training images scored as if they were samples
        floor = SampleScorer(domain, real, batch_size=256).score(train.x[: args.n].float() / 255)
        out |= {"domain_fid_train_vs_test": floor.fid, "domain_kid_train_vs_test": floor.kid_mean}
    if args.inception_n > 0:
        start, start_cpu = time.perf_counter(), time.process_time()
        inception = InceptionFeatures()
        # the samples first: meanwhile a --real-only process can fill the cache of the real ones
        fake = extract_features(inception, samples[: args.inception_n], batch_size=32)
        scorer = SampleScorer(inception, real[: args.inception_n], batch_size=32)
        score = scorer.score_features(fake, seed=args.seed)
        out |= {"fid": score.fid, "kid": score.kid_mean, "kid_std": score.kid_std}
        out["inception_s"] = time.perf_counter() - start
        out["inception_cpu_s"] = time.process_time() - start_cpu
        if args.inception_floor:  # FID is biased upward at small n: real vs real, same n
            floor = scorer.score(train.x[: args.inception_n].float() / 255, seed=args.seed)
            out |= {"fid_train_vs_test": floor.fid, "kid_train_vs_test": floor.kid_mean}
    check = memorisation_check(samples[:256], train.x.float() / 255, real[:256])
    out["copied_fraction"] = check.fraction_copied
    out["nn_distance_median"] = float(check.distances.median())
    out["nn_reference"] = check.reference
    return out


def sampler_steps(args: argparse.Namespace, model: nn.Module) -> int | None:
    """``--sample-steps`` for a model that samples in steps (diffusion), else None."""
    return args.sample_steps if callable(getattr(model, "sample", None)) else None


def run_facts(run: Path) -> dict[str, Any]:
    """What the run folder says about its training: recipe, CPU seconds of the training steps
    (the process's total where the run predates ``train_cpu``), epochs done, copied fraction."""
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    env = json.loads((run / "env.json").read_text())
    summary = json.loads((run / "summary.json").read_text()).get("metrics", {})
    cpu = [r["train_cpu"] for r in records if "train_cpu" in r]
    if "train_cpu" in summary:  # a resumed run's env.json counts the last process only
        cpu.append(summary["train_cpu"])
    cfg = config.get("config", {})
    n_train = cfg.get("max_train_samples") or 60_000
    steps = max((int(r.get("step", 0)) for r in records), default=0)
    return {
        "recipe": config.get("recipe", run.name),
        "train_cpu_s": cpu[-1] if cpu else float(env["cpu_time_s"]),
        "train_cpu_is_process": not cpu,
        "process_cpu_s": float(env["cpu_time_s"]),
        "epochs": steps * int(cfg.get("batch_size", 64)) / n_train,
        "run_fraction_copied": summary.get("fraction_copied", math.nan),
    }


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted, or "-" when missing."""
    if value is None or math.isnan(value):
        return "-"
    return format(value, spec)


def markdown_table(
    rows: list[tuple[dict[str, Any], dict[str, float]]], args: argparse.Namespace
) -> str:
    """One line per run: training cost and every score, in the order of ``--run``."""
    n, k = f"{args.n:,}", f"{args.inception_n:,}"
    lines = [
        f"| model | training CPU-min | epochs | domain FID ({n}) | domain KID ({n}) "
        f"| Inception FID ({k}) | Inception KID ({k}) | copied | sample CPU-ms/image |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for facts, score in rows:
        star = "*" if facts["train_cpu_is_process"] else ""
        lines.append(
            f"| {facts['recipe']} | {fmt(facts['train_cpu_s'] / 60, '.1f')}{star} "
            f"| {fmt(facts['epochs'], '.2f')} | {fmt(score.get('domain_fid'), '.2f')} "
            f"| {fmt(score.get('domain_kid'), '.3g')} | {fmt(score.get('fid'), '.1f')} "
            f"| {fmt(score.get('kid'), '.3g')} | {fmt(score.get('copied_fraction'), '.3f')} "
            f"| {fmt(score.get('sample_cpu_ms_per_image'), '.2f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--run", type=Path, action="append", default=[], help="A finished run folder (repeat)."
    )
    parser.add_argument("--sample-steps", type=int, default=None, help="Diffusion sampler steps.")
    parser.add_argument("--no-rates", action="store_true", help="Skip the throughput probe.")
    parser.add_argument("--checkpoint", type=Path, help="A training checkpoint instead.")
    parser.add_argument("--model", default="dcgan-28", help="With --checkpoint: the builder.")
    parser.add_argument("--model-kwargs", default="{}", help="With --checkpoint: JSON kwargs.")
    parser.add_argument("--player", default="G", help="With --checkpoint: the model's name.")
    parser.add_argument("--classifier", type=Path, help="A finished mnist-cnn run folder.")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--n-real", type=int, default=10_000)
    parser.add_argument("--inception-n", type=int, default=10_000)
    parser.add_argument("--inception-floor", action="store_true", help="Also score real images.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="MNIST", choices=["MNIST", "FashionMNIST"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--real-only",
        action="store_true",
        help="Only cache the first --inception-n test images' Inception features (run it "
        "beside a scoring process, which computes its samples' features first).",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    domain = ClassifierFeatures.from_run(args.classifier) if args.classifier else None
    rates: dict[str, float] = {}
    if not args.no_rates:
        net = InceptionFeatures()
        wall, cpu = images_per_s(net, batches=args.batches, batch_size=args.batch_size)
        rates |= {"inception_images_per_s": wall, "inception_images_per_cpu_s": cpu}
        if domain is not None:
            wall, cpu = images_per_s(domain, batches=args.batches, batch_size=256)
            rates |= {"domain_images_per_s": wall, "domain_images_per_cpu_s": cpu}
    print(f"threads={args.threads}; {FID_CAVEAT}")
    for name, value in rates.items():
        print(f"{name}: {value:.4g}")
    if args.real_only:  # fill the cache of the real images' Inception features, then stop
        test = resolve_idx_dataset(args.dataset, "test", root=args.data_dir, download=False)
        start_cpu = time.process_time()
        real = test.x[: min(args.n_real, args.inception_n)].float() / 255
        feats = cached_features(InceptionFeatures(), real, batch_size=32)
        print(f"real_inception_features: {len(feats)}")
        print(f"real_inception_cpu_s: {time.process_time() - start_cpu:.4g}")
        return
    runs: list[Path | None] = list(args.run) or ([None] if args.checkpoint else [])
    rows = []
    for run in runs:
        results = scores(args, domain, run)
        print(f"## {run if run is not None else args.checkpoint}", flush=True)
        for name, value in results.items():
            print(f"{name}: {value:.4g}", flush=True)
        if run is not None and args.checkpoint is None:
            rows.append((run_facts(run), results))
    if len(rows) > 1:
        print(markdown_table(rows, args))
        print(f"*: the run's whole process CPU time (it predates train_cpu). {FID_CAVEAT}.")


if __name__ == "__main__":
    main()
