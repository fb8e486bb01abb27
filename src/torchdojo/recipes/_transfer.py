"""Transfer-learning pieces for image-folder recipes: freeze, then fine-tune with discriminative LRs.

fastai's ``fine_tune`` (Howard & Gugger, 2020, https://arxiv.org/abs/2002.04688): train only the
new head for ``freeze_epochs`` with the pretrained body frozen, then unfreeze everything with
lower learning rates for earlier layers (``slice(lr / lr_mult, lr)``), each phase one LR cycle.
Here the body stays in eval mode while frozen, so its BatchNorm statistics stay ImageNet's.
Also: the resumable class-balanced sampler, the Grad-CAM layer pick, the shapes folder the smoke
run trains on. Used by recipes/image_folder.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn
from torch.utils.data import Sampler
from torchmetrics.classification import MulticlassAccuracy

from torchdojo.engine import History, Loaders, StepOutput, Trainer
from torchdojo.engine.optim import build_optimizer
from torchdojo.recipes._common import accuracy
from torchdojo.recipes._run import RunContext


def classifier_name(model: nn.Module) -> str:
    """Qualified name of the model's last ``nn.Linear`` (the head a transfer run replaces)."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear head to fine-tune")
    return linears[-1]


def _is_head(param_name: str, head: str) -> bool:
    return param_name.startswith(f"{head}.")


def param_groups(
    model: nn.Module, *, lr: float, lr_mult: float = 100.0, num_groups: int = 3
) -> list[dict[str, Any]]:
    """Optimizer groups with discriminative learning rates, earliest layers first.

    The body (every parameter but the head's, in registration order, which follows depth) is cut
    into ``num_groups - 1`` contiguous groups; the head is the last group. Group ``j`` of ``n``
    gets ``lr / lr_mult ** ((n - 1 - j) / (n - 1))``: ``lr / lr_mult`` for the stem, ``lr`` for
    the head, geometric in between (fastai's ``slice(lr / lr_mult, lr)``).

    Args:
        model: A classifier whose last ``nn.Linear`` is the head.
        lr: Learning rate of the head.
        lr_mult: Ratio of the head's LR to the first group's.
        num_groups: Groups in all, head included (at least 2).
    """
    if num_groups < 2:
        raise ValueError(f"num_groups={num_groups} must be >= 2 (at least one body group + head)")
    head = classifier_name(model)
    named = list(model.named_parameters())
    body = [p for n, p in named if not _is_head(n, head)]
    chunks = [c for c in np.array_split(np.arange(len(body)), num_groups - 1) if len(c)]
    groups = [[body[i] for i in chunk] for chunk in chunks]
    groups.append([p for n, p in named if _is_head(n, head)])
    n = len(groups)
    names = [f"body{j}" for j in range(n - 1)] + ["head"]
    return [
        {"params": params, "lr": lr / lr_mult ** ((n - 1 - j) / (n - 1)), "name": names[j]}
        for j, params in enumerate(groups)
    ]


def one_cycle(
    t: float, *, warmup: float = 0.25, div: float = 25.0, final_div: float = 1e4
) -> float:
    """LR factor at progress ``t`` in [0, 1] of a one-cycle schedule (cosine up, cosine down).

    Matches ``torch.optim.lr_scheduler.OneCycleLR``'s shape: from ``1/div`` up to 1 over the
    first ``warmup`` of the cycle, then down to ``1/(div * final_div)``.
    """
    low, end = 1.0 / div, 1.0 / (div * final_div)
    if t < warmup:
        return low + (1.0 - low) * (1 - math.cos(math.pi * t / warmup)) / 2
    t = min(1.0, (t - warmup) / max(1e-12, 1.0 - warmup))
    return end + (1.0 - end) * (1 + math.cos(math.pi * t)) / 2


def two_phase_schedule(
    optimizer: torch.optim.Optimizer,
    *,
    frozen_steps: int,
    unfrozen_steps: int,
    frozen_scale: Sequence[float],
) -> torch.optim.lr_scheduler.LambdaLR:
    """One LR cycle over the frozen phase, a second over the unfrozen phase, per step.

    Args:
        optimizer: Its groups' ``lr`` are the unfrozen phase's peaks.
        frozen_steps: Optimizer steps with the body frozen.
        unfrozen_steps: Optimizer steps after unfreezing.
        frozen_scale: Per group, the frozen phase's peak as a multiple of the group's ``lr``
            (0 for frozen groups).
    """

    def factor(scale: float) -> Any:
        def at(step: int) -> float:
            if step < frozen_steps:
                return scale * one_cycle(step / frozen_steps)
            return one_cycle((step - frozen_steps) / max(1, unfrozen_steps))

        return at

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(s) for s in frozen_scale])


DEFAULT_IMAGE_FOLDER = "hymenoptera_data"  # under the data root, when image-folder gets no data=


def image_folder_path(data: str, root: Path) -> Path:
    """The folder an image-folder run reads: ``data``, or the default one under ``root``."""
    return Path(data).expanduser() if data else root / DEFAULT_IMAGE_FOLDER


class FreezeTrainer(Trainer):
    """A Trainer that keeps the body frozen (no grads, eval mode) for the first epochs.

    Set ``head`` (the classifier's qualified name) and ``frozen_epochs`` before ``fit``. The
    phase depends only on the epoch, so a resumed run freezes exactly as the original did.
    With ``bn_frozen`` BatchNorm layers stay in eval mode after unfreezing too (their affine
    weights still train): the ImageNet statistics beat those of small batches from a small
    folder (Keras' transfer-learning guide gives the same advice).
    """

    head: str = ""
    frozen_epochs: int = 0
    bn_frozen: bool = False

    def training_step(self, batch: Any) -> StepOutput:
        """Apply this epoch's freezing, then the usual ``(x, y)`` step."""
        frozen = self.state.epoch < self.frozen_epochs
        model = self.unwrapped_model
        for name, param in model.named_parameters():
            param.requires_grad_(not frozen or _is_head(name, self.head))
        if frozen:
            model.eval()  # the trainer set train mode at the epoch start; only the head trains
            model.get_submodule(self.head).train()
        elif self.bn_frozen:
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return super().training_step(batch)


def fine_tune(
    ctx: RunContext,
    model: nn.Module,
    loaders: Loaders,
    *,
    num_classes: int,
    frozen_epochs: int,
    unfrozen_epochs: int,
    lr: float,
    lr_mult: float = 100.0,
    class_weight: Tensor | None = None,
    bn_frozen: bool = True,
    seed: int = 0,
) -> History:
    """Train the head alone for ``frozen_epochs``, then everything for ``unfrozen_epochs``.

    AdamW; the frozen phase peaks at ``lr`` on the head; after unfreezing the head peaks at
    ``lr / 2`` and the stem at ``lr / 2 / lr_mult`` (fastai's ``fine_tune``). With
    ``unfrozen_epochs=0`` it is a frozen-feature probe. ``bn_frozen``: see :class:`FreezeTrainer`.
    """
    groups = param_groups(model, lr=lr / 2, lr_mult=lr_mult)
    optimizer = build_optimizer("adamw", groups, lr=lr, weight_decay=0.01)
    steps = len(loaders.train)  # type: ignore[arg-type]
    schedule = two_phase_schedule(
        optimizer,
        frozen_steps=frozen_epochs * steps,
        unfrozen_steps=unfrozen_epochs * steps,
        frozen_scale=[0.0] * (len(groups) - 1) + [2.0],
    )
    trainer = ctx.trainer(
        trainer_cls=FreezeTrainer,
        metrics={  # acc: share of images right; balanced_acc: mean of per-class recalls
            "acc": accuracy(num_classes),
            "balanced_acc": MulticlassAccuracy(num_classes, average="macro"),
        },
        epochs=frozen_epochs + unfrozen_epochs,
        seed=seed,
        monitor="val_acc",
        channels_last=True,
    )
    assert isinstance(trainer, FreezeTrainer)
    trainer.head, trainer.frozen_epochs = classifier_name(model), frozen_epochs
    trainer.bn_frozen = bn_frozen
    loss_fn = nn.CrossEntropyLoss(weight=class_weight)
    return trainer.fit(model, loaders, loss_fn, optimizer, schedule, resume=ctx.resume)


class BalancedSampler(Sampler[int]):
    """Draw every class equally often (with replacement), resumable like ``ResumableSampler``.

    The draws of epoch ``e`` depend only on ``(seed, e)``, so a resumed run replays them.
    """

    def __init__(self, labels: Sequence[int], *, seed: int = 0) -> None:
        counts = torch.bincount(torch.as_tensor(list(labels)))
        self.weights = 1.0 / counts[torch.as_tensor(list(labels))].double()
        self.seed, self.epoch, self.start = seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, sample_index: int) -> None:
        self.start = sample_index

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        draws = torch.multinomial(self.weights, len(self.weights), True, generator=generator)
        start, self.start = self.start, 0
        return iter(draws[start:].tolist())

    def __len__(self) -> int:
        return len(self.weights)


def cam_layer(model: nn.Module, x: Tensor) -> nn.Module:
    """The last module that outputs a spatial (B, C, h, w) map with h * w > 1 on input ``x``."""
    found: list[nn.Module] = []

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, Tensor) and output.ndim == 4 and output.shape[-2:].numel() > 1:
            found.append(module)

    handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    if not found:
        raise ValueError(f"{type(model).__name__} has no spatial layer for Grad-CAM")
    return found[-1]


def write_shapes_folder(root: Path, *, per_class: int = 12, size: int = 64, seed: int = 0) -> Path:
    """A tiny two-class image folder (red circles, blue squares) for offline smoke runs."""
    rng = np.random.default_rng(seed)
    for name, color in (("circles", (220, 40, 40)), ("squares", (40, 60, 220))):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            img = Image.fromarray(noise + 150, "RGB")
            r = int(rng.integers(size // 6, size // 3))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            box = (cx - r, cy - r, cx + r, cy + r)
            draw = ImageDraw.Draw(img)
            (draw.ellipse if name == "circles" else draw.rectangle)(box, fill=color)
            img.save(root / name / f"{name}_{i:02d}.png")
    return root


@torch.inference_mode()
def predict_loader(model: nn.Module, loader: Any) -> tuple[Tensor, Tensor]:
    """Predicted and true labels over a ``(x, y)`` loader."""
    model.eval()
    device = next(model.parameters()).device
    preds, targets = [], []
    for x, y in loader:
        preds.append(model(x.to(device)).argmax(1).cpu())
        targets.append(y)
    return torch.cat(preds), torch.cat(targets)


def cam_figure(
    model: nn.Module,
    dataset: Any,
    classes: Sequence[str],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    count: int = 8,
) -> Any:
    """Grad-CAM overlays of ``count`` images spread over ``dataset``, titled ``pred (p) / true``."""
    from torchdojo.viz import GradCAM, cam_overlay_figure

    picks = np.unique(np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round())
    items = [dataset[int(i)] for i in picks]
    x = torch.stack([image for image, _ in items]).to(next(model.parameters()).device)
    cams = GradCAM(model, cam_layer(model, x[:1]))(x)  # (B, H, W), each image's predicted class
    with torch.no_grad():
        probs = model.eval()(x).softmax(1).cpu()  # (B, num_classes)
    titles = [
        f"{classes[int(p.argmax())]} ({float(p.max()):.2f}) / {classes[y]}"
        for p, (_, y) in zip(probs, items, strict=True)
    ]
    return cam_overlay_figure(x.cpu(), cams.cpu(), titles, mean=mean, std=std)
