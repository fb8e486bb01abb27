"""diffusion-mnist end to end on tiny synthetic digits: the step learns and repeats bitwise,
and the smoke run's bundle rebuilds into a model that samples images in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from torchdojo.data.mnist import synthetic_digits
from torchdojo.engine import Trainer, TrainerConfig
from torchdojo.models import create_model, load_bundle
from torchdojo.recipes import run_recipe
from torchdojo.runs import RunOptions
from torchdojo.runs.diffusion import diffusion_eval_step, diffusion_step, signed_loaders


def train(epochs: int) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """A width-8 U-Net on 64 synthetic digits, 4 batches an epoch, seeded."""
    train = synthetic_digits("train", n=64, seed=0)
    loaders = signed_loaders(train, train, batch_size=16, seed=0)
    torch.manual_seed(0)
    model = create_model("ddpm-unet-28", width=8, steps=100)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    trainer = Trainer(TrainerConfig(epochs=epochs, device="cpu", num_threads=1, log_every=4))
    history = trainer.fit(
        model, loaders, optimizer=optimizer, step=diffusion_step, eval_step=diffusion_eval_step
    )
    return model, history.records


def test_noise_prediction_step_lowers_the_loss() -> None:
    _, records = train(4)
    first, last = records[0]["val_loss"], records[-1]["val_loss"]
    assert last < 0.8 * first  # fixed t and noise in validation: epochs compare


def test_training_repeats_bitwise() -> None:
    """t and the noise come from the seeded global RNG: the same run gives the same weights."""
    (a, _), (b, _) = train(1), train(1)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("diffusion")
    options = RunOptions(smoke=True, out=str(out), progress=False, threads=1)
    return run_recipe("diffusion-mnist", options).run_dir


def test_bundle_rebuilds_a_sampler_with_its_schedule(smoke_run: Path) -> None:
    run = smoke_run
    model, spec = load_bundle(run)
    assert spec.task == "generation" and spec.kwargs["steps"] == 100  # the smoke schedule
    assert {"beta_start", "beta_end", "width"} <= spec.kwargs.keys()
    images = model.sample(3, generator=torch.Generator().manual_seed(0), steps=4)
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
    plots = {p.name for p in (run / "plots").iterdir()}
    assert {"samples_by_epoch.png", "samples_final.png"} <= plots
    assert (run / "plots" / "samples" / "epoch_001.png").stat().st_size > 100  # the epoch's grid
    assert "samples_by_epoch" in (run / "report.html").read_text(encoding="utf-8")
    assert any((run / "tensorboard").iterdir())
