"""Diagnose a recipe's setup before training: layer statistics and one-batch overfitting.

Used by ``torchdojo diagnose RECIPE|RUN_DIR``. The model, the first training batch, the loss
and the optimizer are the recipe's own, built by its ``setup`` (see
:mod:`torchdojo.services.tools`); the check itself is :func:`torchdojo.engine.diagnose.diagnose`.
The pictures and ``diagnosis.json`` go to ``<out>/<recipe>/diagnose-<time>/`` (or
``RUN_DIR/diagnose/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from torchdojo.engine.diagnose import Diagnosis, LossFn, diagnose
from torchdojo.services.tools import ToolRun, peak_learning_rates, tool_run, xy_batches
from torchdojo.utils.io import atomic_write_json

TOOL = "diagnose"
MAX_BATCH = 256  # one batch is enough to see the statistics; larger ones only cost time


@dataclass
class DiagnoseReport:
    """What :func:`diagnose_recipe` found and wrote.

    Args:
        recipe: The recipe's name.
        data_source: The data the setup used.
        batch_size: Examples in the batch that was overfitted.
        lr: The (highest) learning rate the optimizer stepped with.
        note: How the check differs from the recipe's training ("" when it does not).
        diagnosis: The statistics, the loss curve and the problems found.
        files: The files written.
        out_dir: The folder they are in.
    """

    recipe: str
    data_source: str
    batch_size: int
    lr: float
    note: str
    diagnosis: Diagnosis
    files: list[Path]
    out_dir: Path


def diagnose_recipe(
    target: str,
    *,
    out: str | Path = "runs",
    steps: int = 50,
    required_drop: float = 0.9,
    smoke: bool = False,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    lr: float | None = None,
) -> DiagnoseReport:
    """Build ``target``'s setup, diagnose it, and write ``gradients.png``, ``activations.png``
    and ``diagnosis.json`` into the tool's folder.

    The loss on the recipe's first training batch (at most 256 examples) must fall by
    ``required_drop`` in ``steps`` steps of the recipe's optimizer at its peak learning rate
    (with the recipe's loss, less any label smoothing: :func:`without_floor`); linear models (logistic-regression, softmax-iris) cannot always fit a batch exactly: ask
    for less.

    Args:
        target: A recipe name or a run folder.
        out: Root of the run tree (``run``'s ``--out``) for a recipe name.
        steps: Optimizer steps on the one batch.
        required_drop: Share by which the loss must fall (0.9: to a tenth).
        smoke: Start from the recipe's smoke config.
        overrides: ``key=value`` config overrides.
        data_dir: Data root.
        lr: The peak learning rate to use instead of the recipe's (other parameter groups
            scale with it).
    """
    if steps < 2:
        raise ValueError(f"steps={steps}: diagnose needs at least 2 steps")
    if not 0 < required_drop < 1:
        raise ValueError(f"required_drop={required_drop}: must be between 0 and 1")
    if lr is not None and not lr > 0:
        raise ValueError(f"lr={lr}: must be > 0")
    with tool_run(
        target, TOOL, smoke=smoke, overrides=overrides, data_dir=data_dir, out=out
    ) as run:
        x, y = next(xy_batches(run, TOOL))
        x, y = x[:MAX_BATCH], y[:MAX_BATCH]
        used_lr = peak_learning_rates(run.setup.optimizer, lr, scheduler=run.setup.scheduler)
        loss_fn, note = without_floor(run.setup.loss_fn)
        found = diagnose(
            run.setup.model,
            [(x, y)],
            loss_fn,
            run.setup.optimizer,
            steps=steps,
            required_drop=required_drop,
        )
        files = _write(run, found, used_lr, note)
        return DiagnoseReport(
            run.recipe.name, run.ctx.data_source, len(y), used_lr, note, found, files, run.out_dir
        )


def without_floor(loss_fn: LossFn) -> tuple[LossFn, str]:
    """``loss_fn`` without label smoothing, and a note saying so ("" when unchanged).

    Label smoothing puts a floor under the loss (about 0.5 for 10 classes at 0.1), so a
    model that fits the batch perfectly still looks as if it could not overfit it.
    """
    if isinstance(loss_fn, nn.CrossEntropyLoss) and loss_fn.label_smoothing > 0:
        plain = nn.CrossEntropyLoss(
            weight=loss_fn.weight, ignore_index=loss_fn.ignore_index, reduction=loss_fn.reduction
        )
        return plain, f"without the recipe's label smoothing ({loss_fn.label_smoothing:g})"
    return loss_fn, ""


def _write(run: ToolRun, found: Diagnosis, lr: float, note: str) -> list[Path]:
    from torchdojo.viz import save_figure
    from torchdojo.viz.diagnostics import gradient_violin_figure, layer_profile_figure

    name, files = run.recipe.name, []
    weighted = [s for s in found.layers if s.grad_sample is not None]
    if weighted:
        fig = gradient_violin_figure(
            [f"{s.name} ({s.kind})" for s in weighted],
            [s.grad_sample for s in weighted if s.grad_sample is not None],
            title=f"{name}: weight gradients per layer at init",
        )
        files.append(save_figure(fig, run.out_dir / "gradients.png"))
    fig = layer_profile_figure(
        {"at init": [s.act_std for s in found.layers]},
        ylabel="output std",
        title=f"{name}: output std of each layer",
    )
    files.append(save_figure(fig, run.out_dir / "activations.png"))
    report = {"recipe": name, "data": run.ctx.data_source, "lr": lr, "note": note}
    report.update(found.to_dict())
    files.append(atomic_write_json(run.out_dir / "diagnosis.json", report))
    return files


__all__ = ["DiagnoseReport", "diagnose_recipe", "without_floor"]
