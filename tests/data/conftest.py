"""Fixtures that WRITE image folders: a torture folder with every known problem, a flat one."""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

GOOD_SIZE = (48, 32)  # (W, H) of every good image
ROTATED_STORED = (60, 20)  # stored (W, H) of the EXIF-rotated JPEG; shown as 20 x 60


@dataclass
class TortureFolder:
    """A written folder and, per problem kind, the relative paths that have it."""

    root: Path
    expected: dict[str, set[str]] = field(default_factory=dict)


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)


def _noise(seed: int, size: tuple[int, int] = GOOD_SIZE) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = size
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), mode="RGB")


def _jpeg_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _write_good(folder: Path, count: int, ext: str, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        _noise(seed * 100 + i).save(folder / f"good_{i}{ext}")


def _write_odd(root: Path) -> dict[str, set[str]]:
    cats, dogs, birds = root / "train/cats", root / "train/dogs", root / "train/birds"
    _noise(1).convert("CMYK").save(cats / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    _noise(2, ROTATED_STORED).save(cats / "rotated.jpg", exif=exif)
    (cats / "zero.jpg").write_bytes(b"")
    whole = _jpeg_bytes(_noise(3, (64, 64)))
    (cats / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    shutil.copyfile(cats / "good_0.jpg", cats / "copy_of_good_0.jpg")
    deep = np.full((GOOD_SIZE[1], GOOD_SIZE[0]), 32768, dtype=np.uint16)
    Image.fromarray(deep).save(dogs / "deep16.png")
    _noise(4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(dogs / "palette.png")
    rgba = _noise(5).convert("RGBA")
    rgba.putalpha(0)  # fully transparent: composited onto white
    rgba.save(dogs / "rgba.png")
    (dogs / "fake.png").write_text("this is not a png\n")
    (dogs / "notes.txt").write_text("labelling notes\n")
    _noise(6).convert("L").save(birds / "gray.jpg")
    _noise(7).save(birds / "leak.jpg")
    shutil.copyfile(birds / "leak.jpg", root / "val/birds/leak.jpg")
    (root / "train/labels.csv").write_text("file,label\n")
    return {
        "zero_byte": {"train/cats/zero.jpg"},
        "truncated": {"train/cats/truncated.jpg"},
        "disguised": {"train/dogs/fake.png"},
        "non_image": {"train/dogs/notes.txt"},
        "stray": {"train/labels.csv"},
        "CMYK": {"train/cats/cmyk.jpg"},
        "I;16": {"train/dogs/deep16.png"},
        "P": {"train/dogs/palette.png"},
        "RGBA": {"train/dogs/rgba.png"},
        "L": {"train/birds/gray.jpg"},
        "rotated": {"train/cats/rotated.jpg"},
        "duplicate": {"train/cats/good_0.jpg", "train/cats/copy_of_good_0.jpg"},
        "leak": {"train/birds/leak.jpg", "val/birds/leak.jpg"},
    }


@pytest.fixture(scope="session")
def torture_folder(tmp_path_factory: pytest.TempPathFactory) -> TortureFolder:
    """train/val folder, 3 classes, with one file for every problem the doctor knows."""
    root = tmp_path_factory.mktemp("torture")
    for split, count in (("train", 4), ("val", 2)):
        _write_good(root / split / "cats", count, ".jpg", seed=1 if split == "train" else 2)
        _write_good(root / split / "dogs", count, ".png", seed=3 if split == "train" else 4)
        _write_good(root / split / "birds", count - 1, ".jpg", seed=5 if split == "train" else 6)
    expected = _write_odd(root)
    return TortureFolder(root, expected)


@pytest.fixture(scope="session")
def flat_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/<class>/*.png with 10, 20 and 30 tiny images and no split folders."""
    root = tmp_path_factory.mktemp("flat")
    for label, (name, count) in enumerate((("a", 10), ("b", 20), ("c", 30))):
        (root / name).mkdir()
        for i in range(count):
            _noise(1000 * label + i, (8, 8)).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def hymenoptera() -> Path:
    """The real ants/bees folder under $TORCHDOJO_DATA, or skip."""
    env = os.environ.get("TORCHDOJO_DATA")
    if not env:
        pytest.skip("TORCHDOJO_DATA is unset; point it at the shared data folder")
    root = Path(env) / "hymenoptera_data"
    if not root.is_dir():
        pytest.skip(f"{root} is absent; put the hymenoptera_data folder in $TORCHDOJO_DATA")
    return root
