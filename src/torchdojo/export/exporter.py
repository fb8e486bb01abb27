"""Export a trained image classifier to ONNX or ``torch.export``, with a card and a parity check.

The ONNX path uses the dynamo exporter (``torch.onnx.export(dynamo=True)``, the default since
torch 2.9) with a dynamic batch dimension, and falls back to the deprecated TorchScript exporter
with ``dynamic_axes`` only when the dynamo exporter cannot capture the model. The card records
which one wrote the file. Taught in the deployment lesson; the server in ``torchdojo.serve``
loads the folder this writes.
"""

from __future__ import annotations

import copy
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from torchdojo.export.card import (
    CARD_FILE,
    ONNX_FILE,
    PARITY_FILE,
    PT2_FILE,
    ModelCard,
    default_resize_size,
)
from torchdojo.export.predictor import OnnxPredictor, softmax
from torchdojo.utils import atomic_write_json

logger = logging.getLogger(__name__)

ExportFormat = Literal["onnx", "torch-export"]
Exporter = Literal["auto", "dynamo", "torchscript"]

DEFAULT_OPSET = 18  # the dynamo exporter's native opset; older opsets go through a converter
TORCHSCRIPT_OPSET = 17
PARITY_BATCH = 4  # random parity inputs when the caller gives none
MAX_BATCH = 65_536


@dataclass(frozen=True)
class ParityReport:
    """ONNX Runtime (or the saved ``torch.export`` program) against eager PyTorch.

    Args:
        batch_sizes: Batch sizes run through the exported model; 1 and N prove a dynamic batch.
        max_abs_diff_logits: Largest absolute difference of logits over all batches.
        max_abs_diff_probs: Largest absolute difference of softmax probabilities.
        top1_agreement: Fraction of inputs whose arg-max class agrees.
        atol_logits: Tolerance on the logits difference.
        atol_probs: Tolerance on the probability difference.
        passed: All differences within tolerance and every top-1 class agrees.
    """

    batch_sizes: tuple[int, ...]
    max_abs_diff_logits: float
    max_abs_diff_probs: float
    top1_agreement: float
    atol_logits: float
    atol_probs: float
    passed: bool


@dataclass(frozen=True)
class ExportResult:
    """What ``export_model`` wrote."""

    out_dir: Path
    model_path: Path
    card: ModelCard
    parity: ParityReport


def export_model(
    model: nn.Module,
    *,
    out_dir: str | Path,
    mean: Sequence[float],
    std: Sequence[float],
    class_names: Sequence[str],
    input_size: tuple[int, int, int] = (3, 224, 224),
    metrics: dict[str, float] | None = None,
    format: ExportFormat = "onnx",
    exporter: Exporter = "auto",
    parity_inputs: Tensor | None = None,
    opset: int = DEFAULT_OPSET,
    atol_probs: float = 1e-4,
) -> ExportResult:
    """Export ``model`` with a dynamic batch dimension, then write ``card.json`` and ``parity.json``.

    Args:
        model: An image classifier mapping ``(B, C, H, W)`` to logits ``(B, num_classes)``.
        out_dir: Folder to write ``model.onnx`` / ``model.pt2``, ``card.json``, ``parity.json``.
        mean: Per-channel normalization mean (after scaling pixels to [0, 1]).
        std: Per-channel normalization standard deviation.
        class_names: Label of each output index.
        input_size: ``(C, H, W)`` of one input.
        metrics: Measured metrics to record in the card.
        format: ``"onnx"`` (served by ``torchdojo.serve``) or ``"torch-export"`` (``model.pt2``).
        exporter: ONNX only: ``"auto"`` tries dynamo then TorchScript; or force one of them.
        parity_inputs: Inputs ``(N, C, H, W)`` for the parity check; random ones if ``None``.
        opset: ONNX opset to ask for.
        atol_probs: Tolerance on probabilities; logits get ``100 * atol_probs``.

    Raises:
        ValueError: Bad arguments, a known export blocker (the message says the fix), or
            outputs of the exported model that disagree with PyTorch.
    """
    _check_args(input_size=input_size, mean=mean, std=std, class_names=class_names, format=format)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()
    inputs = _parity_inputs(parity_inputs, input_size)
    example = (
        inputs[:2] if len(inputs) >= 2 else inputs.repeat(2, 1, 1, 1)
    )  # batch 2 stays symbolic
    if format == "onnx":
        model_path = out / ONNX_FILE
        used, graph = write_onnx(model, (example,), model_path, exporter, opset)
        _check_dynamic_batch(graph, model=model, example=example)
        graph_opset = _graph_opset(graph)
    else:
        model_path, used, graph_opset = (
            _write_pt2(model, example, out / PT2_FILE),
            "torch.export",
            None,
        )
    card = _make_card(
        model_path=model_path,
        input_size=input_size,
        mean=mean,
        std=std,
        class_names=class_names,
        metrics=metrics,
        format=format,
        exporter=used,
        opset=graph_opset,
    )
    atomic_write_json(out / CARD_FILE, card.to_dict())
    parity = check_parity(model, out, card, inputs, atol_probs=atol_probs)
    atomic_write_json(out / PARITY_FILE, asdict(parity))
    if not parity.passed:
        raise ValueError(
            f"exported model disagrees with PyTorch (see {out / PARITY_FILE}): max |dlogits|="
            f"{parity.max_abs_diff_logits:.2e}, top-1 agreement={parity.top1_agreement:.3f}; "
            "check for ops that behave differently in eval mode or a batch-dependent forward"
        )
    logger.info("exported %s with %s to %s", type(model).__name__, used, model_path)
    return ExportResult(out_dir=out, model_path=model_path, card=card, parity=parity)


def _check_args(
    *,
    input_size: tuple[int, int, int],
    mean: Sequence[float],
    std: Sequence[float],
    class_names: Sequence[str],
    format: str,
) -> None:
    if format not in ("onnx", "torch-export"):
        raise ValueError(f'format must be "onnx" or "torch-export", got {format!r}')
    if len(input_size) != 3:  # (C, H, W)
        raise ValueError(f"input_size must be (C, H, W), got {input_size}")
    if len(mean) != input_size[0] or len(std) != input_size[0]:
        raise ValueError(
            f"mean and std need one value per input channel ({input_size[0]}), "
            f"got {len(mean)} and {len(std)}"
        )
    if not class_names:
        raise ValueError("class_names is empty; pass the label of each output index")


def _parity_inputs(inputs: Tensor | None, input_size: tuple[int, int, int]) -> Tensor:
    if inputs is None:
        generator = torch.Generator().manual_seed(0)
        return torch.randn((PARITY_BATCH, *input_size), generator=generator)
    if inputs.ndim != 4 or tuple(inputs.shape[1:]) != tuple(input_size):  # (N, C, H, W)
        raise ValueError(
            f"parity_inputs must have shape (N, {', '.join(map(str, input_size))}), "
            f"got {tuple(inputs.shape)}"
        )
    return inputs.detach().float().cpu()


# ---------------------------------------------------------------------------------------------
# Writing the model file


@dataclass(frozen=True)
class GraphSignature:
    """The names of an exported graph's inputs and outputs and their dynamic axes.

    ``axes`` maps a tensor name to ``{axis: dim name}``; ``max_sizes`` bounds a dim name for the
    dynamo exporter (``MAX_BATCH`` when absent). The default is an image classifier's:
    ``input (B, C, H, W) -> logits (B, C)`` with a dynamic batch.
    """

    inputs: tuple[str, ...] = ("input",)
    outputs: tuple[str, ...] = ("logits",)
    axes: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = (
        ("input", ((0, "batch"),)),
        ("logits", ((0, "batch"),)),
    )
    max_sizes: tuple[tuple[str, int], ...] = ()

    def axes_of(self, name: str) -> dict[int, str]:
        """``{axis: dim name}`` of tensor ``name`` (empty when it has no dynamic axis)."""
        return dict(dict(self.axes).get(name, ()))


def write_onnx(
    model: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    exporter: Exporter,
    opset: int,
    signature: GraphSignature = GraphSignature(),  # noqa: B008 (frozen, immutable)
) -> tuple[str, onnx.ModelProto]:
    """Export ``model`` on ``example`` to ``path``: dynamo first (``"auto"``), TorchScript as the
    fallback; the exporter used and the graph. A known blocker raises a ValueError saying the fix."""
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise ValueError(f'exporter must be "auto", "dynamo" or "torchscript", got {exporter!r}')
    used = "torchscript" if exporter == "torchscript" else "dynamo"
    try:
        if used == "dynamo":
            _export_dynamo(model, example, path, opset, signature)
        else:
            _export_torchscript(model, example, path, min(opset, TORCHSCRIPT_OPSET), signature)
    except Exception as error:  # the exporters raise many types
        if exporter != "auto" or _is_data_dependent(error):
            raise ValueError(explain_export_error(error, model=model, exporter=used)) from error
        logger.warning(
            "dynamo exporter failed (%s); falling back to TorchScript", _first_line(error)
        )
        used = "torchscript"
        try:
            _export_torchscript(model, example, path, min(opset, TORCHSCRIPT_OPSET), signature)
        except Exception as second:
            raise ValueError(explain_export_error(second, model=model, exporter=used)) from error
    return used, onnx.load(str(path), load_external_data=False)


def _export_dynamo(
    model: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    opset: int,
    signature: GraphSignature,
) -> None:
    bounds = dict(signature.max_sizes)
    names = {n for name in signature.inputs for n in signature.axes_of(name).values()}
    dims = {n: torch.export.Dim(n, min=1, max=bounds.get(n, MAX_BATCH)) for n in sorted(names)}
    shapes = tuple(
        {axis: dims[n] for axis, n in signature.axes_of(name).items()} for name in signature.inputs
    )
    with warnings.catch_warnings():
        # inputs that share dims (ids and mask) are noted once per input
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints")
        # nn.LSTM/GRU inside torch.export warn about torch internals, not about the model
        warnings.filterwarnings("ignore", message=".*_flat_weights.*assigned during export")
        warnings.filterwarnings("ignore", message="_check_is_size will be removed")
        torch.onnx.export(
            model,
            example,
            str(path),
            dynamo=True,
            input_names=list(signature.inputs),
            output_names=list(signature.outputs),
            dynamic_shapes=shapes,
            opset_version=opset,
            external_data=False,
            verbose=False,
        )


def _export_torchscript(
    model: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    opset: int,
    signature: GraphSignature,
) -> None:
    names = (*signature.inputs, *signature.outputs)
    axes = {name: signature.axes_of(name) for name in names if signature.axes_of(name)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter is deprecated; tracer warnings
        torch.onnx.export(
            model,
            example,
            str(path),
            dynamo=False,
            input_names=list(signature.inputs),
            output_names=list(signature.outputs),
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
        )


def _write_pt2(model: nn.Module, example: Tensor, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    try:
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    except Exception as error:
        raise ValueError(
            explain_export_error(error, model=model, exporter="torch.export")
        ) from error
    torch.export.save(program, str(path))
    return path


def _check_dynamic_batch(graph: onnx.ModelProto, *, model: nn.Module, example: Tensor) -> None:
    dim = graph.graph.input[0].type.tensor_type.shape.dim[0]
    if not dim.dim_param:
        raise ValueError(
            f"the exported {type(model).__name__} has a fixed batch size {dim.dim_value} "
            f"(the example batch was {len(example)}): the forward pass bakes the batch size "
            "into a shape, e.g. x.view(2, -1); write x.flatten(1) or x.view(x.shape[0], -1)"
        )


def _graph_opset(graph: onnx.ModelProto) -> int:
    return next(int(op.version) for op in graph.opset_import if op.domain in ("", "ai.onnx"))


# ---------------------------------------------------------------------------------------------
# Known blockers, rephrased with the fix

_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"adaptive_avg_pool2d.*not factor", re.S),
        "AdaptiveAvgPool2d's output size does not divide its input feature map, which the "
        "TorchScript ONNX exporter cannot express. Fix: pick an input_size whose feature map is "
        "a multiple of the pool's output size, use AdaptiveAvgPool2d(1), or export with "
        'exporter="dynamo"',
    ),
    (
        re.compile(r"GuardOnDataDependentSymNode|data-dependent", re.S),
        "the forward pass branches on tensor values (e.g. `if x.sum() > 0:`), which a graph "
        "cannot capture. Fix: compute both branches and pick with torch.where, or use torch.cond",
    ),
    (
        re.compile(r"Constraints violated|specialized to be a constant|marked as dynamic", re.S),
        "the forward pass fixes the batch size (e.g. x.view(2, -1)). Fix: write x.flatten(1) "
        "or x.view(x.shape[0], -1)",
    ),
    (
        re.compile(r"Unsupported: ONNX export of operator (\S+)|no symbolic function", re.S),
        "an operator has no ONNX translation in this exporter. Fix: try the other exporter "
        '(exporter="dynamo" or "torchscript"), a newer opset, or replace the operator',
    ),
)


def _is_data_dependent(error: BaseException) -> bool:
    return "GuardOnDataDependentSymNode" in _messages(error)


def _messages(error: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(parts) < 8:  # cause chains are short
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def explain_export_error(error: BaseException, *, model: nn.Module, exporter: str) -> str:
    """Turn an exporter's exception into a message that names the blocker and its fix."""
    text = _messages(error)
    hint = next((hint for pattern, hint in _HINTS if pattern.search(text)), None)
    name = type(model).__name__
    if hint is None:
        hint = "see the exporter's message below; https://pytorch.org/docs/stable/onnx.html"
    return f"cannot export {name} with the {exporter} exporter: {hint}.\nExporter said: {_first_line(error)}"


# ---------------------------------------------------------------------------------------------
# Card and parity


def _make_card(
    *,
    model_path: Path,
    input_size: tuple[int, int, int],
    mean: Sequence[float],
    std: Sequence[float],
    class_names: Sequence[str],
    metrics: dict[str, float] | None,
    format: str,
    exporter: str,
    opset: int | None,
) -> ModelCard:
    return ModelCard(
        input_size=(int(input_size[0]), int(input_size[1]), int(input_size[2])),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        class_names=tuple(str(v) for v in class_names),
        model_file=model_path.name,
        format=format,
        exporter=exporter,
        resize_size=default_resize_size(input_size),
        opset=opset,
        metrics={k: float(v) for k, v in (metrics or {}).items()},
        versions=_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _versions() -> dict[str, str]:
    versions: dict[str, str] = {"torch": str(torch.__version__)}
    for package in ("onnx", "onnxruntime", "onnxscript"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def check_parity(
    model: nn.Module, export_dir: Path, card: ModelCard, inputs: Tensor, *, atol_probs: float
) -> ParityReport:
    """Compare the exported model with eager ``model`` on ``inputs[:1]`` and on all of ``inputs``.

    Args:
        model: The eager model, in eval mode.
        export_dir: Folder holding the exported file and its card.
        card: The card of the export.
        inputs: ``(N, C, H, W)`` inputs.
        atol_probs: Tolerance on probabilities; logits get ``100 * atol_probs``.
    """
    run = _exported_runner(export_dir, card)
    batches = [inputs[:1], inputs] if len(inputs) > 1 else [inputs]
    diffs_logits, diffs_probs, agree = [], [], []
    for x in batches:
        with torch.inference_mode():
            expected = model(x).float().numpy()  # (B, num_classes)
        got = run(x)
        diffs_logits.append(float(np.abs(got - expected).max()))
        diffs_probs.append(float(np.abs(softmax(got) - softmax(expected)).max()))
        agree.append(got.argmax(axis=1) == expected.argmax(axis=1))
    agreement = float(np.concatenate(agree).mean())
    atol_logits = 100 * atol_probs
    passed = (
        max(diffs_probs) <= atol_probs and max(diffs_logits) <= atol_logits and agreement == 1.0
    )
    return ParityReport(
        batch_sizes=tuple(len(x) for x in batches),
        max_abs_diff_logits=max(diffs_logits),
        max_abs_diff_probs=max(diffs_probs),
        top1_agreement=agreement,
        atol_logits=atol_logits,
        atol_probs=atol_probs,
        passed=passed,
    )


def _exported_runner(export_dir: Path, card: ModelCard) -> Callable[[Tensor], np.ndarray]:
    if card.format == "onnx":
        predictor = OnnxPredictor(export_dir, threads=1)
        return lambda x: predictor.logits(x.numpy())
    program = torch.export.load(str(export_dir / card.model_file))
    module = program.module()

    def run(x: Tensor) -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(module(x).float().numpy())

    return run
