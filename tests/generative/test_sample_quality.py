"""Sample-quality tools: FID/KID through torchmetrics on given features, the real-feature cache,
the nearest-training-image check (a copying generator is caught), seeded sampling, and the
GAN health monitor on the real engine (divergence and collapse are reported, health is not).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import Tensor, nn

from torchdojo.engine import (
    Callback,
    Loaders,
    MetricsLogger,
    StepOutput,
    TensorLoader,
    Trainer,
    TrainerConfig,
)
from torchdojo.runs.sample_quality import (
    GanHealthMonitor,
    SampleQualityCallback,
    SampleScorer,
    cached_features,
    frechet_distance,
    health_section,
    kernel_distance,
    mean_pairwise_distance,
    memorisation_check,
    nearest_figure,
    nearest_training_images,
    sample_images,
    score_generator,
)


def gaussian(n: int, d: int, *, shift: float = 0.0, scale: float = 1.0, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def scipy_fid(a: Tensor, b: Tensor) -> float:
    """The textbook formula with scipy's matrix square root: an independent reference."""
    x, y = a.numpy(), b.numpy()
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_the_formula_and_grows_with_the_gap() -> None:
    real = gaussian(600, 8)
    near, far = gaussian(600, 8, shift=0.2, seed=1), gaussian(600, 8, shift=1.0, seed=2)
    fid_near, fid_far = frechet_distance(real, near), frechet_distance(real, far)
    assert fid_near == pytest.approx(scipy_fid(real, near), rel=1e-6, abs=1e-9)
    assert fid_far == pytest.approx(scipy_fid(real, far), rel=1e-6)
    assert frechet_distance(real, gaussian(600, 8, seed=3)) < fid_near < fid_far
    with pytest.raises(ValueError, match=">= 2"):
        frechet_distance(real, real[:1])


def test_kid_is_seeded_and_separates_distributions() -> None:
    real, same, other = (
        gaussian(300, 8),
        gaussian(300, 8, seed=1),
        gaussian(300, 8, scale=2, seed=2),
    )
    same_kid = kernel_distance(real, same, subsets=5, subset_size=100, seed=4)
    assert same_kid == kernel_distance(real, same, subsets=5, subset_size=100, seed=4)
    assert kernel_distance(real, other, subsets=5, subset_size=100)[0] > 10 * abs(same_kid[0])


class CountingExtractor(nn.Module):
    """A fixed random projection of images to 16-d, counting its calls."""

    def __init__(self, cache_key: str = "") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(28 * 28, 16)
        self.num_features, self.cache_key, self.calls = 16, cache_key, 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        return self.proj(x.flatten(1))


def test_real_features_are_cached_per_data_and_extractor(tmp_path: Path) -> None:
    images = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    extractor = CountingExtractor("proj-v1")
    first = cached_features(extractor, images, folder=tmp_path, batch_size=16)
    assert first.shape == (40, 16) and extractor.calls == 3
    again = cached_features(extractor, images, folder=tmp_path, batch_size=16)
    assert extractor.calls == 3 and torch.equal(first, again)  # read from the file
    cached_features(extractor, images[:20], folder=tmp_path)  # other data: a new file
    assert len(list(tmp_path.glob("proj-v1-*.safetensors"))) == 2
    uncached = CountingExtractor("")
    cached_features(uncached, images, folder=tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_scorer_ranks_closer_samples_better(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(200, 1, 28, 28, generator=g) * 0.5
    scorer = SampleScorer(CountingExtractor("p"), real, cache=tmp_path, kid_subsets=5)
    good = scorer.score(torch.rand(200, 1, 28, 28, generator=g) * 0.5)
    bad = scorer.score(torch.rand(200, 1, 28, 28, generator=g) * 0.5 + 0.4)
    assert good.fid < bad.fid and good.kid_mean < bad.kid_mean
    assert (good.n_real, good.n_fake, good.extractor) == (200, 200, "p")
    assert set(good.as_metrics("domain_")) == {"domain_fid", "domain_kid"}


def digits_like(n: int, seed: int) -> Tensor:
    """Smooth random blobs in [-1, 1]: images with structure, all different."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 7, 7, generator=g)
    return nn.functional.interpolate(coarse, size=28, mode="bilinear") * 2 - 1  # (n, 1, 28, 28)


def test_a_generator_that_copies_training_images_is_caught() -> None:
    train, held_out = digits_like(500, 0), digits_like(50, 1)
    picks = torch.tensor([3, 77, 150, 499, 250, 3])
    copier = train[picks] + 0.01 * torch.randn(6, 1, 28, 28)  # copies, barely disguised
    check = memorisation_check(copier, train, held_out)
    assert torch.equal(check.indices, picks) and check.fraction_copied == 1.0
    fresh = memorisation_check(digits_like(30, 2), train, held_out)
    assert fresh.fraction_copied < 0.2  # new images are as far as held-out ones
    assert check.reference > 0 and "100.0% of 6 samples" in check.describe()
    fig = nearest_figure(copier, train, check, count=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 8 and titles[0].endswith("copy") and titles[-1] == "nearest"


def test_nearest_neighbours_do_not_depend_on_the_chunk_size() -> None:
    train, samples = digits_like(300, 0), digits_like(10, 1)
    a_idx, a_dist = nearest_training_images(samples, train, chunk=7)
    b_idx, b_dist = nearest_training_images(samples, train, chunk=1000)
    assert torch.equal(a_idx, b_idx) and torch.allclose(a_dist, b_dist)
    brute = torch.cdist(samples.flatten(1).double(), train.flatten(1).double()).min(1)
    assert torch.equal(a_idx, brute.indices)


class TinyGenerator(nn.Module):
    """Noise in, 4x4 images out; like a style generator, it also draws noise of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.z_dim = 4
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return (self.net(z) + 0.1 * torch.randn(len(z), 16)).view(-1, 1, 4, 4)


class TinySampler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5))
        self.steps_seen: list[int] = []

    def sample(self, n: int, *, generator: torch.Generator, steps: int = 50) -> Tensor:
        self.steps_seen.append(steps)
        return (torch.randn(n, 1, 4, 4, generator=generator) * self.scale).clamp(-1, 1)


def test_sampling_is_seeded_for_both_kinds_of_model() -> None:
    gen = TinyGenerator()
    a, b = sample_images(gen, 10, seed=1), sample_images(gen, 10, seed=1)
    assert a.shape == (10, 1, 4, 4) and torch.equal(a, b)
    assert sample_images(gen, 10, seed=1, batch_size=3).shape == (10, 1, 4, 4)
    assert not torch.equal(a, sample_images(gen, 10, seed=2))
    sampler = TinySampler()
    assert torch.equal(sample_images(sampler, 5, seed=0, steps=7), sample_images(sampler, 5))
    assert sampler.steps_seen == [7, 50]
    with pytest.raises(ValueError, match="z_dim"):
        sample_images(nn.Linear(2, 2), 4)


# ---------------------------------------------------------------- the health monitor
def fake_gan_step(d_acc: float):  # noqa: ANN201
    """A step that trains a dummy parameter; D is always right on fakes, `d_acc` on reals."""

    def step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> StepOutput:
        x, _ = batch
        loss = (trainer.models["G"](x) ** 2).mean()
        trainer.backward(loss)
        trainer.step_optimizer("G")
        accs = {"d_acc_real": torch.tensor(d_acc), "d_acc_fake": torch.tensor(1.0)}
        return StepOutput(loss.detach(), len(x), values=accs)

    return step


def run_monitored(  # noqa: ANN201
    run_dir: Path, *, d_acc: float, samples: Tensor, epochs: int = 3, extra: tuple = ()
):
    g = nn.Linear(2, 2)
    warnings: list[str] = []
    monitor = GanHealthMonitor(
        sample_fn=lambda: samples,
        data_diversity=mean_pairwise_distance(digits_like(16, 5)),
        patience=2,
        on_warning=warnings.append,
    )
    callbacks: list[Callback] = [MetricsLogger(run_dir, tensorboard=False), monitor, *extra]
    config = TrainerConfig(epochs=epochs, device="cpu", num_threads=1, log_every=100)
    trainer = Trainer(config, callbacks=callbacks, checkpoint_dir=run_dir / "ckpt")
    x = torch.randn(16, 2)
    loaders = Loaders(TensorLoader(x, torch.zeros(16), batch_size=8, seed=0))
    optimizers = {"G": torch.optim.SGD(g.parameters(), lr=0.01)}
    trainer.fit({"G": g}, loaders, optimizer=optimizers, step=fake_gan_step(d_acc))
    rows = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return monitor, warnings, [r for r in rows if r["split"] == "health"], trainer.history


def test_monitor_reports_divergence_and_collapse_once(tmp_path: Path) -> None:
    collapsed = digits_like(1, 9).expand(16, -1, -1, -1) + 0.001 * torch.randn(16, 1, 28, 28)
    monitor, warnings, health, _ = run_monitored(tmp_path, d_acc=1.0, samples=collapsed)
    assert len(warnings) == 2 and monitor.warnings == warnings
    assert any("divergence" in w for w in warnings) and any("collapse" in w for w in warnings)
    assert [r["epoch"] for r in health] == [0, 1, 2]
    assert all(r["sample_diversity"] < 0.1 and r["d_acc"] == 1.0 for r in health)
    assert "divergence" not in health[0].get("warning", "")  # patience 2: not after epoch 0
    assert "divergence" in health[1]["warning"] and "collapse" in health[0]["warning"]
    assert "<li>" in health_section(monitor.warnings)
    restored = GanHealthMonitor(sample_fn=lambda: collapsed, data_diversity=1.0)
    restored.load_state_dict(json.loads(json.dumps(monitor.state_dict())))
    assert restored.state_dict() == monitor.state_dict()


def test_monitor_is_quiet_on_a_healthy_run(tmp_path: Path) -> None:
    monitor, warnings, health, _ = run_monitored(tmp_path, d_acc=0.7, samples=digits_like(16, 3))
    assert warnings == [] and monitor.warnings == []
    assert len(health) == 3 and all(0.7 < r["sample_diversity"] < 1.5 for r in health)
    assert "No sign" in health_section([])


def test_quality_callback_writes_fid_curves(tmp_path: Path) -> None:
    real = digits_like(64, 0) * 0.5 + 0.5  # in [0, 1]
    scorers = {"proj": SampleScorer(CountingExtractor(), real, kid_subsets=3)}
    quality = SampleQualityCallback(scorers, lambda: digits_like(32, 1), every=2)
    _, _, _, history = run_monitored(
        tmp_path, d_acc=0.7, samples=digits_like(16, 3), epochs=4, extra=(quality,)
    )
    assert [s["epoch"] for s in quality.scores] == [1, 3]
    assert "val_proj_fid" in history.records[1] and "val_proj_fid" not in history.records[0]
    rows = [json.loads(r) for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    fid_rows = [r for r in rows if "proj_fid" in r]
    assert [r["split"] for r in fid_rows] == ["val", "val"] and fid_rows[0]["proj_fid"] > 0


def test_score_generator_scores_one_set_of_samples_with_each_scorer() -> None:
    class Flat(nn.Module):
        num_features = 16

        def forward(self, x: Tensor) -> Tensor:
            return x.flatten(1)

    real = torch.rand(100, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    scorers = {"a": SampleScorer(Flat(), real, kid_subsets=3), "b": SampleScorer(Flat(), real)}
    scores = score_generator(TinyGenerator(), scorers, n=50, seed=3)
    assert scores["a"].fid == scores["b"].fid > 0 and scores["a"].n_fake == 50
