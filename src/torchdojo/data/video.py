"""Video clips for action recognition: Moving-MNIST actions, real .mp4 files, ECO's frame sampling.

Seed 003 ch9 classifies human actions with ECO (Zolfaghari et al., 2018,
https://arxiv.org/abs/1804.09066) on Kinetics clips that are gone, read with PyTorchVideo and
``torchvision.io.read_video`` (both deprecated). Here the clips are made from real MNIST digits
(:func:`~torchdojo.data.mnist.resolve_idx_dataset`; held-out *test* digits in the test clips),
written as H.264 ``.mp4`` files through PyAV and read back through the same reader a folder of
your own clips goes through (:func:`load_video_folder`). Taught in lessons/28_video.py; recipe
``video-actions``.

Motion classes come in families whose clips are the *same frames in another order*: ``left``
is ``right`` played backwards, ``bounce`` (out and back) covers the same positions, and so on.
A model that averages its frames cannot tell them apart; that is the point of the lesson.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from torchdojo.data.errors import DataError

log = logging.getLogger(__name__)

# Classes that only motion defines, by family: within a family the frames of a clip are the
# same set (the same positions, angles or sizes), only their order differs.
MOTION_FAMILIES: dict[str, tuple[str, ...]] = {
    "horizontal": ("right", "left", "bounce"),
    "vertical": ("up", "down"),
    "rotation": ("rotate-cw", "rotate-ccw"),
    "zoom": ("zoom-in", "zoom-out"),
}
MOTION_CLASSES: tuple[str, ...] = tuple(c for family in MOTION_FAMILIES.values() for c in family)
DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
ClipKind = Literal["motion", "appearance"]
SPLITS = ("train", "val", "valid", "validation", "test")


def require_av() -> Any:
    """PyAV, or the one-line error that names the extra."""
    try:
        import av
    except ImportError:
        raise DataError(
            'reading and writing video files needs PyAV: pip install "torchdojo[video]"'
        ) from None
    return av


# ------------------------------------------------------------------------- generated clips


@dataclass(frozen=True)
class ClipSpec:
    """The shape of generated clips.

    Args:
        frames: Frames per clip. 24 = 8 segments of 3, so ECO's centre frames (1, 4, ..., 22)
            are symmetric in time and a clip and its reversal give the same sampled frames.
        size: Side of the square frame, in pixels.
        fps: Frame rate written into the .mp4.
    """

    frames: int = 24
    size: int = 64
    fps: int = 12


@dataclass
class Clips:
    """Clips in memory: uint8 ``x`` (N, C, T, H, W), class indices ``y`` (N,), names, source."""

    x: Tensor
    y: Tensor
    classes: list[str]
    source: str = ""
    reference: bool = True
    fallback_reason: str = ""
    skipped: list[str] = field(default_factory=list)  # one DataError line per unreadable file

    def __len__(self) -> int:
        return len(self.x)


def motion_path(action: str, frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-frame centre (cx, cy in [-1, 1]), angle (radians) and scale of one ``action``.

    Every class draws its range (start, end) the same way; the class only picks the order, so
    the *set* of poses of ``right`` and ``left`` (or ``rotate-cw`` and ``rotate-ccw``) has the
    same distribution.
    """
    t = np.linspace(0.0, 1.0, frames)  # (T,)
    cx, cy = np.full(frames, rng.uniform(-0.25, 0.25)), np.full(frames, rng.uniform(-0.25, 0.25))
    angle, scale = np.full(frames, rng.uniform(-0.2, 0.2)), np.full(frames, rng.uniform(0.85, 1.1))
    a, b = rng.uniform(-0.45, -0.1), rng.uniform(0.1, 0.45)  # the span a translation covers
    if action in ("right", "left", "up", "down"):
        ramp = a + (b - a) * (t if action in ("right", "down") else 1 - t)  # image y points down
        if action in ("right", "left"):
            cx = ramp
        else:
            cy = ramp
    elif action == "bounce":  # a -> b -> a (or b -> a -> b): out to a wall and back
        tri = 1 - np.abs(2 * t - 1)
        cx = a + (b - a) * (tri if rng.random() < 0.5 else 1 - tri)
    elif action in ("rotate-cw", "rotate-ccw"):
        sweep = rng.uniform(math.pi / 3, math.pi * 2 / 3)
        start = rng.uniform(-0.3, 0.3) - sweep / 2
        angle = start + sweep * (t if action == "rotate-cw" else 1 - t)
    elif action in ("zoom-in", "zoom-out"):
        small, big = rng.uniform(0.5, 0.7), rng.uniform(1.2, 1.45)
        scale = small + (big - small) * (t if action == "zoom-in" else 1 - t)
    else:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(MOTION_CLASSES)}")
    return {"cx": cx, "cy": cy, "angle": angle, "scale": scale}


def render_clip(digit: Tensor, pose: dict[str, np.ndarray], *, size: int) -> Tensor:
    """Draw a 28x28 uint8 ``digit`` at each frame's pose on a black ``size`` canvas: (T, H, W).

    One ``grid_sample`` for all frames: a canvas point p maps to the digit point
    R(-angle) (p - centre) / scale, in pixels.
    """
    side = digit.shape[-1]
    cos, sin = np.cos(pose["angle"]), np.sin(pose["angle"])
    k = size / (side * pose["scale"])  # canvas units -> digit units (normalized coordinates)
    centre = np.stack([pose["cx"], pose["cy"]], 1)  # (T, 2)
    rot = np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1)  # (T, 2, 2) R(-a)
    lin = rot * k[:, None, None]  # (T, 2, 2)
    shift = -np.einsum("tij,tj->ti", lin, centre)  # (T, 2)
    theta = torch.from_numpy(np.concatenate([lin, shift[:, :, None]], 2)).float()  # (T, 2, 3)
    frames = len(theta)
    grid = F.affine_grid(theta, [frames, 1, size, size], align_corners=False)  # (T, H, W, 2)
    src = digit.float().view(1, 1, side, side).expand(frames, 1, side, side)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, 0].round().clamp(0, 255).to(torch.uint8)  # (T, H, W)


def generate_clips(
    digits: Tensor,
    digit_labels: Tensor,
    *,
    n: int,
    kind: ClipKind = "motion",
    spec: ClipSpec = ClipSpec(),
    seed: int = 0,
) -> tuple[Tensor, Tensor, list[str]]:
    """``n`` clips (N, T, H, W) uint8 of digits drawn from ``digits`` (M, 1, 28, 28), labels, classes.

    ``kind="motion"``: the label is the action (:data:`MOTION_CLASSES`, balanced), whatever
    the digit. ``kind="appearance"``: the label is the digit, and the action is a random one.
    """
    rng = np.random.default_rng(seed)
    classes = list(MOTION_CLASSES if kind == "motion" else DIGIT_CLASSES)
    clips = torch.empty(n, spec.frames, spec.size, spec.size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    for i in range(n):
        pick = int(rng.integers(len(digits)))
        action_id = i % len(MOTION_CLASSES) if kind == "motion" else int(rng.integers(9))
        pose = motion_path(MOTION_CLASSES[action_id], spec.frames, rng)
        clips[i] = render_clip(digits[pick, 0], pose, size=spec.size)
        labels[i] = action_id if kind == "motion" else int(digit_labels[pick])
    return clips, labels, classes


# --------------------------------------------------------------------------- video files


def write_video(path: str | Path, frames: np.ndarray | Tensor, *, fps: int = 12) -> Path:
    """Write uint8 frames (T, H, W) gray or (T, H, W, 3) RGB as a lossless H.264 .mp4 (yuv420p).

    Lossless (``qp=0``): x264 was seen to give a few different bytes in about 1 encode of 30
    at CRF 18 even with one thread, and a lossy encode turns that into different pixels and so
    different weights; losslessly, the decoded frames are the encoder's input whatever its bytes,
    up to the deterministic RGB/gray <-> YUV conversion (+-1 level, 4:2:0 chroma).
    """
    av = require_av()
    array = frames.numpy() if isinstance(frames, Tensor) else np.asarray(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "gray" if array.ndim == 3 else "rgb24"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = array.shape[2], array.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "0", "preset": "veryfast", "threads": "1"}
        stream.codec_context.time_base = Fraction(1, fps)
        for index, image in enumerate(array):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
            frame.pts = index  # explicit timestamps: one frame per tick of 1/fps
            container.mux(stream.encode(frame))
        container.mux(stream.encode())  # flush the encoder
    return path


def read_video(
    path: str | Path, *, size: int | None = None, channels: int = 3, frames: int | None = None
) -> Tensor:
    """Decode a video file into uint8 (C, T, H, W); raises :class:`DataError` naming the file.

    Args:
        path: Any container and codec FFmpeg reads (.mp4, .avi, .mov, .mkv, .webm, ...).
        size: Resize every frame to ``size`` x ``size`` (the aspect ratio is not kept).
        channels: 1 (gray) or 3 (RGB).
        frames: Keep this many frames, evenly spaced over the clip (repeats a short clip's
            frames); None keeps all.
    """
    av = require_av()
    from av.video.reformatter import VideoReformatter

    fmt = "gray" if channels == 1 else "rgb24"
    resize = {"width": size, "height": size} if size else {}
    scaler = VideoReformatter()  # one scaler for all frames: 5x faster than frame.to_ndarray
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(
                    f"{path}: no video frames (no video stream); re-export it or remove it"
                )
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1  # tiny clips: threads cost more than they save
            decoded = [
                scaler.reformat(f, format=fmt, **resize).to_ndarray()
                for f in container.decode(stream)
            ]
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as err:
        raise DataError(
            f"{path}: not a readable video ({type(err).__name__}: {' '.join(str(err).split())}); "
            "re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4) or remove it"
        ) from None
    if not decoded:
        raise DataError(f"{path}: the video has zero frames; re-export it or remove it")
    clip = torch.from_numpy(np.stack(decoded))  # (T, H, W) gray or (T, H, W, 3)
    clip = clip.unsqueeze(1) if channels == 1 else clip.permute(0, 3, 1, 2)  # (T, C, H, W)
    if frames is not None:
        keep = torch.linspace(0, len(clip) - 1, frames).round().long()  # (frames,)
        clip = clip[keep]
    return clip.permute(1, 0, 2, 3).contiguous()  # (C, T, H, W)


# ------------------------------------------------------------------------- video folders


def video_files(folder: Path) -> list[Path]:
    """The video files directly in ``folder``, sorted."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
    )


def class_folders(root: Path) -> list[Path]:
    """The class subfolders of ``root`` (hidden ones skipped), sorted by name."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; pass a folder of <class>/<clip>.mp4")
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(found) < 2:
        raise DataError(
            f"{root}: found {len(found)} class folder(s); a video folder needs at least two "
            "subfolders, one per class, each holding that class's clips"
        )
    return found


def load_video_folder(
    root: str | Path,
    *,
    frames: int,
    size: int,
    channels: int = 3,
    classes: Sequence[str] | None = None,
) -> Clips:
    """Every readable clip of ``root/<class>/*.mp4`` as :class:`Clips` (C, T, H, W each).

    An unreadable or zero-frame file is skipped and named in ``skipped`` (one line each, the
    :class:`DataError` message), not fatal; a folder where nothing is readable raises.

    Args:
        root: The folder of class subfolders.
        frames: Frames kept per clip, evenly spaced (see :func:`read_video`).
        size: Frame side after resizing.
        channels: 1 (gray) or 3 (RGB).
        classes: Class names in output order (a test split reuses the training split's).
    """
    root = Path(root)
    folders = class_folders(root)
    names = list(classes) if classes is not None else [p.name for p in folders]
    clips, labels, skipped = [], [], []
    for folder in folders:
        if folder.name not in names:
            raise DataError(
                f"{folder}: class {folder.name!r} is not in the training classes {names}"
            )
        for path in video_files(folder):
            try:
                clips.append(read_video(path, size=size, channels=channels, frames=frames))
            except DataError as err:
                skipped.append(str(err))
                log.warning("%s", err)
                continue
            labels.append(names.index(folder.name))
    if not clips:
        raise DataError(
            f"{root}: no readable clip in {len(folders)} class folders "
            f"({len(skipped)} unreadable); add .mp4/.avi/.mov/.mkv/.webm files"
        )
    source = f"video folder {root} ({len(clips)} clips, {len(names)} classes)"
    return Clips(torch.stack(clips), torch.tensor(labels), names, source, skipped=skipped)


def _split_folders(root: Path) -> dict[str, Path]:
    """``{"train": root/train, "test": root/test}`` when ``root`` has split folders, else
    ``{"all": root}``."""
    splits = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and p.name in SPLITS}
    return splits if "train" in splits else {"all": root}


def scan_video_folder(root: str | Path) -> dict[str, Any]:
    """For ``torchdojo doctor``: clips per split and class, frame counts, every unreadable file."""
    counts: dict[str, dict[str, int]] = {}
    frames: list[int] = []
    problems: list[str] = []
    for split, folder in _split_folders(Path(root)).items():
        counts[split] = {}
        for class_folder in class_folders(folder):
            counts[split][class_folder.name] = 0
            for path in video_files(class_folder):
                try:
                    frames.append(read_video(path, size=16, channels=1).shape[1])
                    counts[split][class_folder.name] += 1
                except DataError as err:
                    problems.append(str(err))
    span = {"min": min(frames), "max": max(frames)} if frames else {}
    return {"class_counts": counts, "frames": span, "problems": problems}


def is_video_folder(path: Path) -> bool:
    """True when ``path``'s class subfolders (or its split folders' ones) hold video files."""
    if not path.is_dir():
        return False
    for folder in _split_folders(path).values():
        subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if any(video_files(p) for p in subdirs[:50]):
            return True
    return False


def write_clip_folder(
    root: Path, clips: Tensor, labels: Tensor, classes: Sequence[str], *, fps: int
) -> None:
    """Write clips (N, T, H, W) as ``root/<class>/<index>.mp4``: the layout of your own data."""
    for i, (clip, label) in enumerate(zip(clips, labels.tolist(), strict=True)):
        write_video(root / classes[label] / f"{i:05d}.mp4", clip, fps=fps)


# ------------------------------------------------------------------- the generated set


@dataclass(frozen=True)
class ActionClipsConfig:
    """What :func:`action_clips` generates (the cache key).

    Args:
        kind: ``"motion"`` (the label is the action) or ``"appearance"`` (the label is the digit).
        train: Training clips (drawn from MNIST's training digits).
        test: Test clips (drawn from MNIST's test digits: digit images never seen in training).
        spec: Frames, size and frame rate.
        seed: Seeds which digit and which pose each clip gets.
        synthetic: Use the synthetic digit twin instead of MNIST (offline smoke runs).
    """

    kind: ClipKind = "motion"
    train: int = 1800
    test: int = 900
    spec: ClipSpec = ClipSpec()
    seed: int = 0
    synthetic: bool = False

    def key(self) -> str:
        """A short hash of every field: the cache folder's name."""
        blob = json.dumps(asdict(self) | {"encoding": "x264 qp 0"}, sort_keys=True).encode()
        return f"{self.kind}-{hashlib.sha256(blob).hexdigest()[:12]}"


def action_clips(
    cfg: ActionClipsConfig, *, root: str | Path | None = None, cache: Path
) -> tuple[Clips, Clips]:
    """Train and test :class:`Clips`: generated, written to ``cache/<key>/<split>/<class>/*.mp4``
    once, and always read back from those files (the path your own clips take)."""
    folder = cache / cfg.key()
    done = folder / "done.json"
    digits_note = ""
    if not done.is_file():
        digits_note = _write_action_clips(cfg, folder, root=root)
        done.write_text(json.dumps({"digits": digits_note}), encoding="utf-8")
    else:
        digits_note = json.loads(done.read_text(encoding="utf-8"))["digits"]
    size, frames = cfg.spec.size, cfg.spec.frames
    names = MOTION_CLASSES if cfg.kind == "motion" else DIGIT_CLASSES
    train, test = (
        load_video_folder(folder / split, frames=frames, size=size, channels=1, classes=names)
        for split in ("train", "test")
    )
    for split, clips in (("train", train), ("test", test)):
        clips.source = (
            f"{len(clips)} generated {cfg.kind} {split} clips ({frames} frames of {size}x{size}, "
            f".mp4 in {folder}) from {digits_note}"
        )
        clips.reference = "real MNIST" in digits_note
    return train, test


def _write_action_clips(cfg: ActionClipsConfig, folder: Path, *, root: str | Path | None) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 24-frame grid_sample is tiny: a second thread only spins
    try:
        return _render_and_write(cfg, folder, root=root)
    finally:
        torch.set_num_threads(threads)


def _render_and_write(cfg: ActionClipsConfig, folder: Path, *, root: str | Path | None) -> str:
    from torchdojo.data import mnist

    for split, n in (("train", cfg.train), ("test", cfg.test)):
        if cfg.synthetic:
            data = mnist.synthetic_digits(split, n=64, seed=cfg.seed)
        else:
            data = mnist.resolve_idx_dataset("MNIST", split, root=root, download=False)
        clips, labels, classes = generate_clips(
            data.x, data.y, n=n, kind=cfg.kind, spec=cfg.spec, seed=cfg.seed * 2 + (split == "test")
        )
        write_clip_folder(folder / split, clips, labels, classes, fps=cfg.spec.fps)
        # Every class gets a folder even when a tiny set leaves it empty: the same classes.
        for name in classes:
            (folder / split / name).mkdir(parents=True, exist_ok=True)
    source = data.source if not cfg.synthetic else "synthetic digits (smoke)"
    return source.replace("test", "train/test") if "real" in source else source


# ----------------------------------------------------------------------- frame sampling


def segment_indices(
    total: int,
    segments: int,
    *,
    train: bool,
    generator: torch.Generator | None = None,
    batch: int = 1,
) -> Tensor:
    """ECO's (and TSN's) sampling: split ``total`` frames into ``segments`` equal parts and take
    one frame from each, at random in training, the centre one in evaluation: (batch, segments).

    Random offsets are a cheap augmentation; the sampled clip still spans the whole action.
    """
    edges = torch.linspace(0, total, segments + 1)  # (segments + 1,)
    start, length = edges[:-1], edges[1:] - edges[:-1]  # (segments,)
    if train:
        offset = torch.rand(batch, segments, generator=generator) * length  # (batch, segments)
    else:
        offset = ((length - 1) / 2).clamp(min=0).expand(batch, segments)
    return (start + offset).floor().long().clamp(0, total - 1)  # (batch, segments)


def sample_frames(clips: Tensor, index: Tensor) -> Tensor:
    """Pick frames ``index`` (B, N) from clips (B, C, T, H, W): (B, C, N, H, W)."""
    rows = torch.arange(len(clips), device=clips.device)[:, None]  # (B, 1)
    picked = clips.transpose(1, 2)[rows, index.to(clips.device)]  # (B, N, C, H, W)
    return picked.transpose(1, 2)  # (B, C, N, H, W)


def clip_stats(clips: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 clips (N, C, T, H, W) scaled to [0, 1]."""
    x = clips[:256].float().div(255).transpose(0, 1).flatten(1)  # (C, n * T * H * W)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).clamp(min=1e-3).tolist())


__all__ = [
    "ActionClipsConfig",
    "ClipSpec",
    "Clips",
    "DIGIT_CLASSES",
    "MOTION_CLASSES",
    "MOTION_FAMILIES",
    "VIDEO_EXTENSIONS",
    "action_clips",
    "clip_stats",
    "generate_clips",
    "is_video_folder",
    "load_video_folder",
    "motion_path",
    "read_video",
    "render_clip",
    "require_av",
    "sample_frames",
    "scan_video_folder",
    "segment_indices",
    "write_clip_folder",
    "write_video",
]
