"""Export a finished run: rebuild its model, find real inputs for the parity check, export.

``export_run(run_dir)`` reads ``model.json`` + ``model.safetensors``, takes up to 16 real
images of the run's own evaluation data (the test split of an in-memory dataset, or the image
folder it trained on) for the ONNX Runtime vs PyTorch parity check, and writes the export folder
(model, ``card.json``, ``parity.json``) that ``torchdojo serve`` reads. A run that did not
finish is refused (its model is not the trained one).

A text run exports to ONNX with its tokenizer files (``export_text_run``); its parity check
runs up to 16 test sentences of the run's own data, picked to span short to long.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from torchdojo.data import Normalize, create_dataset
from torchdojo.data.image_folder import image_folder_path
from torchdojo.export import ExportResult, export_model
from torchdojo.models import ModelSpec, load_bundle
from torchdojo.runs.runner import read_run_config
from torchdojo.services.finished import require_finished
from torchdojo.services.predict import TEXT_TASK, image_files, image_transform, load_codec
from torchdojo.utils import data_root

if TYPE_CHECKING:
    from torchdojo.export.dense_exporter import DenseExportResult
    from torchdojo.export.text_exporter import TextExportResult

log = logging.getLogger(__name__)
PARITY_IMAGES = 16
PARITY_TEXTS = 16


def export_run(
    run_dir: str | Path,
    *,
    format: Literal["onnx", "torch-export"] = "onnx",
    out_dir: str | Path | None = None,
) -> tuple[ExportResult | TextExportResult | DenseExportResult, str]:
    """Export the model of ``run_dir``; returns the result and where the parity inputs came from."""
    run_dir = Path(run_dir)
    require_finished(run_dir, "export")
    model, spec = load_bundle(run_dir)
    if spec.task == TEXT_TASK:
        return export_text_run(run_dir, model, spec, format=format, out_dir=out_dir)
    if spec.task in ("detection", "segmentation", "pose"):  # NMS / arg-max stay outside the graph
        from torchdojo.services.export_dense import export_dense_run

        return export_dense_run(run_dir, model, spec, format=format, out_dir=out_dir)
    if spec.task != "classification" or len(spec.input_shape) != 3:
        raise ValueError(
            f"{run_dir}: only image classifiers export for serving "
            f"(task {spec.task!r}, input {spec.input_shape})"
        )
    inputs, source = parity_inputs(run_dir, spec)
    summary = run_dir / "summary.json"
    metrics = json.loads(summary.read_text())["metrics"] if summary.is_file() else None
    c, h, w = spec.input_shape
    result = export_model(
        model,
        out_dir=out_dir or run_dir / "export",
        mean=spec.mean,
        std=spec.std,
        class_names=spec.classes,
        input_size=(c, h, w),
        metrics=metrics,
        format=format,
        parity_inputs=inputs,
    )
    return result, source


def parity_inputs(run_dir: Path, spec: ModelSpec) -> tuple[Tensor | None, str]:
    """Up to 16 real, preprocessed inputs from the run's data, or None (random inputs)."""
    saved: dict[str, Any] = read_run_config(run_dir) if (run_dir / "config.yaml").is_file() else {}
    config, options = saved.get("config", {}), saved.get("options", {})
    try:
        if "dataset" in config:
            test = create_dataset(config["dataset"], "test", root=options.get("data_dir"))
            x = Normalize(tuple(spec.mean), tuple(spec.std))(test.x[:PARITY_IMAGES])
            if list(x.shape[1:]) == spec.input_shape:
                return x, f"{len(x)} images of {test.source}"
        folder = image_folder_path(str(config.get("data", "")), data_root(options.get("data_dir")))
        if folder.is_dir():
            images = _readable_images(folder, spec)
            if images is not None:
                return images, f"{len(images)} images from {folder}"
    except (OSError, ValueError, KeyError) as err:
        log.warning("no real parity inputs (%s); using random ones", err)
    return None, "random inputs (the run's data was not found)"


def _readable_images(folder: Path, spec: ModelSpec) -> Tensor | None:
    """The first ``PARITY_IMAGES`` images of ``folder`` that decode, preprocessed for ``spec``."""
    from torchdojo.data.transforms import load_image_rgb

    transform, images = image_transform(spec), []
    for path in image_files(folder):
        try:
            images.append(transform(load_image_rgb(path)))
        except (OSError, ValueError) as err:  # a broken file: the folder's other images serve
            log.warning("parity inputs: skipping %s (%s)", path, err)
        if len(images) == PARITY_IMAGES:
            break
    return torch.stack(images) if images else None


def export_text_run(
    run_dir: Path,
    model: nn.Module,
    spec: ModelSpec,
    *,
    format: str = "onnx",
    out_dir: str | Path | None = None,
) -> tuple[TextExportResult, str]:
    """Export a text run's model to ONNX with its tokenizer; parity on its own test sentences."""
    from torchdojo.export.text_exporter import export_text_model

    if format != "onnx":
        raise ValueError(
            f"--format {format}: text runs export to onnx only (tokenization stays in Python); "
            "use --format onnx"
        )
    texts, source = parity_texts(run_dir)
    summary = run_dir / "summary.json"
    metrics = json.loads(summary.read_text())["metrics"] if summary.is_file() else None
    result = export_text_model(
        model,
        out_dir=out_dir or run_dir / "export",
        codec=load_codec(run_dir, spec),
        class_names=spec.classes,
        parity_texts=texts,
        metrics=metrics,
    )
    return result, source


def parity_texts(run_dir: Path) -> tuple[list[str] | None, str]:
    """Up to 16 test sentences of the run's data, from shortest to longest, or None."""
    from torchdojo.data.text import load_text_dataset

    saved: dict[str, Any] = read_run_config(run_dir) if (run_dir / "config.yaml").is_file() else {}
    config, options = saved.get("config", {}), saved.get("options", {})
    if "dataset" not in config:
        return None, "fixed example sentences (the run names no dataset)"
    try:
        data_dir = options.get("data_dir")
        splits = load_text_dataset(
            str(config["dataset"]),
            Path(data_dir) if data_dir else None,
            text_column=config.get("text_column") or None,
            label_column=config.get("label_column") or None,
            seed=int(config.get("seed", 0)),
        )
    except (OSError, ValueError) as err:
        log.warning("no real parity sentences (%s); using fixed ones", err)
        return None, "fixed example sentences (the run's data was not found)"
    texts = sorted(set(splits.test_texts), key=lambda t: (len(t), t))
    k = min(PARITY_TEXTS, len(texts))  # evenly spaced from shortest to longest: many lengths
    picked = [texts[round(i * (len(texts) - 1) / max(k - 1, 1))] for i in range(k)]
    return picked, f"{len(picked)} test sentences of {splits.source}"
