"""image-folder recipe: smoke run, bad files, discriminative LRs, freezing, other backbones, resume."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import load_file, save_file
from torch import nn

from torchdojo.data.image_folder import write_shapes_folder
from torchdojo.engine import (
    Callback,
    Freeze,
    History,
    Loaders,
    TensorLoader,
    Trainer,
    TrainerConfig,
)
from torchdojo.engine.loader import BalancedSampler
from torchdojo.engine.transfer import classifier_name, one_cycle, param_groups, two_phase_schedule
from torchdojo.models import load_bundle
from torchdojo.models.hub import tv_weights_path
from torchdojo.recipes import ConfigError, RunOptions, run_recipe
from torchdojo.services.export import parity_inputs


def _run(tmp_path: Path, *overrides: str, **options: object) -> object:
    opts = RunOptions(smoke=True, out=str(tmp_path / "runs"), progress=False, overrides=overrides)
    return run_recipe("image-folder", dataclasses.replace(opts, **options))


def _corrupt_folder(root: Path, *, bad: int) -> Path:
    """Shapes in train/val splits, ``bad`` non-images in train and one truncated PNG in val."""
    write_shapes_folder(root / "all", per_class=10, size=48)
    for split, picks in (("train", range(7)), ("val", range(7, 10))):
        for name in ("circles", "squares"):
            (root / split / name).mkdir(parents=True)
            for i in picks:
                src = root / "all" / name / f"{name}_{i:02d}.png"
                src.rename(root / split / name / src.name)
    for i in range(bad):
        (root / "train" / "circles" / f"broken_{i}.jpg").write_bytes(b"this is not a jpeg")
    whole = (root / "val" / "squares" / "squares_07.png").read_bytes()
    (root / "val" / "squares" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    return root


def test_smoke_run_writes_model_report_and_figures(tmp_path: Path) -> None:
    result = _run(tmp_path)
    metrics = result.metrics  # type: ignore[attr-defined]
    run_dir: Path = result.run_dir  # type: ignore[attr-defined]
    assert all(math.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["val_acc"] <= 1.0
    assert json.loads((run_dir / "bad_files.json").read_text()) == []
    for name in ("confusion_matrix", "most_confused", "top_losses", "grad_cam"):
        assert (run_dir / "plots" / f"{name}.png").stat().st_size > 1000
        assert f"{name}.png" in (run_dir / "report.html").read_text()
    model, spec = load_bundle(run_dir)  # rebuilt from the name + num_classes, no weights kwarg
    assert spec.name == "timm:test_efficientnet" and spec.kwargs == {"num_classes": 2}
    assert spec.classes == ["circles", "squares"] and spec.input_shape == [3, 64, 64]
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 2)


def test_too_many_bad_files_stop_with_the_doctor_hint(tmp_path: Path) -> None:
    folder = _corrupt_folder(tmp_path / "photos", bad=5)
    with pytest.raises(ConfigError, match=r"torchdojo doctor .*photos") as info:
        _run(tmp_path, f"data={folder}", "max_bad_fraction=0.1")
    assert "5 of 26 image files" in str(info.value)
    # a bad input stops the run before its first checkpoint: no half-made run folder stays
    assert not list((tmp_path / "runs" / "image-folder").glob("*"))


def test_corrupt_and_truncated_files_are_skipped_and_listed(tmp_path: Path) -> None:
    folder = _corrupt_folder(tmp_path / "photos", bad=1)
    result = _run(tmp_path, f"data={folder}", "max_bad_fraction=0.1", "balance=weights")
    listed = json.loads((result.run_dir / "bad_files.json").read_text())  # type: ignore[attr-defined]
    reasons = {Path(item["path"]).name: item["reason"] for item in listed}
    assert reasons["broken_0.jpg"].startswith("not an image")
    assert reasons["truncated.png"].startswith(("truncated", "corrupt"))  # failed at load time
    assert math.isfinite(result.metrics["val_loss"])  # type: ignore[attr-defined]


def test_export_checks_parity_on_the_folders_readable_images(tmp_path: Path) -> None:
    folder = _corrupt_folder(tmp_path / "photos", bad=1)
    (folder / "train" / "circles" / "empty.png").write_bytes(b"")
    result = _run(tmp_path, f"data={folder}", "max_bad_fraction=0.2")
    inputs, source = parity_inputs(result.run_dir, load_bundle(result.run_dir)[1])  # type: ignore[attr-defined]
    assert inputs is not None and source == f"16 images from {folder}"
    assert inputs.shape == (16, 3, 64, 64) and torch.isfinite(inputs).all()
    reasons = {
        Path(b["path"]).name: b["reason"]
        for b in json.loads((result.run_dir / "bad_files.json").read_text())
    }  # type: ignore[attr-defined]
    assert reasons["empty.png"] == "zero-byte file"


def test_balanced_sampler_evens_classes_and_replays_an_epoch() -> None:
    labels = [0] * 90 + [1] * 10
    sampler = BalancedSampler(labels, seed=3)
    sampler.set_epoch(2)
    draws = list(sampler)
    share = sum(labels[i] for i in draws) / len(draws)
    assert len(draws) == 100 and 0.35 < share < 0.65  # 10 % of the files, about half the draws
    sampler.set_epoch(2)
    sampler.set_start(40)
    assert list(sampler) == draws[40:]  # a resumed epoch continues where it stopped
    sampler.set_epoch(3)
    assert list(sampler) != draws


def test_discriminative_lr_groups_cover_the_model_stem_low_head_high() -> None:
    model = torchvision.models.resnet18(num_classes=2)
    groups = param_groups(model, lr=1e-3, lr_mult=100.0, num_groups=3)
    assert [g["name"] for g in groups] == ["body0", "body1", "head"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-5, 1e-4, 1e-3])
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # each exactly once
    assert groups[2]["params"] == [model.fc.weight, model.fc.bias]
    assert groups[0]["params"][0] is model.conv1.weight
    assert any(p is model.layer4[1].conv2.weight for p in groups[1]["params"])
    mobilenet = torchvision.models.mobilenet_v2(num_classes=2)
    assert classifier_name(mobilenet) == "classifier.1"
    assert len(param_groups(mobilenet, lr=1.0, num_groups=4)) == 4


def test_schedule_trains_only_the_head_first_then_every_group() -> None:
    weights = [nn.Parameter(torch.zeros(1)) for _ in range(3)]
    optimizer = torch.optim.SGD(
        [{"params": [w], "lr": lr} for w, lr in zip(weights, (1e-5, 1e-4, 1e-3), strict=True)]
    )
    schedule = two_phase_schedule(
        optimizer, frozen_steps=4, unfrozen_steps=8, frozen_scale=[0.0, 0.0, 2.0]
    )
    lrs = []
    for _ in range(12):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    assert all(row[0] == 0.0 and row[1] == 0.0 for row in lrs[:4])
    assert max(row[2] for row in lrs[:4]) == pytest.approx(2e-3)  # one cycle on the head
    assert max(row[0] for row in lrs[4:]) == pytest.approx(1e-5 * one_cycle(2 / 8))
    assert lrs[4][2] < lrs[6][2]  # the second cycle warms up again


@pytest.mark.parametrize("bn_frozen", [False, True])
def test_freeze_keeps_the_body_and_its_bn_stats_then_unfreezes(bn_frozen: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 2))
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 2, (32,))
    snapshots: list[dict[str, torch.Tensor]] = []

    class Snapshot(Callback):
        def on_fit_start(self, trainer: Trainer) -> None:
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})

        def on_epoch_end(self, trainer: Trainer, history: History) -> None:
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})

    freeze = Freeze(1, bn_frozen=bn_frozen)  # the head: the last nn.Linear, "3"
    trainer = Trainer(TrainerConfig(epochs=2, num_threads=1), callbacks=[freeze, Snapshot()])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer.fit(model, Loaders(TensorLoader(x, y, batch_size=8)), nn.CrossEntropyLoss(), optimizer)
    start, frozen, unfrozen = snapshots
    assert freeze.head == "3"
    for key in ("0.weight", "1.weight", "1.running_mean", "1.running_var"):
        assert torch.equal(start[key], frozen[key]), key
    for key in ("0.weight", "1.weight"):
        assert not torch.equal(frozen[key], unfrozen[key]), key
    for key in ("1.running_mean", "1.running_var"):  # statistics move only without bn_frozen
        assert torch.equal(frozen[key], unfrozen[key]) == bn_frozen, key
    assert not torch.equal(start["3.weight"], frozen["3.weight"])


def test_tv_resnet18_features_mode_keeps_the_pretrained_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    path = tv_weights_path("resnet18", "IMAGENET1K_V1")
    path.parent.mkdir(parents=True)
    source = torchvision.models.resnet18()
    torch.save(source.state_dict(), path)
    overrides = ("backbone=tv:resnet18", "weights=IMAGENET1K_V1", "mode=features", "epochs=2")
    result = _run(tmp_path, *overrides)
    model, spec = load_bundle(result.run_dir)  # type: ignore[attr-defined]
    assert spec.name == "tv:resnet18" and model.fc.out_features == 2
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(model.state_dict()[key], value), key


def test_timm_resnet18_from_a_weights_file_fine_tunes_the_body(tmp_path: Path) -> None:
    file = tmp_path / "resnet18.safetensors"
    source = timm.create_model("resnet18", num_classes=1000)
    save_file(source.state_dict(), str(file))
    result = _run(tmp_path, "backbone=timm:resnet18", f"weights={file}", "image_size=32")
    model, _ = load_bundle(result.run_dir)  # type: ignore[attr-defined]
    assert model.get_classifier().out_features == 2
    assert not torch.equal(model.conv1.weight, source.conv1.weight)  # unfrozen in epoch 2
    assert torch.allclose(model.conv1.weight, source.conv1.weight, atol=1e-2)  # low stem LR


def test_resume_from_the_frozen_phase_ends_with_identical_weights(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = _run(tmp_path, "balance=sampler")  # the balanced sampler must replay its draws too
    run_dir: Path = result.run_dir  # type: ignore[attr-defined]
    finished = load_file(str(run_dir / "model.safetensors"))
    checkpoints = sorted((run_dir / "checkpoints").glob("step-*.safetensors"))
    assert len(checkpoints) == 2  # one per epoch: frozen, then unfrozen
    checkpoints[-1].unlink()  # as if killed during the unfrozen epoch
    (run_dir / "checkpoints" / "best.safetensors").unlink(missing_ok=True)
    (run_dir / "model.safetensors").unlink()
    with caplog.at_level(logging.INFO, logger="torchdojo.engine.trainer"):
        resumed = run_recipe("image-folder", RunOptions(resume=str(run_dir), progress=False))
    assert resumed.run_dir == run_dir
    assert f"resumed from {checkpoints[0]} at epoch 1" in caplog.text  # not trained from scratch
    again = load_file(str(run_dir / "model.safetensors"))
    assert finished.keys() == again.keys()
    for key, value in finished.items():
        assert torch.equal(value, again[key]), key


def test_zoo_model_with_pretrained_weights_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="weights=none"):
        _run(tmp_path, "backbone=resnet18", "weights=DEFAULT")
