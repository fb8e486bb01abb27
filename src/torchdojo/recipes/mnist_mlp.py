"""MNIST digits with a multi-layer perceptron: about 98 % test accuracy in a few epochs.

Seeds: 001 ch8 (MLP on MNIST), 002 §2-3 (deep nets), 004 ch7. Lesson: lessons/08_mnist.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchdojo.recipes._api import Expected, Recipe
from torchdojo.recipes._common import fit_mlp, load_split_pair
from torchdojo.recipes._run import RunContext


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # mnist | mnist-embedded | mnist-tiny | fashion-mnist
    epochs: int = 4
    batch_size: int = 128
    lr: float = 0.003  # peak LR of the one-cycle schedule
    width: int = 256
    depth: int = 2
    dropout: float = 0.1
    max_train_samples: int | None = None
    seed: int = 0


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test = load_split_pair(ctx, cfg.dataset, max_train=cfg.max_train_samples, seed=cfg.seed)
    return fit_mlp(ctx, cfg, train, test)


RECIPE = Recipe(
    name="mnist-mlp",
    description="MNIST digits with a multi-layer perceptron: about 98 % test accuracy.",
    config=Config,
    run=run,
    smoke=Config(dataset="mnist-tiny", epochs=1, batch_size=64),
    expected={
        "test_acc": Expected(
            0.98, data="MNIST (official 60k/10k split)", measured_by="torchdojo run mnist-mlp"
        )
    },
    lesson="lessons/08_mnist.py",
)
