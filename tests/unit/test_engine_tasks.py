"""The engine serves tasks beyond (x, y) classification without a subclass: boxes scored by mAP,
padded sequences with lengths (resumed mid-epoch), and 5-D volumes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import Dataset

from torchdojo.engine import (
    EvalOutput,
    Loaders,
    TensorLoader,
    Trainer,
    TrainerConfig,
    load_checkpoint,
    make_loader,
)

Boxes = list[dict[str, Tensor]]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    torch.set_num_threads(1)
    yield


# ------------------------------------------------------------------ detection: boxes and mAP
class Squares(Dataset[tuple[Tensor, dict[str, Tensor]]]):
    """16x16 images holding one or two bright squares; class 0 is dim (0.5), class 1 bright."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            image = torch.zeros(1, 16, 16)
            boxes, labels = [], []
            for _ in range(1 + i % 2):  # one box, then two: targets differ in length
                x0, y0 = torch.randint(0, 10, (2,), generator=g).tolist()
                side = int(torch.randint(4, 7, (1,), generator=g))
                label = int(torch.randint(0, 2, (1,), generator=g))
                image[0, y0 : y0 + side, x0 : x0 + side] = 0.5 + 0.5 * label
                boxes.append([x0, y0, x0 + side, y0 + side])
                labels.append(label)
            target = {
                "boxes": torch.tensor(boxes, dtype=torch.float32),
                "labels": torch.tensor(labels),
            }
            self.items.append((image, target))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor]]:
        return self.items[i]


def collate_boxes(samples: list[tuple[Tensor, dict[str, Tensor]]]) -> tuple[Tensor, Boxes]:
    """Stack the images, keep the targets a list (one dict per image, any number of boxes)."""
    return torch.stack([image for image, _ in samples]), [target for _, target in samples]


class OneBox(nn.Module):
    """Predict one box (x0, y0, x1, y1 in [0, 1]) and two class logits per image."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 6))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, 6): 4 box coordinates, 2 logits


def box_loss(out: Tensor, targets: Boxes) -> Tensor:
    """Smooth L1 on the first target box (scaled to [0, 1]) + cross-entropy on its label."""
    boxes = torch.stack([t["boxes"][0] for t in targets]) / 16  # (B, 4)
    labels = torch.stack([t["labels"][0] for t in targets])  # (B,)
    return F.smooth_l1_loss(out[:, :4].sigmoid(), boxes) + F.cross_entropy(out[:, 4:], labels)


def box_eval_step(trainer: Trainer, batch: tuple[Tensor, Boxes]) -> EvalOutput:
    images, targets = batch
    out = trainer.model(images)
    scores, labels = out[:, 4:].softmax(1).max(1)  # (B,), (B,)
    preds = [
        {"boxes": box[None] * 16, "scores": score[None], "labels": label[None]}
        for box, score, label in zip(out[:, :4].sigmoid(), scores, labels, strict=True)
    ]
    return EvalOutput(box_loss(out, targets), preds, targets, len(targets))


def oracle_eval_step(trainer: Trainer, batch: tuple[Tensor, Boxes]) -> EvalOutput:
    """Predictions equal to the targets: mAP must be exactly 1."""
    _, targets = batch
    preds = [{**t, "scores": torch.ones(len(t["labels"]))} for t in targets]
    return EvalOutput(None, preds, targets, len(targets))


def mean_average_precision() -> Any:
    from torchmetrics.detection import MeanAveragePrecision

    for backend, module in (
        ("faster_coco_eval", "faster_coco_eval"),
        ("pycocotools", "pycocotools"),
    ):
        if importlib.util.find_spec(module) is not None:
            return MeanAveragePrecision(backend=backend)
    pytest.skip("mAP needs faster-coco-eval or pycocotools: pip install faster-coco-eval")


def box_loaders() -> Loaders:
    return Loaders(
        make_loader(Squares(128, seed=0), batch_size=16, seed=0, collate_fn=collate_boxes),
        make_loader(Squares(32, seed=1), batch_size=16, shuffle=False, collate_fn=collate_boxes),
    )


def test_box_targets_train_and_map_is_logged() -> None:
    torch.manual_seed(0)
    model = OneBox()
    trainer = Trainer(
        TrainerConfig(epochs=6, device="cpu", num_threads=1),
        metrics={"bbox": mean_average_precision()},
    )
    history = trainer.fit(
        model,
        box_loaders(),
        box_loss,
        torch.optim.Adam(model.parameters(), lr=1e-2),
        eval_step=box_eval_step,
    )
    first, last = history.records[0], history.last()
    assert last["train_loss"] < 0.8 * first["train_loss"]
    for key in ("val_loss", "val_bbox_map", "val_bbox_map_50", "val_bbox_map_75", "val_bbox_mar_1"):
        assert isinstance(last[key], float), key
    assert 0.0 <= last["val_bbox_map_50"] <= 1.0
    assert "val_bbox_classes" not in last  # a vector, not one number to log


def test_map_is_one_when_predictions_equal_targets() -> None:
    model = OneBox()
    trainer = Trainer(
        TrainerConfig(epochs=1, device="cpu", num_threads=1),
        metrics={"bbox": mean_average_precision()},
    )
    history = trainer.fit(
        model,
        box_loaders(),
        box_loss,
        torch.optim.SGD(model.parameters(), lr=0.0),
        eval_step=oracle_eval_step,
    )
    record = history.last()
    assert record["val_bbox_map"] == 1.0 and record["val_bbox_map_50"] == 1.0
    assert "val_loss" not in record  # the eval step gave no loss


# ------------------------------------------------------------ sequences: padded, with lengths
class Sequences(Dataset[tuple[Tensor, Tensor]]):
    """Token sequences of length 3-12 over tokens 1-7 (0 pads); the label: last token >= 4."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        lengths = torch.randint(3, 13, (n,), generator=g)
        self.items = [(torch.randint(1, 8, (int(t),), generator=g)) for t in lengths]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        tokens = self.items[i]
        return tokens, (tokens[-1] >= 4).long()


def collate_padded(samples: list[tuple[Tensor, Tensor]]) -> tuple[tuple[Tensor, Tensor], Tensor]:
    """``((tokens (B, T) padded with 0, lengths (B,)), y (B,))``."""
    tokens = pad_sequence([s for s, _ in samples], batch_first=True)  # (B, T)
    lengths = torch.tensor([len(s) for s, _ in samples])
    return (tokens, lengths), torch.stack([y for _, y in samples])


class GRUClassifier(nn.Module):
    """Embedding -> GRU over the packed sequence -> the last real step's state -> 2 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(8, 8, padding_idx=0)
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.drop = nn.Dropout(0.1)  # the resumed run must restore the RNG state too
        self.head = nn.Linear(16, 2)

    def forward(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        tokens, lengths = batch  # (B, T), (B,)
        packed = pack_padded_sequence(
            self.embed(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)  # (1, B, 16): the state after each sequence's last real token
        return self.head(self.drop(h[0]))  # (B, 2)


def fit_sequences(
    checkpoint_dir: Path, resume: Any = None, *, seed: int = 0
) -> tuple[Trainer, nn.Module]:
    torch.manual_seed(seed)  # a different seed on resume: the checkpoint must restore weights
    model = GRUClassifier()
    trainer = Trainer(
        TrainerConfig(
            epochs=3, device="cpu", num_threads=1, checkpoint_every=5, keep_last=20, log_every=4
        ),
        checkpoint_dir=checkpoint_dir,
    )
    loader = make_loader(Sequences(128, seed=0), batch_size=16, seed=2, collate_fn=collate_padded)
    trainer.fit(
        model,
        Loaders(loader),
        nn.CrossEntropyLoss(),
        torch.optim.Adam(model.parameters(), lr=0.02),
        resume=resume,
    )
    return trainer, model


def test_padded_sequences_learn_and_resume_mid_epoch(tmp_path: Path) -> None:
    straight, model = fit_sequences(tmp_path / "straight")
    losses = [r["train_loss"] for r in straight.history.records]
    assert losses[-1] < 0.8 * losses[0], losses
    checkpoint = load_checkpoint(tmp_path / "straight" / "step-00000005.safetensors")
    assert checkpoint.state["trainer"]["batch_in_epoch"] == 5  # mid-epoch: 8 batches an epoch
    resumed, twin = fit_sequences(tmp_path / "resumed", checkpoint, seed=1)
    assert resumed.state.step == straight.state.step == 24
    for key, value in model.state_dict().items():
        assert torch.equal(value, twin.state_dict()[key]), key
    assert [r["train_loss"] for r in resumed.history.records][1:] == losses[1:]


# --------------------------------------------------------------------- volumes: (B, 1, D, H, W)
def volumes(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """8^3 noise volumes; class 1 has a bright blob in the front half of the depth axis."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, 8, generator=g)  # (B, 1, D, H, W)
    y = torch.randint(0, 2, (n,), generator=g)
    x[y == 1, :, :4, 2:6, 2:6] += 1.5
    return x, y


class Shapes(nn.Module):
    """Record the shape and layout of what the model is fed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[tuple[int, ...], bool]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append((tuple(x.shape), x.is_contiguous()))
        return x


def test_volumes_train_on_the_default_step_with_channels_last() -> None:
    torch.manual_seed(0)
    shapes = Shapes()
    model = nn.Sequential(
        shapes,
        nn.Conv3d(1, 4, 3, padding=1),
        nn.BatchNorm3d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(2),  # (B, 4, 2, 2, 2)
        nn.Flatten(),
        nn.Linear(32, 2),
    )
    x, y = volumes(128, seed=0)
    trainer = Trainer(TrainerConfig(epochs=4, device="cpu", num_threads=1, channels_last=True))
    history = trainer.fit(
        model,
        Loaders(TensorLoader(x, y, batch_size=16, seed=0), TensorLoader(x, y, batch_size=64)),
        nn.CrossEntropyLoss(),
        torch.optim.Adam(model.parameters(), lr=0.01),
    )
    assert history.last()["train_loss"] < 0.7 * history.records[0]["train_loss"]
    assert shapes.seen[0] == ((16, 1, 8, 8, 8), True)  # 5-D input left in its own layout
    assert model[1].weight.is_contiguous()  # the Conv3d weight too
