"""Glue for ``torchdojo lr-find`` and ``torchdojo show-batch``: a recipe's model and data.

The LR range test needs the recipe's model, training batches and optimizer family, which
live inside each recipe's ``run``; this module rebuilds them for the in-memory classification
recipes listed in :data:`LR_FIND_RECIPES`. ``show-batch`` works for any recipe whose config has
a ``dataset`` of images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn

import torchdojo.data.mnist1d  # noqa: F401  (registers mnist1d, mnist1d-tiny)
from torchdojo.data import ArrayDataset, Normalize, create_dataset
from torchdojo.engine import TensorLoader
from torchdojo.engine.lr_finder import LRFinderResult, find_lr
from torchdojo.engine.mixing import BatchMixer
from torchdojo.models import create_model
from torchdojo.recipes import get_recipe
from torchdojo.utils import pick_num_threads


def _mlp(cfg: Any, data: ArrayDataset) -> nn.Module:
    c, h, w = data.x.shape[1:]
    return create_model(
        "mlp",
        in_features=c * h * w,
        num_classes=len(data.classes),
        width=cfg.width,
        depth=cfg.depth,
        dropout=cfg.dropout,
    )


def _cnn(cfg: Any, data: ArrayDataset) -> nn.Module:
    return create_model("mnist-cnn", in_channels=1, num_classes=len(data.classes), width=cfg.width)


def _mnist1d(cfg: Any, data: ArrayDataset) -> nn.Module:
    return create_model("mnist1d-resnet", width=cfg.width, num_classes=len(data.classes))


LR_FIND_RECIPES: dict[str, Callable[[Any, ArrayDataset], nn.Module]] = {
    "mnist-mlp": _mlp,
    "mnist-cnn": _cnn,
    "mnist1d-cnn": _mnist1d,
}


def _recipe_data(name: str, *, smoke: bool, data_dir: str | None) -> tuple[Any, ArrayDataset]:
    recipe = get_recipe(name)
    cfg = recipe.smoke if smoke else recipe.config()
    dataset = getattr(cfg, "dataset", None)
    if not isinstance(dataset, str):
        raise ValueError(f"recipe {name!r} has no `dataset` in its config; nothing to show")
    max_train = getattr(cfg, "max_train_samples", None)
    return cfg, create_dataset(dataset, "train", root=data_dir).subset(max_train)


def _loader(cfg: Any, data: ArrayDataset, *, batch_size: int | None = None) -> TensorLoader:
    transform = Normalize(data.mean, data.std) if data.x.dtype == torch.uint8 else None
    size = batch_size or int(getattr(cfg, "batch_size", 128))
    return TensorLoader(data.x, data.y, batch_size=size, shuffle=True, transform=transform)


def lr_find_recipe(
    name: str,
    *,
    smoke: bool = False,
    data_dir: str | None = None,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 100,
) -> tuple[LRFinderResult, Figure]:
    """Run the LR range test on recipe ``name``'s model, data and optimizer family."""
    if name not in LR_FIND_RECIPES:
        raise ValueError(
            f"lr-find knows how to build {', '.join(LR_FIND_RECIPES)}; {name!r} builds its "
            "model inside run(), so call torchdojo.engine.lr_finder.find_lr from Python instead"
        )
    cfg, data = _recipe_data(name, smoke=smoke, data_dir=data_dir)
    torch.manual_seed(getattr(cfg, "seed", 0))
    model = LR_FIND_RECIPES[name](cfg, data)
    torch.set_num_threads(pick_num_threads(sum(p.numel() for p in model.parameters()), None))
    betas = tuple(getattr(cfg, "betas", (0.9, 0.999)))
    decay = float(getattr(cfg, "weight_decay", 0.0))

    def optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(params, lr=start_lr, betas=betas, weight_decay=decay)  # type: ignore[arg-type]

    result = find_lr(
        model,
        _loader(cfg, data),
        nn.CrossEntropyLoss(),
        optimizer,
        start_lr=start_lr,
        end_lr=end_lr,
        steps=steps,
    )
    from torchdojo.viz.lr_finder import lr_finder_figure

    figure = lr_finder_figure(
        result.lrs,
        result.losses,
        suggestion=result.suggestion,
        raw_losses=result.raw_losses,
        title=f"LR range test: {name}",
    )
    return result, figure


def show_batch_recipe(
    name: str,
    *,
    smoke: bool = False,
    data_dir: str | None = None,
    count: int = 32,
    mix: str = "none",
    seed: int = 0,
) -> Figure:
    """A grid of ``count`` training images as recipe ``name`` feeds them, optionally mixed
    (``mix``: ``"none"``, ``"mixup"``, ``"cutmix"``); titles show the (soft) labels."""
    if mix not in {"none", "mixup", "cutmix"}:
        raise ValueError(f"mix must be none, mixup or cutmix, not {mix!r}")
    cfg, data = _recipe_data(name, smoke=smoke, data_dir=data_dir)
    if data.x.dim() != 4:
        raise ValueError(
            f"recipe {name!r} trains on {tuple(data.x.shape[1:])}-shaped inputs, not images"
        )
    torch.manual_seed(seed)
    x, y = next(iter(_loader(cfg, data, batch_size=count)))
    targets = torch.nn.functional.one_hot(y, len(data.classes)).float()
    if mix != "none":
        mixer = BatchMixer(
            len(data.classes),
            mixup_alpha=1.0 if mix == "mixup" else 0.0,
            cutmix_alpha=1.0 if mix == "cutmix" else 0.0,
        )
        x, targets = mixer(x, y)
    from torchdojo.viz import image_grid

    titles = [_soft_label(t, data.classes) for t in targets]
    normalized = data.x.dtype == torch.uint8
    return image_grid(
        x,
        titles=titles,
        mean=data.mean if normalized else None,
        std=data.std if normalized else None,
    )


def _soft_label(target: torch.Tensor, classes: list[str]) -> str:
    """``"3"`` for a one-hot target, ``"3 .7/5 .3"`` for a mixed one."""
    top = target.topk(min(2, len(target)))
    parts = [(classes[int(i)], float(v)) for v, i in zip(top.values, top.indices, strict=True)]
    parts = [(c, v) for c, v in parts if v > 1e-3]
    if len(parts) == 1:
        return parts[0][0]
    return "/".join(f"{c} {v:.2f}" for c, v in parts)
