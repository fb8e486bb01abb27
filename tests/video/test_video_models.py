"""Video models and batches: shapes, what frame averaging cannot see, ECO sampling in loaders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchdojo.data.video import MOTION_CLASSES
from torchdojo.models import create_model
from torchdojo.models.video import Conv2Plus1d
from torchdojo.runs.video import ClipLoader, family_accuracy


@pytest.mark.parametrize("name", ["eco-lite", "frame-average", "r2plus1d"])
def test_video_models_map_clips_to_logits(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=3, num_classes=5, width=4, width_3d=8).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 4, 32, 32))  # (B, C, T, H, W)
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_frame_average_cannot_tell_a_clip_from_its_reversal_but_eco_lite_can() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 1, 8, 32, 32)
    reversed_x = x.flip(2)  # the same frames, played backwards
    average = create_model("frame-average", width=4, width_3d=8).eval()
    eco = create_model("eco-lite", width=4, width_3d=8).eval()
    with torch.no_grad():
        assert torch.allclose(average(x), average(reversed_x), atol=1e-5)
        assert not torch.allclose(eco(x), eco(reversed_x), atol=1e-3)


def test_2plus1d_factoring_keeps_the_parameter_count_of_a_3d_kernel() -> None:
    full = nn.Conv3d(16, 32, 3, bias=False).weight.numel()  # 27 * 16 * 32
    factored = sum(p.numel() for p in Conv2Plus1d(16, 32).parameters())
    assert abs(factored - full) / full < 0.05  # same budget, one more nonlinearity


def _loader(train: bool, seed: int = 0) -> ClipLoader:
    x = torch.arange(24, dtype=torch.uint8).view(1, 1, 24, 1, 1).repeat(10, 1, 1, 2, 2)
    return ClipLoader(
        x,
        torch.arange(10),
        segments=8,
        mean=(0.0,),
        std=(1 / 255,),
        train=train,
        batch_size=4,
        seed=seed,
    )


def test_clip_loader_samples_one_frame_per_segment_and_replays_on_resume() -> None:
    loader = _loader(train=True)
    batches = [(x.clone(), y.clone()) for x, y in loader]
    frames = batches[0][0][:, 0, :, 0, 0].round().long()  # (B, 8): the frame ids drawn
    assert batches[0][0].shape == (4, 1, 8, 2, 2) and len(batches) == 3
    assert ((frames // 3) == torch.arange(8)).all()  # one frame in each segment of 3
    loader.set_start(1)  # resume after the first batch: the same frames again
    resumed = list(loader)
    assert torch.equal(resumed[0][0], batches[1][0]) and torch.equal(resumed[0][1], batches[1][1])
    loader.set_epoch(1)
    assert not torch.equal(next(iter(loader))[0], batches[0][0])  # a new epoch, new draws
    centre = next(iter(_loader(train=False)))[0][:, 0, :, 0, 0].round().long()
    assert centre.tolist() == [[1, 4, 7, 10, 13, 16, 19, 22]] * 4


def test_family_accuracy_counts_a_choice_within_the_true_family_only() -> None:
    classes = list(MOTION_CLASSES)
    targets = torch.tensor([classes.index("right"), classes.index("up")])
    logits = torch.full((2, 9), -5.0)
    logits[0, classes.index("left")] = 1.0  # wrong direction, same family
    logits[1, classes.index("rotate-cw")] = 9.0  # another family: ignored ...
    logits[1, classes.index("up")] = 1.0  # ... the best within its family is right
    got = family_accuracy(logits, targets, classes)
    assert got["family_acc"] == 0.5
    assert got["family_chance"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert family_accuracy(logits, targets, [str(i) for i in range(9)]) == {}
