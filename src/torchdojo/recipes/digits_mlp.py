"""An MLP on scikit-learn's 8x8 digits: about 97 % test accuracy in seconds, no download.

Seeds: 001 ch8 (MLP), 002 §2 (deep nets), 004 ch6. Lesson: lessons/05_deep_nets.py.
The 1,797 bundled digits are MNIST in miniature (8x8, 17 grey levels): the whole
train-evaluate loop of an image classifier runs in seconds with no data to fetch, so it is the
place to try depth, width and dropout before paying for MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchdojo.recipes._api import Expected, Recipe
from torchdojo.recipes._common import fit_mlp, load_split_pair
from torchdojo.recipes._run import RunContext


@dataclass(frozen=True)
class Config:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.003  # peak LR of the one-cycle schedule
    width: int = 128
    depth: int = 2
    dropout: float = 0.2
    seed: int = 0


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test = load_split_pair(ctx, "digits", max_train=None, seed=cfg.seed)
    return fit_mlp(ctx, cfg, train, test)


RECIPE = Recipe(
    name="digits-mlp",
    description="An MLP on scikit-learn's 8x8 digits: about 97 % test accuracy in seconds.",
    config=Config,
    run=run,
    smoke=Config(epochs=2),
    expected={
        "test_acc": Expected(
            0.96,
            data="scikit-learn digits, 20 % stratified test split (360 images)",
            measured_by="torchdojo run digits-mlp",
        )
    },
    lesson="lessons/05_deep_nets.py",
)
