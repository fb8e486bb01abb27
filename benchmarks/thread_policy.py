"""Is the engine's default CPU thread count as fast as the better of 1 and 2 threads?

For each recipe, trains the same short run with --threads 1, --threads 2 and the default
(policy: 1 thread for steps under 0.05 GFLOP, else all cores, whatever the load), interleaved,
and prints training samples/s and `default / best-of(1, 2)` per recipe (goal: >= 0.95).

    TORCHDOJO_DATA=../shared/data python benchmarks/thread_policy.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

from torchdojo.recipes import RunOptions, run_recipe

CASES = {  # recipe -> overrides that keep one run around 5-20 s
    "mnist-mlp": ("epochs=1", "max_train_samples=20000"),
    "mnist-cnn": ("epochs=1", "max_train_samples=8192"),
    "digits-mlp": (),
    "fashion-mnist-cnn": ("epochs=1", "max_train_samples=4096"),
}


def samples_per_s(
    recipe: str, overrides: tuple[str, ...], threads: int | None, out: str
) -> tuple[float, int]:
    """Median training samples/s of one run, and the thread count it trained with."""
    result = run_recipe(
        recipe, RunOptions(out=out, progress=False, threads=threads, overrides=overrides)
    )
    rows = [
        json.loads(line)
        for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
        if '"train"' in line
    ]
    env = json.loads((result.run_dir / "env.json").read_text())
    return statistics.median(row["samples_per_s"] for row in rows), env["num_threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipes", nargs="*", default=list(CASES))
    args = parser.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory() as out:
        for recipe in args.recipes:
            rates: dict[str, list[float]] = {"1": [], "2": [], "default": []}
            picked = []
            for _ in range(args.rounds):
                for label, threads in (("1", 1), ("2", 2), ("default", None)):
                    rate, used = samples_per_s(recipe, CASES[recipe], threads, out)
                    rates[label].append(rate)
                    if threads is None:
                        picked.append(used)
            med = {k: statistics.median(v) for k, v in rates.items()}
            ratio = med["default"] / max(med["1"], med["2"])
            ratios.append(ratio)
            print(
                f"{recipe:20s} 1 thread {med['1']:9,.0f}  2 threads {med['2']:9,.0f}  "
                f"default {med['default']:9,.0f} samples/s (picked {picked})  default/best {ratio:.3f}  "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    print(f"min_default_vs_best_ratio: {min(ratios):.3f}")


if __name__ == "__main__":
    main()
