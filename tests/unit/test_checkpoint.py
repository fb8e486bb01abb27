"""Checkpoints: no pickle, atomic, pruned, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from torchdojo.engine import (
    CheckpointManager,
    Loaders,
    TensorLoader,
    Trainer,
    TrainerConfig,
    load_checkpoint,
    save_checkpoint,
)


def test_round_trip_of_nested_state_without_pickle(tmp_path: Path) -> None:
    state = {
        "a": torch.arange(3.0),
        "nested": {0: {"t": torch.ones(2, 2), "n": 3}, "s": "x"},
        "tup": (1, 2.5, None),
        "lst": [torch.zeros(1), True],
    }
    path = save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(path).state
    assert back["nested"][0]["n"] == 3 and back["nested"]["s"] == "x"
    assert back["tup"] == (1, 2.5, None) and back["lst"][1] is True
    torch.testing.assert_close(back["nested"][0]["t"], torch.ones(2, 2))
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind
    with open(path, "rb") as fh:
        assert b"\x80\x04" not in fh.read(64)  # no pickle protocol header


def test_objects_that_need_pickle_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="without pickle"):
        save_checkpoint(tmp_path / "c.safetensors", {"bad": object()})


def test_keep_last_prunes_and_best_is_kept(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in range(1, 5):
        manager.save({"w": torch.tensor([float(step)])}, step=step, is_best=step == 2)
    assert [p.name for p in manager.step_files()] == [
        "step-00000004.safetensors",
        "step-00000003.safetensors",
    ]
    assert load_checkpoint(tmp_path / "best.safetensors").state["w"].item() == 2.0


def test_truncated_newest_checkpoint_falls_back_with_a_warning(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save({"w": torch.tensor([1.0])}, step=1)
    newest = manager.save({"w": torch.tensor([2.0])}, step=2)
    newest.write_bytes(newest.read_bytes()[:40])
    with pytest.warns(RuntimeWarning, match="step-00000002.safetensors is unreadable"):
        checkpoint = manager.load_latest()
    assert checkpoint is not None and checkpoint.state["w"].item() == 1.0


def _train(
    tmp: Path,
    *,
    epochs: int,
    max_steps: int | None = None,
    resume: Path | None = None,
    checkpoint_every: int = 3,
) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 4, generator=g), torch.randint(0, 3, (200,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=epochs * 7)
    trainer = Trainer(
        TrainerConfig(
            epochs=epochs, max_steps=max_steps, device="cpu", checkpoint_every=checkpoint_every
        ),
        checkpoint_dir=tmp / "ckpt",
    )
    loaders = Loaders(TensorLoader(x, y, batch_size=32, seed=5), TensorLoader(x, y, batch_size=64))
    trainer.fit(model, loaders, nn.CrossEntropyLoss(), opt, sched, resume=resume)
    return model


def test_resume_mid_epoch_is_bitwise_equal(tmp_path: Path) -> None:
    straight = _train(tmp_path / "a", epochs=3)
    _train(tmp_path / "b", epochs=3, max_steps=10)  # stops mid-epoch 2, checkpoint at step 9
    (tmp_path / "b" / "ckpt" / "step-00000010.safetensors").unlink()  # as if killed after step 9
    resumed = _train(tmp_path / "b", epochs=3, resume=tmp_path / "b" / "ckpt")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
