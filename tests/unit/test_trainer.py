"""The Trainer: the loop learns, events fire in order, options do what they say."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from torchdojo.engine import (
    Callback,
    EarlyStopping,
    Loaders,
    NonFiniteLossError,
    StepOutput,
    TensorLoader,
    Trainer,
    TrainerConfig,
)


def blobs(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    return centers[y] + 0.5 * torch.randn(n, 2, generator=g), y


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))


def fit(
    config: TrainerConfig,
    *,
    callbacks: list[Callback] | None = None,
    model: nn.Module | None = None,
    batch_size: int = 32,
    **kwargs: Any,
) -> tuple[Trainer, nn.Module]:
    x, y = blobs()
    model = model or small_model()
    trainer = Trainer(
        config, callbacks=callbacks or [], metrics={"acc": MulticlassAccuracy(3)}, **kwargs
    )
    loaders = Loaders(
        TensorLoader(x, y, batch_size=batch_size, seed=1),
        TensorLoader(x, y, batch_size=128, shuffle=False),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer.fit(model, loaders, nn.CrossEntropyLoss(), opt)
    return trainer, model


def test_loss_falls_and_accuracy_rises_on_separable_blobs() -> None:
    trainer, _ = fit(TrainerConfig(epochs=5, device="cpu"))
    records = trainer.history.records
    assert records[-1]["train_loss"] < 0.5 * records[0]["train_loss"]
    assert records[-1]["val_acc"] > 0.95
    assert trainer.state.step == 5 * 8


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        self.events.append("fit_start")

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.events.append(f"epoch_start:{epoch}")

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        self.events.append("batch" + ("+log" if output.log else ""))

    def on_epoch_end(self, trainer: Trainer, history: Any) -> None:
        self.events.append(f"epoch_end:{history.last()['epoch']}")

    def on_fit_end(self, trainer: Trainer, history: Any) -> None:
        self.events.append("fit_end")


def test_events_fire_in_order_and_logs_come_every_n_steps() -> None:
    rec = Recorder()
    fit(TrainerConfig(epochs=2, device="cpu", log_every=3), callbacks=[rec], batch_size=64)
    # 4 steps an epoch: logs at steps 3 and 6 (every 3rd) and at each epoch's last step (4, 8)
    assert rec.events == [
        "fit_start",
        "epoch_start:0",
        "batch",
        "batch",
        "batch+log",
        "batch+log",
        "epoch_end:0",
        "epoch_start:1",
        "batch",
        "batch+log",
        "batch",
        "batch+log",
        "epoch_end:1",
        "fit_end",
    ]


def test_gradient_accumulation_matches_the_big_batch() -> None:
    cfg = TrainerConfig(epochs=1, device="cpu")
    model_a = nn.Linear(2, 3)
    model_b = nn.Linear(2, 3)
    model_b.load_state_dict(model_a.state_dict())
    _, a = fit(cfg, model=model_a, batch_size=64)
    _, b = fit(TrainerConfig(epochs=1, device="cpu", accumulate=2), model=model_b, batch_size=32)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_grad_clip_bounds_the_update() -> None:
    model = nn.Linear(2, 3)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = blobs(64)
    trainer = Trainer(TrainerConfig(epochs=1, device="cpu", grad_clip=1e-3))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer.fit(model, Loaders(TensorLoader(x * 1e3, y, batch_size=64)), nn.CrossEntropyLoss(), opt)
    step = torch.cat([(p - b).flatten() for p, b in zip(model.parameters(), before, strict=True)])
    assert step.norm() <= 1e-3 + 1e-7


def test_nan_guard_names_the_step_and_the_module() -> None:
    class Blowup(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.log(x - 100.0)  # NaN for every real input here

    model = nn.Sequential(nn.Linear(2, 3), Blowup())
    with pytest.raises(
        NonFiniteLossError,
        match=r"at step 0 .*first module with a non-finite "
        r"output: 1 \(Blowup\).*anomaly mode on backward: Function '\w+' returned nan",
    ):
        fit(TrainerConfig(epochs=1, device="cpu"), model=model)


def test_early_stopping_and_max_steps_and_time_budget() -> None:
    stopper = EarlyStopping("val_loss", mode="min", patience=1, min_delta=10.0)
    trainer, _ = fit(TrainerConfig(epochs=10, device="cpu"), callbacks=[stopper])
    assert len(trainer.history.records) == 2 and "early stopping" in (trainer.stop_reason or "")
    trainer, _ = fit(TrainerConfig(epochs=10, device="cpu", max_steps=5))
    assert trainer.state.step == 5 and len(trainer.history.records) == 1
    trainer, _ = fit(TrainerConfig(epochs=1000, device="cpu", time_budget=0.3))
    assert "time budget" in (trainer.stop_reason or "") and trainer.state.epoch < 1000
    trainer, _ = fit(TrainerConfig(epochs=1000, device="cpu", cpu_budget=0.3))
    assert "CPU budget" in (trainer.stop_reason or "") and trainer.state.epoch < 1000
    assert 0.3 <= trainer.state.train_cpu == trainer.history.last()["train_cpu"]


def test_bf16_autocast_trains_and_fp16_on_cpu_is_refused() -> None:
    trainer, _ = fit(TrainerConfig(epochs=3, device="cpu", precision="bf16"))
    assert trainer.history.last()["val_acc"] > 0.9
    with pytest.raises(ValueError, match="needs CUDA.*bf16"):
        fit(TrainerConfig(epochs=1, device="cpu", precision="16"))


def test_deterministic_mode_is_switched_on_by_a_call() -> None:
    try:
        fit(TrainerConfig(epochs=1, device="cpu", deterministic=True))
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_thread_policy_is_recorded() -> None:
    trainer, _ = fit(TrainerConfig(epochs=1, device="cpu"))
    assert trainer.env["num_threads"] == 1  # a tiny model gets one thread
    trainer, _ = fit(TrainerConfig(epochs=1, device="cpu", num_threads=2))
    assert trainer.env["num_threads"] == 2
    torch.set_num_threads(1)


def test_mean_loss_of_an_empty_meter_is_nan() -> None:
    from torchdojo.engine.trainer import _LossMeter

    assert math.isnan(_LossMeter(torch.device("cpu")).mean())
