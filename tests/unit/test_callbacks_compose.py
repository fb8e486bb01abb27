"""Techniques are callbacks, and together they behave as each one alone predicts.

One run with Freeze (2 frozen epochs of 3) + Mix (MixUp) + EMA + GradientClipping on a plain
Trainer; a recorder watches every step, and each technique's prediction is checked against it:
the frozen body and its BatchNorm statistics stay put, the model is fed the mixer's blends,
the EMA equals the average folded by hand from the per-step weights, validation runs on that
average and hands the raw weights back, and every SGD step has length lr * max_norm.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from torchdojo.engine import (
    EMA,
    BatchMixer,
    Callback,
    Freeze,
    GradientClipping,
    History,
    Loaders,
    Mix,
    StepOutput,
    TensorLoader,
    Trainer,
    TrainerConfig,
)

EPOCHS, FROZEN, STEPS_PER_EPOCH = 3, 2, 6
LR, MAX_NORM, DECAY = 0.5, 0.01, 0.8
State = dict[str, Tensor]


class Net(nn.Module):
    """A conv body with BatchNorm and a linear head (the part Freeze leaves trainable)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (B, 4)
        )
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def snapshot(model: nn.Module) -> State:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class Seen:
    """Everything the recorder saw, in order."""

    initial: State = field(default_factory=dict)
    raw_batches: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    inputs: list[Tensor] = field(default_factory=list)  # what the model was fed in training
    targets: list[Tensor] = field(default_factory=list)  # what the loss was given in training
    body_trains: list[bool] = field(default_factory=list)  # per step
    body_requires_grad: list[bool] = field(default_factory=list)  # per step
    epochs: list[int] = field(default_factory=list)  # per step
    states: list[State] = field(default_factory=list)  # after each step
    raw_back_after_validation: list[bool] = field(default_factory=list)  # per epoch


class Recorder(Callback):
    """Listed first: sees the raw batch before Mix and the state after every step."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def on_fit_start(self, trainer: Trainer) -> None:
        self.seen.initial = snapshot(trainer.unwrapped_model)

    def on_batch_start(self, trainer: Trainer, batch: Any) -> Any:
        model: Net = trainer.unwrapped_model  # type: ignore[assignment]
        self.seen.raw_batches.append((batch[0].clone(), batch[1].clone()))
        self.seen.body_trains.append(model.body.training)
        self.seen.body_requires_grad.append(model.body[0].weight.requires_grad)
        self.seen.epochs.append(trainer.state.epoch)
        return batch

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        self.seen.states.append(snapshot(trainer.unwrapped_model))

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        now, last = snapshot(trainer.unwrapped_model), self.seen.states[-1]
        self.seen.raw_back_after_validation.append(all(torch.equal(now[k], last[k]) for k in now))


def data(n: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()  # (B, 1, 8, 8)
    return x, y


@dataclass
class Run:
    seen: Seen
    ema: EMA
    model: Net
    history: History
    val: tuple[Tensor, Tensor]


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, seen = Net(), Seen()
    ema = EMA(decay=DECAY)

    def loss_fn(logits: Tensor, target: Tensor) -> Tensor:
        if torch.is_grad_enabled():  # training; validation runs in inference mode
            seen.targets.append(target.detach().clone())
        return F.cross_entropy(logits, target)

    def record_input(module: nn.Module, args: tuple[Tensor, ...]) -> None:
        if torch.is_grad_enabled():
            seen.inputs.append(args[0].detach().clone())

    model.register_forward_pre_hook(record_input)
    callbacks = [
        Recorder(seen),
        Mix(BatchMixer(3, mixup_alpha=0.4, cutmix_alpha=0.0)),
        Freeze(FROZEN),
        ema,
        GradientClipping(MAX_NORM),
    ]
    x, y = data(96, seed=0)
    val = data(64, seed=1)
    loaders = Loaders(TensorLoader(x, y, batch_size=16, seed=0), TensorLoader(*val, batch_size=48))
    trainer = Trainer(
        TrainerConfig(epochs=EPOCHS, device="cpu", num_threads=1), callbacks=callbacks
    )
    history = trainer.fit(model, loaders, loss_fn, torch.optim.SGD(model.parameters(), lr=LR))
    yield Run(seen, ema, model, history, val)


def frozen_steps(seen: Seen) -> list[int]:
    return [i for i, epoch in enumerate(seen.epochs) if epoch < FROZEN]


def test_the_run_has_the_expected_shape(run: Run) -> None:
    assert run.seen.epochs == [e for e in range(EPOCHS) for _ in range(STEPS_PER_EPOCH)]
    assert len(run.seen.states) == len(run.seen.inputs) == EPOCHS * STEPS_PER_EPOCH


def test_freeze_flips_requires_grad_and_train_mode_exactly_at_the_boundary(run: Run) -> None:
    # set once per epoch start and kept through every step and validation: no per-step re-freeze
    expected = [epoch >= FROZEN for epoch in run.seen.epochs]
    assert run.seen.body_requires_grad == expected
    assert run.seen.body_trains == expected


def test_frozen_body_and_its_batchnorm_statistics_stay_put(run: Run) -> None:
    seen = run.seen
    body = [k for k in seen.initial if k.startswith("body.")]
    assert {"body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked"} <= set(body)
    for i in frozen_steps(seen):
        for key in body:
            assert torch.equal(seen.states[i][key], seen.initial[key]), (i, key)
    last_frozen = seen.states[frozen_steps(seen)[-1]]
    assert not torch.equal(last_frozen["head.weight"], seen.initial["head.weight"])
    # unfrozen: the body trains and its statistics follow the (mixed) batches
    final = seen.states[-1]
    for key in ("body.0.weight", "body.1.running_mean", "body.1.running_var"):
        assert not torch.equal(final[key], seen.initial[key]), key
    assert int(final["body.1.num_batches_tracked"]) == (EPOCHS - FROZEN) * STEPS_PER_EPOCH


def test_the_model_is_fed_the_mixers_convex_blends(run: Run) -> None:
    seen = run.seen
    for (x, y), fed, soft in zip(seen.raw_batches, seen.inputs, seen.targets, strict=True):
        assert soft.shape == (len(y), 3)  # soft targets reached the loss
        torch.testing.assert_close(soft.sum(1), torch.ones(len(y)))
        differs = (y != y.roll(1, 0)).nonzero()
        lam = soft[int(differs[0]), y[int(differs[0])]]  # the weight of each sample's own class
        assert 0.0 < float(lam) < 1.0
        assert not torch.equal(fed, x)
        torch.testing.assert_close(fed, lam * x + (1 - lam) * x.roll(1, 0))


def test_ema_equals_the_average_folded_by_hand(run: Run) -> None:
    expected = {k: v.clone() for k, v in run.seen.initial.items()}
    for state in run.seen.states:
        for key, value in state.items():
            if value.is_floating_point():
                expected[key] = DECAY * expected[key] + (1 - DECAY) * value
            else:
                expected[key] = value.clone()
    assert run.ema.num_updates == EPOCHS * STEPS_PER_EPOCH
    for key, value in expected.items():
        torch.testing.assert_close(run.ema.shadow[key], value, msg=key)
    assert not torch.allclose(run.ema.shadow["head.weight"], run.model.head.weight)


def test_validation_runs_on_the_ema_and_the_raw_weights_come_back(run: Run) -> None:
    assert run.seen.raw_back_after_validation == [True] * EPOCHS
    x, y = run.val
    shadow, raw = Net(), Net()
    shadow.load_state_dict(run.ema.shadow)
    raw.load_state_dict(run.model.state_dict())
    with torch.no_grad():
        shadow_loss = float(F.cross_entropy(shadow.eval()(x), y))
        raw_loss = float(F.cross_entropy(raw.eval()(x), y))
    assert run.history.last()["val_loss"] == pytest.approx(shadow_loss, rel=1e-5)
    assert raw_loss != pytest.approx(shadow_loss, rel=1e-3)


def test_clipping_bounds_every_sgd_step_to_lr_times_max_norm(run: Run) -> None:
    previous = run.seen.initial
    for state in run.seen.states:
        params = [k for k in state if k.endswith(("weight", "bias"))]  # parameters, not stats
        step = torch.cat([(state[k] - previous[k]).flatten() for k in params])
        assert float(step.norm()) == pytest.approx(LR * MAX_NORM, rel=1e-3)
        previous = state
