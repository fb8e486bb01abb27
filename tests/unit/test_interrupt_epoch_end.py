"""A stop signal that lands after an epoch's last batch but before the epoch is closed.

The loop used to write its checkpoint there with the epoch not yet counted (epoch e, batch 0),
so a resumed run trained epoch e again: one extra epoch of steps ("Tried to step 97 times" from
OneCycleLR). Now the epoch is closed (validated, counted, checkpointed) before the stop.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from torchdojo.engine import Loaders, TensorLoader, Trainer, TrainerConfig, TrainingInterrupted


class SignalAfterLastBatch:
    """A TensorLoader that raises the trainer's stop flag once the given epoch's batches are
    all handed out: exactly where a SIGTERM between the last step and the epoch's end lands."""

    def __init__(self, loader: TensorLoader, epoch: int) -> None:
        self.loader, self.epoch, self.trainer = loader, epoch, None

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)
        self.current = epoch

    def set_start(self, batch_index: int) -> None:
        self.loader.set_start(batch_index)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        yield from self.loader
        if self.trainer is not None and self.current == self.epoch:
            self.trainer._signal = signal.SIGTERM


def _fit(trainer: Trainer, loader: object, resume: Path | None = None) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=3 * 4)
    trainer.fit(model, Loaders(loader), nn.CrossEntropyLoss(), optimizer, scheduler, resume=resume)
    return model


def test_stop_after_the_last_batch_resumes_without_replaying_the_epoch(tmp_path: Path) -> None:
    x, y = torch.randn(32, 4, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 3
    config = TrainerConfig(epochs=3, device="cpu", num_threads=1)
    straight = _fit(Trainer(config), TensorLoader(x, y, batch_size=8, seed=0))

    trainer = Trainer(config, checkpoint_dir=tmp_path)
    loader = SignalAfterLastBatch(TensorLoader(x, y, batch_size=8, seed=0), epoch=1)
    loader.trainer = trainer  # type: ignore[assignment]
    with pytest.raises(TrainingInterrupted) as stopped:
        _fit(trainer, loader)
    assert trainer.state.epoch == 2 and trainer.state.step == 8  # epoch 1 closed and counted
    assert stopped.value.checkpoint is not None

    resumed = _fit(Trainer(config), TensorLoader(x, y, batch_size=8, seed=0), resume=tmp_path)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
