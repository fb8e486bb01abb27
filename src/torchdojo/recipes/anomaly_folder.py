"""Your own folder of normal images -> a detector that ranks a second folder, most anomalous first.

Lesson: lessons/25_anomaly.py. ``--set data=<folder of normal images> score=<folder to score>``:
every image under each folder (recursively) is read, resized to 28x28 (grey, or RGB with
``channels=3``); a file that cannot be read is listed in ``bad_files.json`` and the report and
skipped, never fatal. The detector (autoencoder, Deep SVDD or k-NN; see
:mod:`torchdojo.runs.anomaly`) trains on the normal folder only and writes ``scores.csv`` (path,
score, rank; rank 1 = most anomalous) and a report section with the most anomalous images.
Without ``data`` it runs on a synthetic demo written into the run folder (normal images hold a
horizontal bar, anomalies a vertical one, plus a corrupt file), where the truth is known and
AUROC is reported as ``demo_auroc``.

Measured (``torchdojo run anomaly-folder``, the demo, autoencoder, 30 epochs, one thread):
demo AUROC 1.000 (all 12 anomalies ranked above the 12 normal images), the corrupt file listed
and skipped, 15 s of CPU. No real folder of industrial anomalies is available offline
(MVTec AD is not in the shared data), so no floor on real images is claimed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from torchdojo.data.image_folder import write_bad_files
from torchdojo.engine import Loaders, TensorLoader, Trainer
from torchdojo.models.anomaly import ConvAutoencoder
from torchdojo.runs import ConfigError, Expected, Recipe, Setup
from torchdojo.runs.anomaly import (
    AnomalyOptions,
    OneClassData,
    auroc,
    html_table,
    read_image_folder,
    run_method,
    write_demo_folder,
)
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range


@dataclass(frozen=True)
class Config:
    data: str = ""  # folder of normal images to train on ("": the synthetic demo)
    score: str = ""  # folder of images to rank ("" with data="": the demo's)
    method: Literal["ae", "deep-svdd", "knn"] = "ae"
    channels: Literal[1, 3] = 1  # 1: grey, 3: RGB
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    latent_dim: Annotated[int, Range(1, 1024)] = 32
    width: int = 32
    knn_k: Annotated[int, Range(1, 1000)] = 1
    knn_features: Literal["mobilenet", "pixels"] = "pixels"  # mobilenet: ImageNet features
    top: Annotated[int, Range(1, 100)] = 16  # most anomalous images shown in the report
    seed: int = 0


def folders(cfg: Config, ctx: RunContext) -> tuple[Path, Path, bool]:
    """(normal folder, folder to score, is the demo)."""
    if not cfg.data:
        if cfg.score:
            raise ConfigError("score= needs data= too: the folder of normal images to train on")
        train, score = write_demo_folder(ctx.run_dir / "demo", seed=cfg.seed)
        ctx.note_data(f"synthetic demo folders in {ctx.run_dir / 'demo'}")
        return train, score, True
    train, score = Path(cfg.data).expanduser(), Path(cfg.score or cfg.data).expanduser()
    for key, folder in (("data", train), ("score", score)):
        if not folder.is_dir():
            raise ConfigError(f"{key}={folder}: no such folder; pass a folder of images")
    ctx.note_data(f"normal images from {train}; scoring {score}", reference=False)
    return train, score, False


def read(cfg: Config, ctx: RunContext) -> tuple[Tensor, Tensor, list[Path], bool]:
    """Training images, images to score, their paths, and whether this is the demo; unreadable
    files are written to ``bad_files.json`` and reported."""
    train_dir, score_dir, demo = folders(cfg, ctx)
    train, _, bad_train = read_image_folder(train_dir, channels=cfg.channels)
    test, paths, bad_test = read_image_folder(score_dir, channels=cfg.channels)
    bad = bad_train + bad_test
    if bad:
        write_bad_files(ctx.run_dir / "bad_files.json", bad)
        ctx.echo(
            f"[yellow]{len(bad)} unreadable image file(s) skipped[/yellow], listed in bad_files.json"
        )
        rows = [[b.path, b.reason] for b in bad]
        ctx.add_section("Unreadable images (skipped)", html_table(["file", "reason"], rows))
    for folder, x in ((train_dir, train), (score_dir, test)):
        if len(x) == 0:
            raise ConfigError(f"{folder}: no readable images (.png, .jpg, ...) in it or below it")
    return train, test, paths, demo


def setup(cfg: Config, ctx: RunContext) -> Setup:
    """The autoencoder on the normal images, ``(x, x)`` batches: what the tools inspect."""
    train, test, _, _ = read(cfg, ctx)
    model = ConvAutoencoder(latent_dim=cfg.latent_dim, width=cfg.width, channels=cfg.channels)
    loaders = Loaders(
        TensorLoader(train, train, batch_size=cfg.batch_size, seed=cfg.seed),
        TensorLoader(test, test, batch_size=256, shuffle=False),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return Setup(model, loaders, nn.MSELoss(), optimizer, epochs=cfg.epochs)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test, paths, demo = read(cfg, ctx)
    truth = torch.tensor([p.name.startswith("anomaly") for p in paths]).long()
    data = OneClassData(
        train, test, truth, truth, torch.arange(len(train)), torch.arange(len(test))
    )
    opts = AnomalyOptions(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        latent_dim=cfg.latent_dim,
        width=cfg.width,
        knn_k=cfg.knn_k,
        knn_features=cfg.knn_features,
    )

    def make_trainer(method: str, epochs: int) -> Trainer:
        return ctx.trainer(epochs=epochs, seed=cfg.seed)

    result = run_method(cfg.method, data, opts, make_trainer, seed=cfg.seed)
    ranked = write_scores(ctx.run_dir / "scores.csv", paths, result.scores)
    ctx.save_figure(top_figure(test, result.scores, paths, ranked[: cfg.top]), "most_anomalous")
    rows = [
        [i + 1, str(paths[j]), float(result.scores[j])] for i, j in enumerate(ranked[: cfg.top])
    ]
    ctx.add_section("Most anomalous images", html_table(["rank", "file", "score"], rows))
    metrics = {
        "images_scored": float(len(paths)),
        "train_images": float(len(train)),
        "ms_per_image": 1e3 * result.seconds_per_image,
    }
    if demo:
        metrics["demo_auroc"] = auroc(result.scores, truth)
    return metrics


def write_scores(path: Path, paths: list[Path], scores: Tensor) -> list[int]:
    """Write ``scores.csv`` (path, score, rank; rank 1 = most anomalous); returns the order."""
    order = scores.argsort(descending=True).tolist()
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "score", "rank"])
        for rank, i in enumerate(order, start=1):
            writer.writerow([str(paths[i]), f"{float(scores[i]):.6g}", rank])
    return order


def top_figure(images: Tensor, scores: Tensor, paths: list[Path], picks: list[int]) -> Figure:
    """The most anomalous images, titled with rank, file name and score."""
    cols = min(len(picks), 8)
    rows = (len(picks) + cols - 1) // cols
    fig = Figure(figsize=(1.5 * cols, 1.7 * rows), layout="constrained")
    for k, ax in enumerate(fig.subplots(rows, cols, squeeze=False).flat):
        ax.set_axis_off()
        if k < len(picks):
            i = picks[k]
            img = ((images[i] + 1) / 2).permute(1, 2, 0).squeeze(-1).clamp(0, 1)  # (H, W[, 3])
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{k + 1}. {paths[i].name[:14]}\n{float(scores[i]):.3g}", fontsize=7)
    return fig


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(epochs=1, width=8, knn_features="pixels", top=4),
    cpu_minutes=0.25,  # 15 s: the demo run of the docstring
    expected={
        "demo_auroc": Expected(
            0.95,
            data="the synthetic demo folders (64 normal to train; 12 normal + 12 anomalies to score)",
            measured_by="torchdojo run anomaly-folder",
        )
    },
    lesson="lessons/25_anomaly.py",
)
