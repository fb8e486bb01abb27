"""image-folder on real data: ants vs bees with ImageNet MobileNetV2 (slow, needs the shared data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchdojo.recipes import RunOptions, run_recipe


@pytest.mark.slow
def test_hymenoptera_fine_tune_reaches_94_percent_and_beats_the_probe(
    real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch_home = real_data / "torch_home"
    if not (torch_home / "hub/checkpoints/mobilenet_v2-b0353104.pth").is_file():
        pytest.skip(f"no MobileNetV2 ImageNet weights under {torch_home}")
    if not (real_data / "hymenoptera_data").is_dir():
        pytest.skip(f"no hymenoptera_data under {real_data}")
    monkeypatch.setenv("TORCH_HOME", str(torch_home))

    def metrics(*overrides: str) -> dict[str, float]:
        options = RunOptions(
            out=str(tmp_path), data_dir=str(real_data), progress=False, overrides=overrides
        )
        return run_recipe("image-folder", options).metrics

    seeds = (0, 1, 2)  # one run of 153 images is a coin toss; compare means over seeds
    # the probe trains the head alone for the same 6 epochs with the same augmentation
    probe = [metrics("mode=features", f"seed={s}") for s in seeds]  # 0.954, 0.941, 0.948
    fine_tuned = [metrics(f"seed={s}") for s in seeds]  # measured: 0.948, 0.961, 0.948
    assert all(run["val_acc"] >= 0.94 for run in fine_tuned), fine_tuned
    assert mean(fine_tuned, "val_acc") > mean(probe, "val_acc"), (fine_tuned, probe)


def mean(runs: list[dict[str, float]], key: str) -> float:
    return sum(run[key] for run in runs) / len(runs)
