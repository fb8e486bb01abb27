"""Reproduce the mnist-cnn claim: >= 99.0 % test accuracy on real MNIST in <= 30 s of training.

Runs `torchdojo run mnist-cnn` (the library call) on the full MNIST in the data root, several
times, and prints each run's test accuracy and training time, then the medians.

    TORCHDOJO_DATA=../shared/data python benchmarks/mnist_cnn.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from torchdojo.recipes import RunOptions, run_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("TORCHDOJO_DATA"))
    args = parser.parse_args()
    accs, times = [], []
    with tempfile.TemporaryDirectory() as out:
        for seed in range(args.repeats):
            options = RunOptions(
                out=out, progress=False, data_dir=args.data_dir, overrides=(f"seed={seed}",)
            )
            result = run_recipe("mnist-cnn", options)
            if not result.data_source.startswith("real MNIST"):
                raise SystemExit(f"needs the real MNIST, got: {result.data_source}")
            acc, train_time = result.metrics["test_acc"], result.metrics["train_time"]
            accs.append(acc)
            times.append(train_time)
            print(
                f"seed {seed}: test_acc {acc:.4f}  train_time {train_time:.1f} s  "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print(f"median test_acc: {statistics.median(accs):.4f} (min {min(accs):.4f})")
    print(f"median train_time_s: {statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
