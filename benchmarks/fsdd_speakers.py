"""Spoken digits for a voice never heard: FSDD with one speaker held out, each in turn.

The official FSDD split tests on recordings 0-4 of the *same* six speakers the model trains
on. This runs `torchdojo run spoken-digits --set split=speaker:<name>` for each of the six
speakers (train on five, test on the sixth) and prints each test accuracy and their mean:
the honest number for a new voice.

    TORCHDOJO_DATA=../shared/data python benchmarks/fsdd_speakers.py [--epochs N] [--threads N]

Measured 2026-12-01 (seed 0, the recipe's 12 epochs; 1,297 s CPU, 1,597 s wall on 2 shared
cores): george 0.662, jackson 0.836, lucas 0.854, nicolas 0.612, theo 0.810, yweweler 0.856;
mean 0.772 (with ``--epochs 8``: mean 0.756), against 0.997 on the official split, where
every test voice is also in training.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from torchdojo.recipes import RunOptions, run_recipe

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=os.environ.get("TORCHDOJO_DATA"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--speakers", nargs="*", default=list(SPEAKERS))
    args = parser.parse_args()
    accs = {}
    with tempfile.TemporaryDirectory() as out:
        for speaker in args.speakers:
            options = RunOptions(
                out=out,
                progress=False,
                data_dir=args.data_dir,
                epochs=args.epochs,
                threads=args.threads,
                overrides=(f"split=speaker:{speaker}",),
            )
            start = time.perf_counter()
            metrics = run_recipe("spoken-digits", options).metrics
            accs[speaker] = metrics["test_acc"]
            print(
                f"held out {speaker:9s} test_acc {metrics['test_acc']:.4f}  "
                f"train {metrics['train_time']:.0f} s ({metrics['samples_per_s']:.0f} samples/s), "
                f"wall {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    print("| held-out speaker | " + " | ".join(accs) + " | mean |")
    print("|---" * (len(accs) + 2) + "|")
    values = [f"{a:.3f}" for a in accs.values()]
    print(f"| test accuracy | {' | '.join(values)} | {statistics.mean(accs.values()):.3f} |")
    print(f"speaker_held_out_mean_acc: {statistics.mean(accs.values()):.4f}")


if __name__ == "__main__":
    main()
