"""Build a recipe's model, a few batches, its loss and optimizer, and diagnose them.

Used by ``torchdojo diagnose RECIPE|RUN_DIR``. Recipes build their models inside ``run``, so
this module knows, per supported recipe, how its config turns into a model and data; the
check itself is :func:`torchdojo.engine.diagnose.diagnose`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from torchdojo.data import ArrayDataset, Normalize, create_dataset
from torchdojo.engine import TensorLoader
from torchdojo.engine.diagnose import Diagnosis, LossFn, diagnose
from torchdojo.models import create_model
from torchdojo.recipes import ConfigError, apply_overrides, get_recipe, parse_overrides
from torchdojo.recipes._fundamentals import configured_deep_mlp, load_tabular
from torchdojo.utils.io import atomic_write_json

Built = tuple[nn.Module, ArrayDataset, LossFn]


@dataclass
class DiagnoseSetup:
    """What :func:`diagnose` needs, built from one recipe's config."""

    recipe: str
    config: Any
    model: nn.Module
    batches: list[tuple[Tensor, Tensor]]
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    data_source: str


def _image_classifier(model_name: str, keys: Sequence[str]) -> Callable[[Any, str | None], Built]:
    def build(cfg: Any, data_dir: str | None) -> Built:
        dataset = getattr(cfg, "dataset", "digits")
        train = create_dataset(dataset, "train", root=data_dir)
        kwargs: dict[str, Any] = {k: getattr(cfg, k) for k in keys}
        kwargs["num_classes"] = len(train.classes)
        if model_name == "mlp":
            kwargs["in_features"] = train.x[0].numel()
        else:
            kwargs["in_channels"] = train.x.shape[1]
        return create_model(model_name, **kwargs), train, nn.CrossEntropyLoss()

    return build


def _deep_mlp(cfg: Any, data_dir: str | None) -> Built:
    train = create_dataset(cfg.dataset, "train", root=data_dir)
    return configured_deep_mlp(cfg, train), train, nn.CrossEntropyLoss()


def _softmax_iris(cfg: Any, data_dir: str | None) -> Built:
    train = load_tabular("iris")[0]
    model = create_model("mlp", in_features=train.x.shape[1], num_classes=3, depth=0)
    return model, train, nn.CrossEntropyLoss()


def _logistic(cfg: Any, data_dir: str | None) -> Built:
    train = load_tabular(cfg.dataset)[0]
    train = ArrayDataset(train.x, train.y.float()[:, None], train.classes, train.source)
    model = create_model("mlp", in_features=train.x.shape[1], num_classes=1, depth=0)
    return model, train, nn.BCEWithLogitsLoss()


BUILDERS: dict[str, Callable[[Any, str | None], Built]] = {
    "mnist-mlp": _image_classifier("mlp", ("width", "depth", "dropout")),
    "digits-mlp": _image_classifier("mlp", ("width", "depth", "dropout")),
    "mnist-cnn": _image_classifier("mnist-cnn", ("width",)),
    "fashion-mnist-cnn": _image_classifier("mnist-cnn", ("width",)),
    "deep-mlp-init": _deep_mlp,
    "softmax-iris": _softmax_iris,
    "logistic-regression": _logistic,
}


def build_setup(
    target: str,
    *,
    smoke: bool = False,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    num_batches: int = 4,
    batch_size: int | None = None,
    lr: float | None = None,
) -> DiagnoseSetup:
    """Model, ``num_batches`` batches, loss and Adam optimizer for recipe or run folder ``target``.

    Args:
        target: A recipe name, or a run folder whose ``config.yaml`` names recipe and config.
        smoke: Start from the recipe's smoke config (tiny offline data).
        overrides: ``key=value`` config overrides, as ``--set`` of ``torchdojo run``.
        data_dir: Data root (default: the run folder's, else ``$TORCHDOJO_DATA``).
        num_batches: Batches to hand over.
        batch_size: Batch size (default: the config's ``batch_size``, at most 256).
        lr: Adam's learning rate (default: the config's ``lr``, else 1e-3).
    """
    name, config, data_dir = _resolve(target, smoke, overrides, data_dir)
    if name not in BUILDERS:
        raise ConfigError(
            f"diagnose does not know how recipe {name!r} builds its model; "
            f"supported: {', '.join(sorted(BUILDERS))}"
        )
    torch.manual_seed(getattr(config, "seed", 0))
    model, train, loss_fn = BUILDERS[name](config, data_dir)
    size = batch_size or min(int(getattr(config, "batch_size", 64)), 256)
    normalize = Normalize(train.mean, train.std) if train.x.dtype == torch.uint8 else None
    loader = TensorLoader(train.x, train.y, batch_size=size, seed=0, transform=normalize)
    batches = [batch for _, batch in zip(range(num_batches), loader, strict=False)]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr or float(getattr(config, "lr", 1e-3)))
    return DiagnoseSetup(name, config, model, batches, loss_fn, optimizer, train.source)


def _resolve(
    target: str, smoke: bool, overrides: Sequence[str], data_dir: str | None
) -> tuple[str, Any, str | None]:
    folder = Path(target)
    if not (folder / "config.yaml").is_file():
        recipe = get_recipe(target)
        config = recipe.smoke if smoke else recipe.config()
        return target, apply_overrides(config, parse_overrides(overrides)), data_dir
    saved = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    recipe = get_recipe(saved["recipe"])
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()}
    config = apply_overrides(recipe.config(), values)
    data_dir = data_dir or saved.get("options", {}).get("data_dir")
    return recipe.name, apply_overrides(config, parse_overrides(overrides)), data_dir


def diagnose_recipe(
    target: str,
    *,
    out: str | Path,
    steps: int = 50,
    required_drop: float = 0.9,
    smoke: bool = False,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    lr: float | None = None,
) -> tuple[DiagnoseSetup, Diagnosis, list[Path]]:
    """Build ``target``'s setup, diagnose it, write ``gradients.png``, ``activations.png``
    and ``diagnosis.json`` into ``out``; returns the setup, the diagnosis and the files.

    The loss on one batch must fall by ``required_drop`` in ``steps`` steps; linear models
    (logistic-regression, softmax-iris) cannot always fit a batch exactly: ask for less."""
    from torchdojo.viz import save_figure
    from torchdojo.viz.diagnostics import gradient_violin_figure, layer_profile_figure

    setup = build_setup(target, smoke=smoke, overrides=overrides, data_dir=data_dir, lr=lr)
    found = diagnose(
        setup.model,
        setup.batches,
        setup.loss_fn,
        setup.optimizer,
        steps=steps,
        required_drop=required_drop,
    )
    out = Path(out)
    weighted = [s for s in found.layers if s.grad_sample is not None]
    files = []
    if weighted:
        fig = gradient_violin_figure(
            [f"{s.name} ({s.kind})" for s in weighted],
            [s.grad_sample for s in weighted if s.grad_sample is not None],
            title=f"{setup.recipe}: weight gradients per layer at init",
        )
        files.append(save_figure(fig, out / "gradients.png"))
    fig = layer_profile_figure(
        {"at init": [s.act_std for s in found.layers]},
        ylabel="output std",
        title=f"{setup.recipe}: output std of each layer",
    )
    files.append(save_figure(fig, out / "activations.png"))
    report = {"recipe": setup.recipe, "data": setup.data_source, **found.to_dict()}
    files.append(atomic_write_json(out / "diagnosis.json", report))
    return setup, found, files
