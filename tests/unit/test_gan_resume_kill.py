"""A two-optimizer adversarial step (a tiny GAN) trains on the engine, logs both players' losses,
and a run killed with SIGKILL resumes to weights bitwise equal to an uninterrupted run.

The killed run is a subprocess running this file as a script; the uninterrupted and the resumed
runs run in the test process (one thread each, so the arithmetic is the same).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from torchdojo.engine import (
    Callback,
    Loaders,
    MetricsLogger,
    StepOutput,
    TensorLoader,
    Trainer,
    TrainerConfig,
)

EPOCHS, BATCHES = 6, 8  # 48 steps of 16 points
SLOW = 0.02  # seconds a step sleeps in the killed run: a window to kill it mid-run


def ring(n: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on a noisy unit circle (the real data) and dummy labels."""
    g = torch.Generator().manual_seed(0)
    angle = 2 * torch.pi * torch.rand(n, generator=g)
    x = torch.stack([angle.cos(), angle.sin()], 1) + 0.05 * torch.randn(n, 2, generator=g)
    return x, torch.zeros(n)  # x: (N, 2)


def players() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    # dropout in D: the resumed run must restore the RNG state, not only the weights
    discriminator = nn.Sequential(
        nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Dropout(0.2), nn.Linear(16, 1)
    )
    return {"G": generator, "D": discriminator}


def gan_step(trainer: Trainer, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
    """D on real vs fake, then G to fool D: each player's own backward and optimizer step."""
    real, _ = batch  # (B, 2)
    G, D = trainer.models["G"], trainer.models["D"]  # noqa: N806
    ones, zeros = torch.ones(len(real), 1), torch.zeros(len(real), 1)
    with trainer.autocast():
        fake = G(torch.randn_like(real))  # (B, 2); the noise comes from the global RNG
        d_real = F.binary_cross_entropy_with_logits(D(real), ones)
        d_fake = F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        d_loss = d_real + d_fake
    trainer.backward(d_loss)
    trainer.step_optimizer("D")
    with trainer.autocast():
        g_loss = F.binary_cross_entropy_with_logits(D(fake), ones)
    trainer.backward(g_loss)  # also leaves gradients on D: the engine must not carry them over
    trainer.step_optimizer("G")
    return StepOutput(
        loss=(d_loss + g_loss).detach(),
        batch_size=len(real),
        values={"d_loss": d_loss.detach(), "g_loss": g_loss.detach()},
    )


class Slow(Callback):
    """Sleep after every step (the numbers do not change, the kill gets a window)."""

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        time.sleep(SLOW)


def train(
    run_dir: Path, *, resume: Path | None = None, slow: bool = False
) -> tuple[Trainer, dict[str, nn.Module]]:
    torch.set_num_threads(1)
    models = players()
    optimizers = {
        "G": torch.optim.Adam(models["G"].parameters(), lr=2e-3, betas=(0.5, 0.999)),
        "D": torch.optim.Adam(models["D"].parameters(), lr=2e-3, betas=(0.5, 0.999)),
    }
    config = TrainerConfig(
        epochs=EPOCHS, device="cpu", num_threads=1, log_every=4, checkpoint_every=1, keep_last=3
    )
    callbacks: list[Callback] = [MetricsLogger(run_dir, tensorboard=False)]
    if slow:
        callbacks.append(Slow())
    trainer = Trainer(config, callbacks=callbacks, checkpoint_dir=run_dir / "checkpoints")
    x, y = ring()
    loaders = Loaders(TensorLoader(x, y, batch_size=16, seed=3))
    trainer.fit(models, loaders, optimizer=optimizers, step=gan_step, resume=resume)
    return trainer, models


def assert_bitwise_equal(a: dict[str, nn.Module], b: dict[str, nn.Module]) -> None:
    for name in ("G", "D"):
        sa, sb = a[name].state_dict(), b[name].state_dict()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{name}.{key} differs"


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, nn.Module]]:
    run_dir = tmp_path_factory.mktemp("straight")
    trainer, models = train(run_dir)
    assert trainer.state.step == EPOCHS * BATCHES
    return run_dir, models


def test_gan_step_trains_and_logs_both_losses(
    straight: tuple[Path, dict[str, nn.Module]],
) -> None:
    run_dir, models = straight
    rows = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == list(range(4, EPOCHS * BATCHES + 1, 4))
    for row in train_rows:
        assert isinstance(row["d_loss"], float) and isinstance(row["g_loss"], float)
        assert row["loss"] == pytest.approx(row["d_loss"] + row["g_loss"], rel=1e-5)
    # both players moved away from their initial weights
    initial = players()
    for name in ("G", "D"):
        assert not torch.equal(initial[name][0].weight, models[name][0].weight)
    # G's backward through D left gradients on D; the engine cleared them after the step,
    # as a checkpoint (which holds no gradients) would
    assert all(p.grad is None for m in models.values() for p in m.parameters())


def test_killed_gan_run_resumes_to_identical_weights(
    straight: tuple[Path, dict[str, nn.Module]], tmp_path: Path
) -> None:
    step = random.Random().randint(3, EPOCHS * BATCHES // 2)  # half the run left to kill
    print(f"SIGKILL after the checkpoint of step {step}")
    proc = subprocess.Popen(
        [sys.executable, __file__, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    checkpoint = tmp_path / "checkpoints" / f"step-{step:08d}.safetensors"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        if proc.poll() is not None:
            pytest.fail(f"run ended before step {step}: {proc.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            pytest.fail(f"no checkpoint of step {step} within 120 s")
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    resumed, models = train(tmp_path, resume=tmp_path / "checkpoints")
    assert resumed.resumed_from is not None
    resumed_step = int(resumed.resumed_from.stem.split("-")[1])
    assert step <= resumed_step < EPOCHS * BATCHES, "the kill came after the run finished"
    assert_bitwise_equal(models, straight[1])
    train_steps = [
        json.loads(r)["step"]
        for r in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if '"train"' in r
    ]
    assert train_steps == sorted(set(train_steps)), "metrics.jsonl repeats steps after the resume"


if __name__ == "__main__":  # the run the test kills
    train(Path(sys.argv[1]), slow=True)
