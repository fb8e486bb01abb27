"""The lung-CT pipeline on a tiny synthetic twin: data split, balancing, crops, the chain's
millimetre bookkeeping, fine-tuning and the one-line errors. The recipes' smoke runs are in
tests/recipes/test_contract.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from torchdojo.data.ct import load_series, nodule_mask, write_synthetic_luna
from torchdojo.models import save_bundle
from torchdojo.recipes import get_recipe
from torchdojo.runs import ConfigError, RunOptions, lung_ct
from torchdojo.runs.context import RunContext
from torchdojo.runs.ct import froc
from torchdojo.runs.lung_ct import (
    ChainSettings,
    ChipSettings,
    CtData,
    SliceSettings,
    analyze_series,
    chip_setup,
    init_from_bundle,
    load_ct_data,
    report_table,
    segmentation_scan,
    slice_crops,
)

SHAPE = (48, 96, 96)  # the default size: on tinier volumes the grown masks reach the body


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> CtData:
    import os

    # The folder tests/conftest.py points every test at (set here too: this fixture is older).
    os.environ["TORCHDOJO_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    ctx = RunContext(get_recipe("nodule-classifier"), RunOptions(), tmp_path_factory.mktemp("run"))
    return load_ct_data(ctx, "synthetic", n_series=3, shape=SHAPE, val_fraction=0.34, seed=0)


def test_series_are_held_out_whole(data: CtData) -> None:
    assert data.val_uids and not set(data.val_uids) & set(data.train_uids)
    assert set(data.val_uids) | set(data.train_uids) == set(data.series_paths)
    assert data.annotations and any(c.is_nodule for c in data.candidates)


def test_balancing_puts_a_nodule_in_every_other_chip(data: CtData) -> None:
    fractions = {}
    for balanced in (False, True):
        s = ChipSettings(chip=(16, 16, 16), balanced=balanced, samples_per_epoch=64, width=4)
        loader = chip_setup(data, s).loaders.train
        labels = np.asarray(loader.dataset.labels)  # type: ignore[attr-defined]
        order = list(loader.sampler)  # type: ignore[attr-defined]
        fractions[balanced] = labels[order].mean()
    assert fractions[True] == pytest.approx(0.5, abs=0.02)
    assert fractions[False] < 0.1  # as the candidates come: mostly not nodules


def test_slice_crops_hold_the_nodules(data: CtData) -> None:
    uid = next(u for u in data.train_uids if data.nodules(u))
    series = load_series(data.series_paths[uid])
    s = SliceSettings(context=2, crop=32, per_nodule=3, random_crops=2)
    x, y = slice_crops(series, data.annotations, s, np.random.default_rng(0))
    n = 3 * len(data.nodules(uid)) + 2
    assert x.shape == (n, 5, 32, 32) and y.shape == (n, 1, 32, 32)
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert (y[: 3 * len(data.nodules(uid))].flatten(1).sum(1) > 0).float().mean() > 0.5


class MaskLookup(nn.Module):
    """A 'segmenter' that answers with the true mask of one series (slice by slice)."""

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        self.mask, self.z = torch.from_numpy(mask).float(), 0
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, stacks: Tensor) -> Tensor:
        out = self.mask[self.z : self.z + len(stacks)][:, None] * 20 - 10  # (b, 1, Y, X)
        self.z += len(stacks)
        return out


class Constant(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.logit = nn.Parameter(torch.tensor([0.0, float(np.log(p / (1 - p)))]))

    def forward(self, chips: Tensor) -> Tensor:
        return self.logit.expand(len(chips), 2)


def test_the_chain_reports_true_nodules_in_millimetres(data: CtData) -> None:
    """With a perfect mask, every found component lies on an annotated nodule: the voxel ->
    millimetre conversions (flipped axes included) agree with the annotations."""
    scans, reports = [], []
    for uid in data.series_paths:
        series = load_series(data.series_paths[uid])
        mask = nodule_mask(series, data.annotations)
        chain = ChainSettings(context=1, chip=(16, 16, 16), min_radius_mm=1.0)
        report, probs = analyze_series(
            series, MaskLookup(mask), Constant(0.9), Constant(0.3), data.cache, chain
        )
        assert probs.shape == series.shape
        for f in report.findings:
            assert np.allclose(series.xyz_to_irc(f.center_xyz), f.center_irc, atol=0.51)
            assert f.nodule_prob == pytest.approx(0.9) and f.malignancy_prob == pytest.approx(0.3)
        scans.append((report.detections(), data.nodules(uid)))
        reports.append(report)
    score, fps, sens = froc(scans)
    assert sens[0] == 1.0 and fps[0] <= 1.0, (sens[0], fps[0])
    table = report_table(reports)
    assert table.count("<tr>") == 1 + sum(len(r.nodules) for r in reports)


def test_segmentation_scan_groups_the_mask(data: CtData) -> None:
    uid = next(u for u in data.series_paths if data.nodules(u))
    series = load_series(data.series_paths[uid])
    mask = nodule_mask(series, data.annotations)
    found, probs = segmentation_scan(series, MaskLookup(mask), ChainSettings(context=1))
    assert len(found) >= 1 and probs.max() > 0.99
    assert all(d.score >= 2.0 for d in found)  # the depth (mm) of each mask peak


def test_fine_tuning_copies_all_but_the_head(tmp_path: Path) -> None:
    from torchdojo.models import ModelSpec, create_model

    torch.manual_seed(0)
    source = create_model("luna-cnn", width=4)
    save_bundle(tmp_path, source, ModelSpec("luna-cnn", {"width": 4}))
    target = create_model("luna-cnn", width=4)
    count = init_from_bundle(target, tmp_path)
    assert count == len([k for k in source.state_dict() if not k.startswith("head.")])
    assert torch.equal(target.blocks[0][0].weight, source.blocks[0][0].weight)
    assert not torch.equal(target.head.weight, source.head.weight)
    with pytest.raises(ConfigError, match="holds no trained model"):
        init_from_bundle(target, tmp_path / "missing")


def test_a_missing_data_folder_is_one_line(tmp_path: Path) -> None:
    ctx = RunContext(get_recipe("nodule-classifier"), RunOptions(), tmp_path)
    with pytest.raises(ConfigError) as err:
        load_ct_data(ctx, str(tmp_path / "luna"), n_series=2, shape=SHAPE, val_fraction=0.5, seed=0)
    assert "\n" not in str(err.value) and "luna" in str(err.value)


def test_synthetic_set_is_written_once(data: CtData, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(lung_ct, "write_synthetic_luna", lambda *a, **k: calls.append(a))
    root = lung_ct.synthetic_root(3, 0, SHAPE)
    assert root == data.root and not calls
    assert not write_synthetic_luna.__module__.endswith("lung_ct")
