"""How much does the torchdojo Trainer cost over the fastest honest raw loop?

Trains the same small MLP and CNN on the same in-memory data, in one process, with:
  (a) raw tensor loop: data already in memory, a shuffled index each epoch, sliced batches;
  (b) raw loop over a DataLoader(TensorDataset);
  (c) the torchdojo Trainer, progress bar and metrics logging (jsonl + TensorBoard) on;
  (d) Lightning's default Trainer, if installed (`pip install -e .[bench]`).
Rounds are interleaved and each figure is the median over rounds. Every variant uses the same
thread count. The last line reads ``trainer_vs_raw_ratio: <number>`` (time per sample of the
Trainer over the raw tensor loop, median over rounds and models; <= 1.05 is the goal).

    python benchmarks/engine_overhead.py [--rounds 5] [--samples 32768] [--epochs 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from torchdojo.engine import (
    Loaders,
    MetricsLogger,
    ProgressBar,
    TensorLoader,
    Trainer,
    TrainerConfig,
)

BATCH = 128


def make_model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def raw_tensor_loop(model: nn.Module, x: Tensor, y: Tensor, epochs: int) -> None:
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def raw_dataloader_loop(model: nn.Module, x: Tensor, y: Tensor, epochs: int) -> None:
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def torchdojo_trainer(model: nn.Module, x: Tensor, y: Tensor, epochs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        console = Console(file=open(Path(tmp) / "progress.txt", "w"), force_terminal=True)  # noqa: SIM115
        trainer = Trainer(
            TrainerConfig(epochs=epochs, device="cpu", num_threads=torch.get_num_threads()),
            callbacks=[MetricsLogger(tmp), ProgressBar(console)],
        )
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        trainer.fit(
            model, Loaders(TensorLoader(x, y, batch_size=BATCH)), nn.CrossEntropyLoss(), opt
        )
        console.file.close()


def lightning_trainer(model: nn.Module, x: Tensor, y: Tensor, epochs: int) -> None:
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            xb, yb = batch
            loss = nn.functional.cross_entropy(self.model(xb), yb)
            self.log("loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), 1e-3)

    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            default_root_dir=tmp,
            enable_model_summary=False,
        )
        loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
        trainer.fit(Module(), loader)


def variants() -> dict[str, Callable[[nn.Module, Tensor, Tensor, int], None]]:
    found = {
        "raw tensor loop": raw_tensor_loop,
        "raw DataLoader loop": raw_dataloader_loop,
        "torchdojo Trainer": torchdojo_trainer,
    }
    try:
        import lightning  # noqa: F401

        found["Lightning Trainer"] = lightning_trainer
    except ImportError:
        print("(Lightning not installed: pip install -e .[bench] to include it)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.samples, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (args.samples,), generator=g)
    runs = variants()
    rates: dict[tuple[str, str], list[float]] = {}
    ratios: list[float] = []
    for r in range(args.rounds + 1):  # round 0 warms up
        for kind in ("mlp", "cnn"):
            times = {}
            for name, fn in runs.items():
                model = make_model(kind)
                start = time.perf_counter()
                fn(model, x, y, args.epochs)
                times[name] = time.perf_counter() - start
                if r:
                    rates.setdefault((kind, name), []).append(
                        args.samples * args.epochs / times[name]
                    )
            if r:
                ratios.append(times["torchdojo Trainer"] / times["raw tensor loop"])
    print(
        f"threads={args.threads} samples={args.samples} epochs={args.epochs} batch={BATCH} "
        f"rounds={args.rounds} (medians)"
    )
    for kind in ("mlp", "cnn"):
        base = statistics.median(rates[(kind, "raw tensor loop")])
        for name in runs:
            rate = statistics.median(rates[(kind, name)])
            print(
                f"  {kind:4s} {name:20s} {rate:10,.0f} samples/s   time x{base / rate:5.2f} of raw"
            )
    print(f"trainer_vs_raw_ratio: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
