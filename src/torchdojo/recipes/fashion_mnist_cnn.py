"""Fashion-MNIST with a wider MNIST-style CNN, augmentation and label smoothing: 93 % test.

Seeds: 001 ch9 (CNN), 004 ch7-8 (Fashion-MNIST), 000 ch4 (augmentation). Lesson:
lessons/08_mnist.py. Fashion-MNIST is MNIST's harder twin: shirts, T-shirts and pullovers look
alike, so the same CNN that reaches 99 % on digits stops near 91 %. Three cheap tricks buy the
rest on a CPU: more channels, random shifts and horizontal flips done on the uint8 batch in
torch (no DataLoader, no PIL), and label smoothing; one-cycle Adam keeps the epochs few.
Measured (seed 0): 93.04 % after the default 10 epochs (test accuracy by epoch 82.0, 86.6, 89.3,
87.1, 91.3, 91.9, 92.2, 92.8, 93.0, 93.0 %); seed 1: 93.24 %; ``--epochs 4`` stops at 92.1 %.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchdojo.models import ModelSpec, create_model
from torchdojo.recipes._api import Expected, Recipe
from torchdojo.recipes._common import load_split_pair
from torchdojo.recipes._fundamentals import CropFlip, fit_with_transform
from torchdojo.recipes._run import RunContext


@dataclass(frozen=True)
class Config:
    dataset: str = "fashion-mnist"  # fashion-mnist | mnist | mnist-tiny
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.01  # peak LR of the one-cycle schedule
    width: int = 32  # channels of the first conv stage (mnist-cnn uses 16)
    shift: int = 2  # random shift in pixels (0: off)
    flip: bool = True  # random horizontal flip (clothes are left-right symmetric)
    label_smoothing: float = 0.1
    max_train_samples: int | None = None
    seed: int = 0


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test = load_split_pair(ctx, cfg.dataset, max_train=cfg.max_train_samples, seed=cfg.seed)
    kwargs = {"in_channels": 1, "num_classes": len(train.classes), "width": cfg.width}
    spec = ModelSpec(
        "mnist-cnn",
        kwargs,
        list(train.x.shape[1:]),
        list(train.mean),
        list(train.std),
        train.classes,
    )
    model = create_model("mnist-cnn", **kwargs)
    augment = CropFlip(train.mean, train.std, pad=cfg.shift, flip=cfg.flip)
    return fit_with_transform(
        ctx,
        model,
        spec,
        train,
        test,
        train_transform=augment,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        label_smoothing=cfg.label_smoothing,
        channels_last=True,
    )


RECIPE = Recipe(
    name="fashion-mnist-cnn",
    description="Fashion-MNIST with a wider CNN, shift/flip augmentation, label smoothing: ~93 %.",
    config=Config,
    run=run,
    smoke=Config(dataset="mnist-tiny", epochs=1, batch_size=64, width=8),
    expected={
        "test_acc": Expected(
            0.925,
            data="Fashion-MNIST (60k/10k split)",
            measured_by="TORCHDOJO_DATA=/work/shared/data torchdojo run fashion-mnist-cnn",
        )
    },
    lesson="lessons/08_mnist.py",
)
