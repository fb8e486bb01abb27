"""Export a finished detection or segmentation run to ONNX, with parity on the run's own images.

``export_dense_run`` rebuilds the run's model and hands it to
:func:`torchdojo.export.dense_exporter.export_dense_model`. The parity images are up to 16
images of the folder the run trained on, found from its ``dataset`` setting (``voc:FOLDER``,
``coco:FILE.json``, ``masks:IMAGES,MASKS`` or a bare folder), prepared exactly as ``predict``
and ``serve`` prepare an upload; seeded uniform noise when no such folder is found (a built-in
synthetic dataset). Reached through :func:`torchdojo.services.export.export_run`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from PIL import Image
from torch import Tensor, nn

from torchdojo.export.dense import prepare
from torchdojo.export.dense_exporter import DenseExportResult, export_dense_model
from torchdojo.export.exporter import Exporter
from torchdojo.models import ModelSpec
from torchdojo.runs.runner import read_run_config
from torchdojo.services.predict import image_files
from torchdojo.services.predict_dense import card_of
from torchdojo.utils import data_root

log = logging.getLogger(__name__)
PARITY_IMAGES = 16


def export_dense_run(
    run_dir: Path,
    model: nn.Module,
    spec: ModelSpec,
    *,
    format: str = "onnx",
    out_dir: str | Path | None = None,
    exporter: Exporter = "auto",
) -> tuple[DenseExportResult, str]:
    """Export a dense run's model to ONNX; returns the result and where the parity images came from.

    ``exporter="auto"`` (what ``torchdojo export`` uses) tries dynamo, then TorchScript. Dynamo
    is slow on a detector's decoding (about 30 CPU seconds for SSDlite against 2 for
    TorchScript, measured here): pass ``exporter="torchscript"`` to skip it.

    Raises:
        ValueError: A format other than ONNX, or an export that disagrees with PyTorch.
    """
    if format != "onnx":
        raise ValueError(
            f"--format {format}: detection and segmentation runs export to onnx only "
            "(NMS and the arg-max stay in Python); use --format onnx"
        )
    card = card_of(spec)
    images, source = parity_images(run_dir, card.input_size, card.intensity)
    summary = run_dir / "summary.json"
    metrics = json.loads(summary.read_text())["metrics"] if summary.is_file() else None
    numbers = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, int | float)}
    result = export_dense_model(
        model,
        out_dir=out_dir or run_dir / "export",
        task=card.task,
        class_names=card.class_names,
        input_size=card.input_size,
        parity_inputs=images,
        metrics=numbers,
        score_thresh=card.score_thresh,
        iou_thresh=card.iou_thresh,
        max_detections=card.max_detections,
        skeleton=card.skeleton,
        intensity=card.intensity,
        exporter=exporter,
    )
    return result, source


def parity_images(
    run_dir: Path, input_size: tuple[int, int, int], intensity: str = "percentiles"
) -> tuple[Tensor | None, str]:
    """Up to 16 prepared images of the run's own image folder, or None (random images);
    ``intensity``: the scaling of 16-bit images the model trained on."""
    saved: dict[str, Any] = read_run_config(run_dir) if (run_dir / "config.yaml").is_file() else {}
    config, options = saved.get("config", {}), saved.get("options", {})
    folder = image_folder_of(str(config.get("dataset", "")), options.get("data_dir"))
    if folder is not None:
        images = []
        for path in image_files(folder):
            try:
                with Image.open(path) as opened:
                    opened.load()
                    images.append(opened.copy())
            except OSError as err:  # a broken file: the folder's other images serve
                log.warning("parity images: skipping %s (%s)", path, err)
            if len(images) == PARITY_IMAGES:
                break
        if images:
            return prepare(images, input_size, intensity), f"{len(images)} images from {folder}"
    return None, "random images (the run's image folder was not found)"


def image_folder_of(dataset: str, data_dir: str | None = None) -> Path | None:
    """The folder of images a ``dataset`` setting names, or None (a built-in dataset).

    ``voc:FOLDER`` -> ``FOLDER/JPEGImages`` (or FOLDER), ``coco:FILE.json`` -> the JSON's
    folder, ``masks:IMAGES,MASKS`` -> ``IMAGES``, a bare path -> itself.
    """
    kind, _, rest = dataset.partition(":")
    if not rest or len(kind) == 1:  # no "kind:" prefix (or a Windows drive letter)
        kind, rest = "", dataset
    first = rest.split(",")[0].strip()
    if not first:
        return None
    path = Path(first).expanduser()
    candidates = [path] if path.is_absolute() else [path, data_root(data_dir) / path]
    for candidate in candidates:
        if candidate.is_file():
            candidate = candidate.parent  # a COCO annotation file sits by (or above) its images
        if kind == "voc" and (candidate / "JPEGImages").is_dir():
            return candidate / "JPEGImages"
        if candidate.is_dir():
            return candidate
    return None


__all__ = ["export_dense_run", "image_folder_of", "parity_images"]
