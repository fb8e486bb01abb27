"""Predict with a finished classification run: images in, top-k classes with probabilities out.

``predict(run_dir, path)`` rebuilds the run's model from ``model.json`` + ``model.safetensors``,
prepares each image the way the run evaluated it, and returns the softmax top-k. A folder is
searched recursively; an unreadable file is reported in ``bad_files``, never fatal. A run
that did not finish is refused (its model is not the trained one). Used by
``torchdojo predict``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2

from torchdojo.data.image_folder import BadFile, describe_error, is_image_file
from torchdojo.data.transforms import eval_transforms, load_image_rgb
from torchdojo.export.card import SMALL_INPUT
from torchdojo.models import ModelSpec, load_bundle
from torchdojo.services.finished import require_finished
from torchdojo.utils import atomic_write_text

# Inputs at least this large were trained on resize + center crop (image folders); smaller
# ones (MNIST 28 px, CIFAR 32 px) on whole images, so those are resized whole. Export's model
# card follows the same rule, so served and local predictions agree.
CROP_MIN_SIZE = SMALL_INPUT


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, most probable first."""

    path: str
    labels: list[str]
    probs: list[float]


@dataclass
class PredictResult:
    """Every prediction, the files that could not be read, and the run's classes."""

    run_dir: str
    classes: list[str]
    predictions: list[Prediction] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)


def image_transform(spec: ModelSpec) -> Callable[[Image.Image], Tensor]:
    """The eval transform of a run's model: RGB image in, normalized (C, H, W) tensor out.

    Grayscale models (``input_shape[0] == 1``) get the image as luminance; inputs under
    ``CROP_MIN_SIZE`` pixels are resized whole, larger ones resized and center-cropped.
    """
    if len(spec.input_shape) != 3:
        raise ValueError(f"model input_shape {spec.input_shape} is not an image (C, H, W)")
    channels, height, width = spec.input_shape
    if channels == 3 and min(height, width) >= CROP_MIN_SIZE and height == width:
        return eval_transforms(image_size=height, mean=spec.mean, std=spec.std)
    steps: list[v2.Transform] = [v2.Grayscale(1)] if channels == 1 else []
    steps += [
        v2.ToImage(),
        v2.Resize((height, width), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(spec.mean), std=list(spec.std)),
    ]
    return v2.Compose(steps)


def image_files(path: str | Path) -> list[Path]:
    """``path`` itself, or every file with an image extension under the folder ``path``."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither an image file nor a folder")
    return sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))


@torch.inference_mode()
def predict(
    run_dir: str | Path, path: str | Path, *, top_k: int = 3, batch_size: int = 32
) -> PredictResult:
    """Top-``top_k`` classes of every image at ``path`` (a file or a folder) for a run's model.

    Args:
        run_dir: A finished classification run folder (holds ``model.json``).
        path: An image file or a folder searched recursively for images.
        top_k: Classes per image (capped at the number of classes).
        batch_size: Images per forward pass.

    Raises:
        FileNotFoundError: No trained model in ``run_dir``, or ``path`` does not exist.
        ValueError: The run's model is not an image classifier, or the run did not finish.
    """
    require_finished(Path(run_dir), "predict")
    model, spec = load_bundle(run_dir)
    if spec.task != "classification" or not spec.classes:
        raise ValueError(f"{run_dir} holds a {spec.task} model; predict needs a classifier")
    transform = image_transform(spec)
    result = PredictResult(str(run_dir), list(spec.classes))
    k = max(1, min(top_k, len(spec.classes)))
    batch: list[tuple[Path, Tensor]] = []
    for file in image_files(path):
        try:
            batch.append((file, transform(load_image_rgb(file))))
        except Exception as exc:  # any decode failure: report it, go on with the rest
            result.bad_files.append(BadFile(str(file), describe_error(exc, file)))
        if len(batch) == batch_size:
            result.predictions += _predict_batch(model, batch, spec.classes, k)
            batch = []
    if batch:
        result.predictions += _predict_batch(model, batch, spec.classes, k)
    return result


def _predict_batch(
    model: torch.nn.Module, batch: list[tuple[Path, Tensor]], classes: Sequence[str], k: int
) -> list[Prediction]:
    x = torch.stack([image for _, image in batch])  # (B, C, H, W)
    probs, index = model(x).softmax(dim=1).topk(k, dim=1)  # each (B, k)
    return [
        Prediction(str(file), [classes[int(i)] for i in idx], [round(float(p), 6) for p in prob])
        for (file, _), prob, idx in zip(batch, probs, index, strict=True)
    ]


def write_predictions(result: PredictResult, path: str | Path) -> Path:
    """Write ``result`` as ``.json`` or ``.csv`` (by suffix); bad files get an ``error`` row."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        doc = {
            "run_dir": result.run_dir,
            "classes": result.classes,
            "predictions": [asdict(p) for p in result.predictions],
            "bad_files": [asdict(b) for b in result.bad_files],
        }
        return atomic_write_text(path, json.dumps(doc, indent=2))
    if path.suffix.lower() != ".csv":
        raise ValueError(f"--output {path}: use a .csv or .json file name")
    k = max((len(p.labels) for p in result.predictions), default=1)
    header = ["path"] + [f"{kind}_{i}" for i in range(1, k + 1) for kind in ("label", "prob")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*header, "error"])
    for p in result.predictions:
        cells = [c for pair in zip(p.labels, p.probs, strict=True) for c in pair]
        writer.writerow([p.path, *cells, *[""] * (2 * k - len(cells)), ""])
    for bad in result.bad_files:
        writer.writerow([bad.path, *[""] * (2 * k), bad.reason])
    return atomic_write_text(path, buffer.getvalue())
