"""What FID costs on a CPU, and the FID / KID / domain FID of a finished generative run.

Cost: images per second through :class:`torchdojo.models.fid.InceptionFeatures` (fid-helper's
TorchScript InceptionV3 at 299 px) and through a classifier's penultimate features (the domain
FID), on ``--threads`` threads, after one warm-up batch; median of ``--batches`` batches.

Scores (with ``--run``): ``--n`` seeded samples of the run's generator against the first
``--n-real`` MNIST (or Fashion-MNIST) test images: domain FID/KID with ``--classifier``'s
features, and Inception FID/KID on the first ``--inception-n`` of the same samples and real
images (Inception is the expensive part: 10k + 10k images are ~80 CPU-minutes at ~4 images/s).
The domain scores of ``--n`` real training images give the floor at that size (with
``--inception-floor``, the Inception scores of ``--inception-n`` of them too). Real-image
features are cached (``~/.cache/torchdojo/fid``), so a second run pays for the
samples only. fid-helper's network is not bit-identical to pytorch-fid's: compare trends, not
digits, with published FIDs.

    python benchmarks/fid_cost.py [--threads 1] [--batches 3] [--batch-size 16]
    python benchmarks/fid_cost.py --run RUN_DIR --classifier MNIST_CNN_RUN_DIR \\
        [--n 10000] [--inception-n 10000] [--data-dir ../shared/data] [--dataset MNIST]
        [--checkpoint RUN_DIR/checkpoints/step-N.safetensors --model dcgan-28 \\
         --model-kwargs '{"z_dim": 100, "width": 64}']   # a run still training

The last lines read ``inception_images_per_s: <value>`` (wall), ``inception_images_per_cpu_s``,
the same for ``domain_`` and, with ``--run``, one ``<name>: <value>`` line per score.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from torchdojo.data.mnist import resolve_idx_dataset
from torchdojo.models import create_model, load_bundle
from torchdojo.models.fid import ClassifierFeatures, InceptionFeatures
from torchdojo.runs.sample_quality import (
    FID_CAVEAT,
    SampleScorer,
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


def generator(args: argparse.Namespace) -> nn.Module:
    """The run's generator: its bundle, or (``--checkpoint``) a training checkpoint's player
    ``--player`` in a model built as ``--model`` with ``--model-kwargs`` (a run still training)."""
    if args.checkpoint is None:
        return load_bundle(args.run)[0]
    model = create_model(args.model, **json.loads(args.model_kwargs))
    prefix = f"s.models.{args.player}."
    state = load_file(str(args.checkpoint))
    model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return model.eval()


def scores(args: argparse.Namespace, domain: ClassifierFeatures | None) -> dict[str, float]:
    """FID/KID (Inception and domain) and the memorisation check of ``args.run``'s samples."""
    test = resolve_idx_dataset(args.dataset, "test", root=args.data_dir, download=False)
    train = resolve_idx_dataset(args.dataset, "train", root=args.data_dir, download=False)
    real = test.x[: args.n_real].float() / 255  # (N, 1, 28, 28) in [0, 1]
    model = generator(args)
    start = time.perf_counter()
    samples = to_unit_range(sample_images(model, args.n, seed=args.seed))  # (n, C, H, W)
    out: dict[str, float] = {"sampling_s": time.perf_counter() - start}
    if domain is not None:
        start = time.perf_counter()
        score = SampleScorer(domain, real, batch_size=256).score(samples, seed=args.seed)
        out |= {"domain_fid": score.fid, "domain_kid": score.kid_mean}
        out["domain_s"] = time.perf_counter() - start
        # the floor at this size: real training images scored as if they were samples
        floor = SampleScorer(domain, real, batch_size=256).score(train.x[: args.n].float() / 255)
        out |= {"domain_fid_train_vs_test": floor.fid, "domain_kid_train_vs_test": floor.kid_mean}
    if args.inception_n > 0:
        start = time.perf_counter()
        scorer = SampleScorer(InceptionFeatures(), real[: args.inception_n], batch_size=32)
        score = scorer.score(samples[: args.inception_n], seed=args.seed)
        out |= {"fid": score.fid, "kid": score.kid_mean, "kid_std": score.kid_std}
        out["inception_s"] = time.perf_counter() - start
        if args.inception_floor:  # FID is biased upward at small n: real vs real, same n
            floor = scorer.score(train.x[: args.inception_n].float() / 255, seed=args.seed)
            out |= {"fid_train_vs_test": floor.fid, "kid_train_vs_test": floor.kid_mean}
    check = memorisation_check(samples[:256], train.x.float() / 255, real[:256])
    out["copied_fraction"] = check.fraction_copied
    out["nn_distance_median"] = float(check.distances.median())
    out["nn_reference"] = check.reference
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--run", type=Path, help="A finished generative run folder.")
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    domain = ClassifierFeatures.from_run(args.classifier) if args.classifier else None
    rates: dict[str, float] = {}
    wall, cpu = images_per_s(InceptionFeatures(), batches=args.batches, batch_size=args.batch_size)
    rates |= {"inception_images_per_s": wall, "inception_images_per_cpu_s": cpu}
    if domain is not None:
        wall, cpu = images_per_s(domain, batches=args.batches, batch_size=256)
        rates |= {"domain_images_per_s": wall, "domain_images_per_cpu_s": cpu}
    results = scores(args, domain) if args.run or args.checkpoint else {}
    print(f"threads={args.threads}; {FID_CAVEAT}")
    for name, value in {**rates, **results}.items():
        print(f"{name}: {value:.4g}")


if __name__ == "__main__":
    main()
