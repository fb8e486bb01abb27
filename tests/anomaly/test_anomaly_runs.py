"""Anomaly training on the engine (Deep SVDD's centre, EfficientGAN's three players, seeded
repeatability) and the two recipes: the book protocol's figures, your own folder's ranked CSV
with an unreadable file reported, not fatal."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from torchdojo.engine import Trainer, TrainerConfig
from torchdojo.models.anomaly import DeepSVDDNet, Encoder
from torchdojo.runs import ConfigError, RunOptions
from torchdojo.runs.anomaly import (
    AnomalyOptions,
    init_center,
    train_autoencoder,
    train_deep_svdd,
    train_efficientgan,
)
from torchdojo.runs.runner import RunResult

OPTS = AnomalyOptions(epochs=1, gan_epochs=1, batch_size=8, width=4, latent_dim=6)


def images(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def trainer() -> Trainer:
    return Trainer(TrainerConfig(epochs=1, device="cpu", num_threads=1, seed=0))


def test_deep_svdd_center_is_the_initial_mean_pushed_off_zero() -> None:
    torch.manual_seed(0)
    net, x = DeepSVDDNet(rep_dim=6, width=4), images()
    init_center(net, x, eps=0.1)
    assert (net.center.abs() >= 0.1 - 1e-7).all()
    with torch.no_grad():
        mean = net(x).mean(0)
    big = mean.abs() >= 0.1
    assert torch.allclose(net.center[big], mean[big], atol=1e-5)


def test_deep_svdd_training_pulls_towards_the_fixed_center() -> None:
    x = images(64)
    torch.manual_seed(0)
    t = trainer()
    net = train_deep_svdd(t, x, AnomalyOptions(epochs=1, batch_size=8, width=8, lr=1e-2), seed=0)
    center = net.center.clone()
    losses = [r["train_loss"] for r in t.history.records]
    assert torch.isfinite(torch.tensor(losses)).all() and torch.equal(center, net.center)
    assert not net.training  # returned ready to score


def test_efficientgan_steps_all_three_players() -> None:
    x = images()
    torch.manual_seed(0)
    t = trainer()
    E, G, D = train_efficientgan(t, x, OPTS, seed=0)  # noqa: N806
    before = {k: [p.clone() for p in m.parameters()] for k, m in {"E": E, "G": G, "D": D}.items()}
    torch.manual_seed(0)
    E2, G2, D2 = train_efficientgan(trainer(), x, OPTS, seed=0)  # noqa: N806
    for name, model in {"E": E2, "G": G2, "D": D2}.items():  # same seed: bitwise the same
        assert all(torch.equal(a, b) for a, b in zip(before[name], model.parameters(), strict=True))
    record = t.history.records[-1]
    assert {"train_d_loss", "train_ge_loss"} <= set(record)
    torch.manual_seed(0)
    initial = Encoder(latent_dim=6, width=4)  # E is built first: the same initial weights
    assert not torch.equal(initial.head.weight, E.head.weight)  # E was stepped too


def test_autoencoder_learns_its_images() -> None:
    x = images(32)
    torch.manual_seed(0)
    t = Trainer(TrainerConfig(epochs=3, device="cpu", num_threads=1, seed=0))
    train_autoencoder(t, x, AnomalyOptions(batch_size=8, width=4, lr=3e-3, latent_dim=8), seed=0)
    losses = [r["train_loss"] for r in t.history.records]
    assert losses[-1] < losses[0]


def run(name: str, tmp_path: Path, **overrides: object) -> RunResult:
    from torchdojo.recipes import run_recipe

    sets = [f"{k}={v}" for k, v in overrides.items()]
    options = RunOptions(smoke=True, out=str(tmp_path), progress=False, overrides=sets, threads=1)
    return run_recipe(name, options)


def test_book_protocol_draws_the_fifteen_images(tmp_path: Path) -> None:
    result = run("anomaly-mnist", tmp_path, protocol="book", methods="ae,knn", max_test_samples=128)
    plots = {p.name for p in (result.run_dir / "plots").iterdir()}
    assert {"book_ae.png", "book_knn.png"} <= plots
    assert (
        0 <= result.metrics["auroc_ae"] <= 1
        and result.metrics["best_auroc"] >= result.metrics["auroc_ae"]
    )
    report = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert "AUROC by normal class" in report


def test_unknown_method_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="choose from"):
        run("anomaly-mnist", tmp_path, methods="ae,isolation-forest")


def test_own_folder_ranks_images_and_reports_unreadable_ones(tmp_path: Path) -> None:
    from torchdojo.runs.anomaly import write_demo_folder

    train, score = write_demo_folder(tmp_path / "data", n_train=24, n_normal=4, n_anomaly=4)
    (train / "empty.jpg").write_bytes(b"")
    result = run(
        "anomaly-folder",
        tmp_path / "runs",
        data=train,
        score=score,
        method="knn",
        knn_features="pixels",
    )
    with (result.run_dir / "scores.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and [int(r["rank"]) for r in rows] == list(range(1, 9))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(Path(r["path"]).name.startswith("anomaly") for r in rows[:4])  # k-NN: bars differ
    bad = json.loads((result.run_dir / "bad_files.json").read_text(encoding="utf-8"))
    assert {Path(b["path"]).name for b in bad} == {"empty.jpg", "broken.png"}
    assert "Most anomalous images" in (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert "demo_auroc" not in result.metrics  # your own folder: no truth to score against


@pytest.mark.parametrize("name", ["anomaly-mnist", "anomaly-folder"])
def test_setup_gives_the_tools_an_autoencoder_on_x_x_batches(name: str, tmp_path: Path) -> None:
    from torchdojo.recipes import get_recipe
    from torchdojo.runs.context import RunContext

    recipe = get_recipe(name)
    assert recipe.setup is not None
    task = recipe.setup(recipe.smoke, RunContext(recipe, RunOptions(smoke=True), tmp_path))
    x, y = next(iter(task.loaders.train))
    assert torch.equal(x, y) and task.loss_fn(task.model(x), y).item() > 0


def bars(n: int = 32) -> torch.Tensor:
    """Images with a horizontal bar at a random row: learnable codes, unlike pixel noise."""
    g, x = torch.Generator().manual_seed(0), -torch.ones(n, 1, 28, 28)
    for i, row in enumerate(torch.randint(2, 24, (n,), generator=g).tolist()):
        x[i, 0, row : row + 4, 4:-4] = 1.0
    return x


def test_efficientgan_cycle_weight_trains_e_and_g_to_reconstruct() -> None:
    x = bars()

    def cycle_error(weight: float) -> tuple[float, set[str]]:
        torch.manual_seed(0)  # the same initial E, G, D and noise for both weights
        t = Trainer(TrainerConfig(epochs=3, device="cpu", num_threads=1, seed=0))
        opts = AnomalyOptions(
            gan_epochs=3, batch_size=8, width=4, latent_dim=6, gan_lr=1e-2, cycle_weight=weight
        )
        E, G, _ = train_efficientgan(t, x, opts, seed=0)  # noqa: N806
        with torch.no_grad():
            error = (x - G(E(x))).abs().mean().item()
        return error, set(t.history.records[-1])

    plain, plain_keys = cycle_error(0.0)
    cycled, cycled_keys = cycle_error(10.0)
    assert "train_cycle" in cycled_keys and "train_cycle" not in plain_keys
    assert cycled < plain - 0.05  # measured 0.74 vs 0.87: the term reached E and G
