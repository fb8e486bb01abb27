"""A GAN recipe's smoke run: repeatable bitwise (same command twice -> identical weights of both
players), a fixed-noise grid per epoch, D's accuracies logged, and a generator bundle that
rebuilds and samples. (Every recipe's smoke run itself is in tests/recipes/test_contract.py.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from torchdojo.models import load_bundle
from torchdojo.recipes import get_recipe
from torchdojo.runs import RunOptions
from torchdojo.runs.context import RunContext
from torchdojo.utils.seed import seed_everything


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The smoke config run twice through the recipe's ``run`` (the runner's report, which
    the contract test covers, is skipped to keep this fast)."""
    recipe = get_recipe("dcgan-mnist")
    options = RunOptions(smoke=True, progress=False, threads=1)
    folders = []
    for name in ("first", "second"):
        run_dir = tmp_path_factory.mktemp(name)
        seed_everything(recipe.smoke.seed)  # as the runner does before the recipe builds
        recipe.run(recipe.smoke, RunContext(recipe, options, run_dir, console=Console(quiet=True)))
        folders.append(run_dir)
    return folders[0], folders[1]


def test_same_command_twice_gives_identical_weights(two_runs: tuple[Path, Path]) -> None:
    first, second = two_runs
    a = load_file(str(first / "model.safetensors"))
    b = load_file(str(second / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"generator {key} differs"
    # the last checkpoint holds both players (and D's weights must match too)
    ca = load_file(str(sorted((first / "checkpoints").glob("*.safetensors"))[-1]))
    cb = load_file(str(sorted((second / "checkpoints").glob("*.safetensors"))[-1]))
    d_keys = [k for k in ca if ".models.D." in k]
    assert d_keys, f"no discriminator weights in the checkpoint: {list(ca)[:5]}"
    for key in ca:
        assert torch.equal(ca[key], cb[key]), f"checkpoint {key} differs"


def test_run_folder_has_grids_accuracies_and_a_generator_bundle(
    two_runs: tuple[Path, Path],
) -> None:
    run_dir = two_runs[0]
    assert (run_dir / "plots" / "samples" / "epoch_001.png").is_file()
    assert (run_dir / "plots" / "samples_by_epoch.png").is_file()
    rows = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert train, "no training rows logged"
    for row in train:
        assert 0.0 <= row["d_acc_real"] <= 1.0 and 0.0 <= row["d_acc_fake"] <= 1.0
        assert row["loss"] == pytest.approx(row["d_loss"] + row["g_loss"], rel=1e-5)
    model, spec = load_bundle(run_dir)
    assert spec.task == "generation" and spec.name == "dcgan-28"
    z_dim = spec.kwargs["z_dim"]
    images = model.generate(torch.randn(3, z_dim))  # type: ignore[operator]
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1.0


def test_with_g_ema_the_bundle_is_the_average_and_the_checkpoint_keeps_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchdojo.runs.generative as generative

    monkeypatch.setattr(generative, "GAN_EMA_WARMUP", 0)  # average from the first step
    recipe = get_recipe("dcgan-mnist")
    cfg = dataclasses.replace(recipe.smoke, ema_decay=0.5)
    options = RunOptions(smoke=True, progress=False, threads=1)
    seed_everything(cfg.seed)
    recipe.run(cfg, RunContext(recipe, options, tmp_path, console=Console(quiet=True)))
    bundle = load_file(str(tmp_path / "model.safetensors"))
    checkpoint = load_file(str(sorted((tmp_path / "checkpoints").glob("*.safetensors"))[-1]))
    shadow = {
        k.split(".EMA.shadow.", 1)[1]: v for k, v in checkpoint.items() if ".EMA.shadow." in k
    }
    raw = {k.split(".models.G.", 1)[1]: v for k, v in checkpoint.items() if ".models.G." in k}
    assert bundle.keys() == shadow.keys() == raw.keys()
    for key in bundle:
        assert torch.equal(bundle[key], shadow[key]), f"the bundle's {key} is not the average"
    assert any(not torch.equal(bundle[k], raw[k]) for k in bundle), "the average equals raw G"


class TinyFeatures(torch.nn.Module):
    """A stand-in for InceptionV3: 8 fixed random projections of the image."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(28 * 28, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.flatten(1))


def test_quality_callback_adds_fid_and_kid_each_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchdojo.models.fid as fid
    from torchdojo.engine import History, Trainer
    from torchdojo.models.gan import DCGANGenerator
    from torchdojo.runs.generative import ToSignedUnit, quality_callback

    monkeypatch.setattr(fid, "InceptionFeatures", TinyFeatures)
    torch.manual_seed(0)
    generator = DCGANGenerator(z_dim=8, width=4).train()
    test_images = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8)
    to_unit = ToSignedUnit(28)
    assert (
        quality_callback(generator, test_images, to_unit, fid_samples=0, classifier="", seed=0)
        is None
    )
    callback = quality_callback(
        generator, test_images, to_unit, fid_samples=32, classifier="", seed=0
    )
    assert callback is not None
    history = History([{"epoch": 0, "train_loss": 1.0}])
    callback.on_epoch_end(Trainer(), history)
    record = history.last()
    assert record["val_inception_fid"] > 0 and "val_inception_kid" in record
    assert generator.training  # put back in training mode after sampling
