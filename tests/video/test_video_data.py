"""Video data: generated action clips, .mp4 in and out through PyAV, ECO's sampling, folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from torchdojo.data.errors import DataError
from torchdojo.data.video import (
    MOTION_CLASSES,
    MOTION_FAMILIES,
    ActionClipsConfig,
    ClipSpec,
    action_clips,
    generate_clips,
    load_video_folder,
    motion_path,
    read_video,
    render_clip,
    sample_frames,
    scan_video_folder,
    segment_indices,
    write_video,
)

pytest.importorskip("av")


def _digit() -> torch.Tensor:
    digit = torch.zeros(28, 28, dtype=torch.uint8)
    digit[6:22, 12:16] = 255  # a bar: a "1"
    digit[6:9, 9:16] = 200  # with a flag, so rotations show
    return digit


@pytest.mark.parametrize(
    ("a", "b"),
    [("right", "left"), ("up", "down"), ("rotate-cw", "rotate-ccw"), ("zoom-in", "zoom-out")],
)
def test_a_class_and_its_partner_are_the_same_frames_reversed(a: str, b: str) -> None:
    forward = motion_path(a, 12, np.random.default_rng(3))
    backward = motion_path(b, 12, np.random.default_rng(3))
    for key in forward:
        assert np.allclose(forward[key], backward[key][::-1])
    clip_a = render_clip(_digit(), forward, size=40)  # (T, H, W)
    clip_b = render_clip(_digit(), backward, size=40)
    assert torch.equal(clip_a, clip_b.flip(0))
    assert not torch.equal(clip_a, clip_b)  # the digit does move
    assert torch.equal(clip_a.float().mean(0), clip_b.float().mean(0))  # one average frame


def test_right_moves_the_digit_right_and_down_moves_it_down() -> None:
    for action, axis, sign in (("right", 1, 1), ("down", 0, 1), ("left", 1, -1)):
        clip = render_clip(_digit(), motion_path(action, 8, np.random.default_rng(0)), size=48)
        coords = torch.arange(48, dtype=torch.float32)
        mass = clip.float().sum(dim=2 - axis)  # (T, 48): profile along the axis
        centre = (mass * coords).sum(1) / mass.sum(1)  # (T,)
        assert sign * float(centre[-1] - centre[0]) > 4


def test_generated_clips_are_balanced_and_motion_labels_ignore_the_digit() -> None:
    digits = torch.stack([_digit(), _digit().flip(1)]).unsqueeze(1)  # (2, 1, 28, 28)
    clips, labels, classes = generate_clips(
        digits, torch.tensor([1, 7]), n=18, spec=ClipSpec(frames=6, size=32), seed=0
    )
    assert clips.shape == (18, 6, 32, 32) and clips.dtype == torch.uint8
    assert classes == list(MOTION_CLASSES)
    assert torch.bincount(labels, minlength=9).tolist() == [2] * 9
    _, digit_labels, digit_classes = generate_clips(
        digits, torch.tensor([1, 7]), n=8, kind="appearance", spec=ClipSpec(frames=6, size=32)
    )
    assert set(digit_labels.tolist()) <= {1, 7} and len(digit_classes) == 10


def test_segment_sampling_random_in_training_centre_in_eval() -> None:
    centre = segment_indices(24, 8, train=False)
    assert centre.tolist() == [[1, 4, 7, 10, 13, 16, 19, 22]]
    assert torch.equal(centre, 23 - centre.flip(1))  # symmetric: a reversed clip, same frames
    g = torch.Generator().manual_seed(0)
    drawn = segment_indices(24, 8, train=True, generator=g, batch=64)  # (64, 8)
    segment = torch.arange(8) * 3
    assert ((drawn >= segment) & (drawn < segment + 3)).all()  # one frame inside each segment
    assert len(drawn.unique()) == 24  # every frame can be drawn
    again = segment_indices(24, 8, train=True, generator=torch.Generator().manual_seed(0), batch=64)
    assert torch.equal(drawn, again)
    short = segment_indices(3, 8, train=False)  # fewer frames than segments: frames repeat
    assert short.min() >= 0 and short.max() <= 2


def test_sample_frames_picks_per_clip_indices() -> None:
    clips = torch.arange(2 * 5).view(2, 1, 5, 1, 1).expand(2, 1, 5, 2, 2)  # value = frame id
    picked = sample_frames(clips, torch.tensor([[0, 4], [1, 3]]))  # (2, 1, 2, 2, 2)
    assert picked.shape == (2, 1, 2, 2, 2)
    assert picked[:, 0, :, 0, 0].tolist() == [[0, 4], [6, 8]]


def test_mp4_round_trip_keeps_frames_close(tmp_path: Path) -> None:
    clip = render_clip(_digit(), motion_path("right", 6, np.random.default_rng(1)), size=32)
    path = write_video(tmp_path / "clip.mp4", clip, fps=12)
    back = read_video(path, channels=1)  # (1, T, H, W)
    assert back.shape == (1, 6, 32, 32) and back.dtype == torch.uint8
    assert (back[0].float() - clip.float()).abs().mean() < 6  # H.264 is lossy, but barely
    rgb = read_video(path, channels=3, size=16, frames=12)  # resized, frames repeated
    assert rgb.shape == (3, 12, 16, 16)


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "clips"
    for c, action in enumerate(("left", "right")):
        for i in range(2):
            pose = motion_path(action, 5, np.random.default_rng(i))
            write_video(root / action / f"{c}{i}.mp4", render_clip(_digit(), pose, size=32))
    (root / "left" / "broken.mp4").write_bytes(b"\x00\x01 not a video at all" * 10)
    with __import__("av").open(str(root / "right" / "empty.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()  # a header, then no frame at all
    (root / "right" / "notes.txt").write_text("not a clip")
    return root


def test_video_folder_skips_unreadable_and_empty_files_with_one_line_each(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    clips = load_video_folder(root, frames=4, size=24, channels=3)
    assert clips.x.shape == (4, 3, 4, 24, 24) and clips.classes == ["left", "right"]
    assert clips.y.tolist() == [0, 0, 1, 1]
    assert len(clips.skipped) == 2
    for line, name in zip(sorted(clips.skipped), ("broken.mp4", "empty.mp4"), strict=True):
        assert name in line and "\n" not in line
    assert "no video" in next(s for s in clips.skipped if "empty" in s)
    report = scan_video_folder(root)
    assert report["class_counts"] == {"all": {"left": 2, "right": 2}}
    assert len(report["problems"]) == 2 and report["frames"] == {"min": 5, "max": 5}


def test_read_video_and_folder_errors_name_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match="bad.mp4"):
        read_video(bad)
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match="at least two"):
        load_video_folder(tmp_path, frames=4, size=16)
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="no readable clip"):
        load_video_folder(tmp_path, frames=4, size=16)


def test_generated_set_is_written_once_and_read_back_from_mp4(tmp_path: Path) -> None:
    cfg = ActionClipsConfig(train=18, test=9, spec=ClipSpec(frames=6, size=32), synthetic=True)
    train, test = action_clips(cfg, cache=tmp_path)
    mp4s = sorted(tmp_path.rglob("*.mp4"))
    assert len(mp4s) == 27 and train.x.shape == (18, 1, 6, 32, 32) and len(test) == 9
    assert train.classes == list(MOTION_CLASSES) and not train.reference
    stamp = mp4s[0].stat().st_mtime_ns
    again, _ = action_clips(cfg, cache=tmp_path)  # cached: read, not rewritten
    assert mp4s[0].stat().st_mtime_ns == stamp and torch.equal(again.x, train.x)
    assert sum(len(f) for f in MOTION_FAMILIES.values()) == len(MOTION_CLASSES)
