"""What the GAN and VAE recipes share: image batches in [-1, 1], the two-player GAN step, the
VAE step, a fixed-noise sample grid every epoch, and the finish (the generator saved).

A GAN recipe (``dcgan-mnist``, ``sagan-mnist``) builds its players with :func:`gan_setup`,
trains with :func:`fit_players` and ``step=GANStep(...)`` (D then G, each its own backward and
optimizer step; hinge or non-saturating loss; two learning rates), and ends with
:func:`finish_generator`. The VAE recipe uses :func:`vae_step` / :func:`vae_eval_step` with
``ctx.fit``. Images in training are in [-1, 1] (tanh outputs); the fixed-noise grid of every
epoch goes to ``plots/samples/`` and TensorBoard, and the progress across epochs into the report.
Taught in lessons/22_gans.py and lessons/23_vae.py.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from torchmetrics import Metric

from torchdojo.data import ArrayDataset
from torchdojo.engine import (
    EMA,
    Callback,
    EvalOutput,
    History,
    Loaders,
    StepOutput,
    TensorLoader,
    Trainer,
    averaged,
)
from torchdojo.engine import distributed as dist
from torchdojo.models import ModelSpec, create_model
from torchdojo.models.gan import DCGANDiscriminator
from torchdojo.nn.generative import (
    bce_d_loss,
    bce_g_loss,
    gaussian_kl,
    hinge_d_loss,
    hinge_g_loss,
)
from torchdojo.runs.classify import load_split_pair
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import ConfigError, Setup

GanLoss = Literal["bce", "hinge"]
GAN_EMA_WARMUP = 100  # G-EMA updates that copy G before averaging starts
DATASETS = ("mnist", "fashion-mnist", "mnist-embedded", "mnist-tiny")
GRID_DIR = Path("plots") / "samples"


# ----------------------------------------------------------------------------- data
def to_signed(x: Tensor) -> Tensor:
    """uint8 images in [0, 255] -> float in [-1, 1] (what a tanh generator or DDPM outputs)."""
    return x.float() / 127.5 - 1.0


class ToSignedUnit:
    """uint8 images (B, C, 28, 28) -> float in [-1, 1], resized to ``image_size`` (bilinear)."""

    def __init__(self, image_size: int) -> None:
        self.image_size = image_size

    def __call__(self, x: Tensor) -> Tensor:
        x = to_signed(x)
        if x.shape[-1] != self.image_size:
            size = (self.image_size, self.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x


def image_loaders(
    ctx: RunContext,
    dataset: str,
    *,
    image_size: int,
    batch_size: int,
    seed: int,
    max_train: int | None = None,
    max_test: int | None = None,
    with_val: bool = False,
) -> tuple[Loaders, ArrayDataset, ArrayDataset]:
    """Shuffled training images in [-1, 1] (labels kept, unused by a GAN), optional test
    batches; returns the loaders and the train and test splits (uint8, as loaded)."""
    if dataset not in DATASETS:
        raise ConfigError(f"dataset={dataset!r}: the generative recipes read {', '.join(DATASETS)}")
    train, test = load_split_pair(ctx, dataset, max_train=max_train, max_test=max_test, seed=seed)
    to_unit = ToSignedUnit(image_size)
    train_loader = TensorLoader(
        train.x,
        train.y,
        batch_size=batch_size,
        seed=seed,
        drop_last=len(train) > batch_size,  # a last tiny batch hurts batch norm in D
        transform=to_unit,
        rank=dist.rank(),
        world_size=dist.world_size(),
    )
    val = None
    if with_val:
        val = TensorLoader(test.x, test.y, batch_size=512, shuffle=False, transform=to_unit)
    return Loaders(train_loader, val), train, test


# ------------------------------------------------------------------------ the GAN
@dataclass
class GANSetup(Setup):
    """A :class:`Setup` of two players plus held-out real images (uint8), for the
    nearest-training-image check at the end."""

    test_images: Tensor | None = None


def gan_setup(
    *,
    generator: nn.Module,
    spec: ModelSpec,
    loaders: Loaders,
    image_size: int,
    width: int,
    spectral_norm: bool,
    attention: bool,
    lr_g: float,
    lr_d: float,
    betas: tuple[float, float],
    epochs: int,
    test_images: Tensor | None = None,
) -> GANSetup:
    """G (given) and a matching DCGAN/SAGAN discriminator, each with its own Adam.

    Two learning rates are SAGAN's two time-scale update rule (TTUR, Heusel et al., 2017):
    D learns faster (e.g. 4e-4 vs 1e-4), so one D step per G step suffices.
    """
    channels = int(spec.kwargs.get("channels", 1))
    discriminator = DCGANDiscriminator(
        image_size=image_size,
        channels=channels,
        width=width,
        spectral_norm=spectral_norm,
        attention=attention,
    )
    optimizers: dict[str, torch.optim.Optimizer] = {
        "G": torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas),
        "D": torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas),
    }
    return GANSetup(
        generator,
        loaders,
        loss_fn=no_single_loss,
        optimizer=optimizers["G"],
        epochs=epochs,
        spec=spec,
        mean=[0.5] * channels,
        std=[0.5] * channels,
        players={"G": generator, "D": discriminator},
        optimizers=optimizers,
        test_images=test_images,
    )


def no_single_loss(out: Any, target: Any) -> Tensor:
    """The ``loss_fn`` of a generative Setup: there is no ``loss(model(x), y)`` to call."""
    raise ConfigError(
        "this generative model has no loss on model(x) and a label; it trains with its own step"
    )


def generator_spec(name: str, kwargs: dict[str, Any]) -> ModelSpec:
    """How ``sample``/``predict`` rebuild a generator: noise (z_dim,) in, images in [-1, 1] out."""
    channels = int(kwargs.get("channels", 1))
    return ModelSpec(
        name,
        dict(kwargs),
        input_shape=[int(kwargs["z_dim"])],
        mean=[0.5] * channels,  # display: x * 0.5 + 0.5 maps [-1, 1] to [0, 1]
        std=[0.5] * channels,
        task="generation",
        preprocess={"latent": "standard normal", "z_dim": int(kwargs["z_dim"]), "range": [-1, 1]},
    )


@dataclass
class GANStep:
    """One GAN step: D on real vs fake, then G to fool D, each its own backward and step.

    Logs ``d_loss``, ``g_loss`` and D's accuracy on real and on fake images (a logit > 0 says
    "real"): ``d_acc_real`` and ``d_acc_fake`` pinned near 1 mean D has won and G's gradient is
    vanishing; both near 0.5 for long is a balanced game (or a D that learns nothing).

    Args:
        loss: ``"bce"`` (the original minimax with the non-saturating G loss) or ``"hinge"``.
    """

    loss: GanLoss = "bce"

    def __call__(self, trainer: Trainer, batch: tuple[Tensor, Tensor]) -> StepOutput:
        real, _ = batch  # (B, C, S, S) in [-1, 1]
        G, D = trainer.models["G"], trainer.models["D"]  # noqa: N806
        z_dim = int(getattr(trainer.unwrapped_models["G"], "z_dim"))  # noqa: B009
        d_loss_fn, g_loss_fn = (
            (hinge_d_loss, hinge_g_loss) if self.loss == "hinge" else (bce_d_loss, bce_g_loss)
        )
        z = torch.randn(len(real), z_dim, device=real.device)  # the global RNG: seeded, resumed
        with trainer.autocast():
            fake = G(z)  # (B, C, S, S)
            real_logits, fake_logits = D(real), D(fake.detach())  # (B,) each
            d_loss = d_loss_fn(real_logits, fake_logits)
        trainer.backward(d_loss)
        trainer.step_optimizer("D")
        with trainer.autocast():
            g_loss = g_loss_fn(D(fake))  # D after its update, gradients flow into G
        trainer.backward(g_loss)  # D's gradients from this pass are cleared by the engine
        trainer.step_optimizer("G")
        acc_real = (real_logits.detach() > 0).float().mean()
        acc_fake = (fake_logits.detach() < 0).float().mean()
        return StepOutput(
            loss=(d_loss + g_loss).detach(),
            batch_size=len(real),
            values={
                "d_loss": d_loss.detach(),
                "g_loss": g_loss.detach(),
                "d_acc_real": acc_real,
                "d_acc_fake": acc_fake,
            },
        )


def fit_players(
    ctx: RunContext,
    setup: Setup,
    *,
    step: Callable[[Trainer, Any], StepOutput],
    callbacks: Iterable[Callback] = (),
    seed: int,
) -> History:
    """Train ``setup.players`` with ``setup.optimizers`` and ``step`` (resumes when asked)."""
    trainer = ctx.trainer(callbacks=callbacks, epochs=setup.epochs, seed=seed, log_every=20)
    return trainer.fit(
        setup.players,
        setup.loaders,
        None,
        setup.optimizers,
        setup.scheduler,
        step=step,
        resume=ctx.resume,
    )


# ------------------------------------------------------------------------ the VAE
def vae_terms(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """Reconstruction loss and KL per image (B,) each, in nats, for images ``x`` in [-1, 1].

    The decoder's logits are Bernoulli parameters of the pixels scaled to [0, 1];
    ``recon + kl`` is the negative ELBO, an upper bound on ``-log p(x)``.
    """
    logits, mu, logvar = model(x)
    target = (x + 1.0) / 2.0  # [-1, 1] -> [0, 1]
    recon = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return recon.flatten(1).sum(1), gaussian_kl(mu, logvar)  # (B,), (B,)


@dataclass
class VAEStep:
    """One VAE step on ``recon + beta * KL`` (beta = 1: the ELBO)."""

    beta: float = 1.0

    def __call__(self, trainer: Trainer, batch: tuple[Tensor, Tensor]) -> StepOutput:
        x, _ = batch  # (B, C, S, S) in [-1, 1]
        with trainer.autocast():
            recon, kl = vae_terms(trainer.model, x)
            loss = (recon + self.beta * kl).mean()
        trainer.backward(loss)
        trainer.step_optimizer("optimizer")
        return StepOutput(
            loss=loss.detach(),
            batch_size=len(x),
            values={"recon": recon.mean().detach(), "kl": kl.mean().detach()},
        )


def vae_eval_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> EvalOutput:
    """The negative ELBO (nats per image) and its two terms (for :class:`BatchMean` metrics)."""
    x, _ = batch
    recon, kl = vae_terms(trainer.model, x)
    terms = {"recon": recon, "kl": kl}
    return EvalOutput(loss=(recon + kl).mean(), preds=terms, target=None, batch_size=len(x))


class BatchMean(Metric):
    """The mean of ``preds[key]`` over every sample seen (a validation term of a custom step)."""

    full_state_update = False

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.total: Tensor
        self.count: Tensor

    def update(self, preds: dict[str, Tensor], target: Any) -> None:
        values = preds[self.key].detach()
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count.clamp(min=1)).float()


# ----------------------------------------------------------------- sample grids
def grid_image(images: Tensor, *, ncols: int = 8) -> Tensor:
    """Images (N, C, H, W) in [-1, 1] tiled into one (C, H', W') image in [0, 1]."""
    from torchvision.utils import make_grid

    return make_grid((images.detach().float().cpu() + 1.0) / 2.0, nrow=ncols, padding=2).clamp(0, 1)


def grid_figure(grids: Sequence[tuple[str, Tensor]]) -> Figure:
    """Tiled grids (each (C, H, W) in [0, 1]) side by side, titled (one axes each: fast)."""
    from torchdojo.viz.figures import new_figure

    cols = min(4, len(grids))
    rows = math.ceil(len(grids) / cols)
    fig = new_figure(width=3.2 * cols, height=3.4 * rows)
    for i, (title, grid) in enumerate(grids):
        ax = fig.add_subplot(rows, cols, i + 1)
        img = grid.permute(1, 2, 0).numpy()  # (H, W, C)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    return fig


class SampleGrid(Callback):
    """Draw the same noise through the generator at every epoch's end: progress made visible.

    The noise comes from a private generator (the training RNG is untouched, so resume stays
    exact); the generator runs in eval mode (batch-norm running statistics, no spectral-norm
    power iteration) and is put back as it was. Each grid goes to ``plots/samples/`` and, as an
    image, to TensorBoard; :meth:`progress_figure` puts up to 8 epochs side by side. A model
    that is not one call from noise (a diffusion model's sampler) passes ``draw`` instead.

    Args:
        run_dir: The run folder.
        player: Name of the generating model in the trainer (``"G"``, or ``"model"`` for a VAE).
        z_dim: Length of the noise vector (needed unless ``draw`` is given).
        n: Samples per grid.
        seed: Seed of the fixed noise.
        tensorboard: Also write the grids to ``run_dir/tensorboard``.
        draw: ``draw(trainer) -> (n, C, S, S)`` images in [-1, 1], the same every epoch for
            the same weights, replacing the fixed noise through ``player`` (e.g.
            :func:`torchdojo.runs.diffusion.grid_sampler`).
        ema: Draw with the averaged weights of the model this EMA tracks (the trainer's
            first), when it has an average yet.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        player: str = "G",
        z_dim: int | None = None,
        n: int = 64,
        seed: int = 0,
        tensorboard: bool = True,
        draw: Callable[[Trainer], Tensor] | None = None,
        ema: EMA | None = None,
    ) -> None:
        if draw is None and z_dim is None:
            raise ValueError("SampleGrid needs z_dim (noise through the generator) or draw")
        self.run_dir, self.player, self.tensorboard = run_dir, player, tensorboard
        self.n, self.draw, self.ema = n, draw, ema
        self.noise = torch.randn(n, z_dim or 1, generator=torch.Generator().manual_seed(seed))
        self.last: Tensor | None = None  # the latest grid's samples (N, C, S, S)
        self._writer: Any = None

    def samples(self, trainer: Trainer) -> Tensor:
        """The fixed noise through the generator (or ``draw``'s images), (N, C, S, S) in [-1, 1],
        with the EMA's averaged weights in its model (the trainer's first) when there is one."""
        with torch.no_grad(), averaged(trainer.unwrapped_model, self.ema):
            if self.draw is not None:
                return self.draw(trainer).float().cpu()
            model = trainer.unwrapped_models[self.player]
            was_training = model.training
            model.eval()
            device = next(model.parameters()).device
            images = model.generate(self.noise.to(device))  # type: ignore[operator]
            model.train(was_training)
        return images.float().cpu()

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        if not dist.is_main_process():
            return
        from torchvision.utils import save_image

        epoch = int(history.last()["epoch"]) + 1  # 1-based: "after epoch 1"
        self.last = self.samples(trainer)
        grid = grid_image(self.last)
        (self.run_dir / GRID_DIR).mkdir(parents=True, exist_ok=True)
        save_image(grid, self.run_dir / GRID_DIR / f"epoch_{epoch:03d}.png")
        if self.tensorboard:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
            self._writer.add_image("samples/fixed_noise", grid, trainer.state.step)
            self._writer.flush()

    def on_fit_end(self, trainer: Trainer, history: History) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def progress_figure(self) -> Figure | None:
        """The saved grids of up to 8 epochs (first, last, evenly between), or None if none."""
        import numpy as np
        from PIL import Image

        files = sorted((self.run_dir / GRID_DIR).glob("epoch_*.png"))
        if not files:
            return None
        picks = (
            sorted({round(i * (len(files) - 1) / 7) for i in range(8)}) if len(files) > 8 else None
        )
        chosen = [files[i] for i in picks] if picks is not None else files
        grids = [
            (
                f"epoch {int(f.stem.split('_')[1])}",
                torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255)[
                    None
                ],
            )
            for f in chosen
        ]
        return grid_figure(grids)


def health_monitor(grid: SampleGrid, train_images: Tensor, to_unit: ToSignedUnit) -> Any:
    """A :class:`~torchdojo.runs.sample_quality.GanHealthMonitor` on the grid's samples (run
    it after ``grid``): warns when D's accuracy stays pinned or the samples lose diversity."""
    from torchdojo.runs.sample_quality import GanHealthMonitor, mean_pairwise_distance

    real = to_unit(train_images[: grid.n])  # as many real images as samples, in [-1, 1]

    def fixed_noise_samples() -> Tensor:
        assert grid.last is not None, "run the SampleGrid callback before the monitor"
        return grid.last

    return GanHealthMonitor(
        sample_fn=fixed_noise_samples, data_diversity=mean_pairwise_distance(real)
    )


def quality_callback(
    generator: nn.Module,
    test_images: Tensor | None,
    to_unit: ToSignedUnit,
    *,
    fid_samples: int,
    classifier: str,
    seed: int,
    ema: EMA | None = None,
) -> Callback | None:
    """FID/KID every epoch on ``fid_samples`` seeded samples against as many test images
    (:class:`~torchdojo.runs.sample_quality.SampleQualityCallback`): Inception features when
    ``fid_samples > 0``, plus a domain FID from the classifier run folder ``classifier`` when
    given. None when both are off. A few hundred samples show the trend; the comparable number
    wants 10k (``torchdojo sample`` / :func:`~torchdojo.runs.sample_quality.score_generator`).
    """
    if fid_samples <= 0 or test_images is None:
        return None
    from torchdojo.models import load_bundle
    from torchdojo.models.fid import ClassifierFeatures, InceptionFeatures
    from torchdojo.runs.sample_quality import SampleQualityCallback, SampleScorer, sample_images

    real = (to_unit(test_images[:fid_samples]) + 1.0) / 2.0  # (N, C, S, S) in [0, 1]
    try:
        scorers = {"inception": SampleScorer(InceptionFeatures(), real)}
    except ImportError as err:
        raise ConfigError(f"fid_samples={fid_samples}: {err}") from None
    if classifier:
        try:
            model, spec = load_bundle(classifier)
        except FileNotFoundError as err:
            raise ConfigError(f"fid_classifier={classifier}: {err}") from None
        features = ClassifierFeatures(model, spec, cache_key=f"classifier-{Path(classifier).name}")
        scorers["domain"] = SampleScorer(features, real)

    def samples() -> Tensor:
        was_training = generator.training
        with averaged(generator, ema):  # (N, C, S, S) in [-1, 1]
            images = sample_images(generator, fid_samples, seed=seed)
        generator.train(was_training)
        return images

    return SampleQualityCallback(scorers, samples)


def train_gan(
    ctx: RunContext,
    task: Setup,
    *,
    loss: Literal["bce", "hinge"],
    z_dim: int,
    image_size: int,
    grid_size: int,
    seed: int,
    fid_samples: int = 0,
    fid_classifier: str = "",
    ema_decay: float = 0.0,
) -> dict[str, float]:
    """Train a GAN set up by :func:`gan_setup` with :class:`GANStep` and finish it.

    The same fixed-noise grid every epoch, the health monitor (collapse, divergence), FID/KID
    when ``fid_samples > 0``, then :func:`finish_generator`: what ``dcgan-mnist``,
    ``sagan-mnist`` and ``stylegan-mnist`` share, so their runs compare directly.

    With ``ema_decay > 0`` G's weights are also averaged after every step (an
    :class:`~torchdojo.engine.EMA`, StyleGAN's and BigGAN's "G EMA"; the first
    :data:`GAN_EMA_WARMUP` steps copy): the grids, the FID callback and the saved bundle
    use the average, the raw G keeps playing against D. The checkpoints hold both.
    """
    train_x = getattr(task.loaders.train, "x", None)  # uint8 (M, C, S, S)
    if train_x is None:
        raise TypeError("train_gan needs in-memory training images (a TensorLoader)")
    ema = EMA(ema_decay, warmup_steps=GAN_EMA_WARMUP, validate=False) if ema_decay > 0 else None
    grid = SampleGrid(ctx.run_dir, player="G", z_dim=z_dim, n=grid_size, seed=seed, ema=ema)
    to_unit = ToSignedUnit(image_size)
    monitor = health_monitor(grid, train_x, to_unit)
    quality = quality_callback(
        task.model,
        getattr(task, "test_images", None),  # a GANSetup's held-out images
        to_unit,
        fid_samples=fid_samples,
        classifier=fid_classifier,
        seed=seed,
        ema=ema,
    )
    callbacks = [c for c in (ema, grid, monitor, quality) if c is not None]
    history = fit_players(ctx, task, step=GANStep(loss), callbacks=callbacks, seed=seed)
    if ema is not None and ema.shadow:
        ema.copy_to(task.model)  # the bundle holds the average
    return finish_generator(ctx, task, history, grid, monitor=monitor)


# ------------------------------------------------------------------------ finish
def finish_generator(
    ctx: RunContext,
    setup: Setup,
    history: History,
    grid: SampleGrid,
    *,
    monitor: Any = None,
    to_unit: ToSignedUnit | None = None,
) -> dict[str, float]:
    """Save the generator (``setup.model``), the sample progress, the health warnings and the
    nearest-training-image check of the last grid; return the last epoch's training numbers
    (losses, D's accuracies), the training time and the fraction of copied samples."""
    from torchdojo.runs.sample_quality import health_section, memorisation_check, nearest_figure

    if setup.spec is not None:
        ctx.save_model(setup.model, setup.spec)
    figure = grid.progress_figure()
    if figure is not None:
        ctx.save_figure(figure, "samples_by_epoch")
    if monitor is not None:
        ctx.add_section("Training health", health_section(monitor.warnings))
    extra: dict[str, float] = {}
    train_images = getattr(setup.loaders.train, "x", None)  # uint8 (M, C, 28, 28)
    test_images = getattr(setup, "test_images", None)
    if grid.last is not None and train_images is not None and test_images is not None:
        to_unit = to_unit or ToSignedUnit(grid.last.shape[-1])
        train_x, held_out = to_unit(train_images), to_unit(test_images[:200])  # in [-1, 1]
        check = memorisation_check(grid.last, train_x, held_out)
        ctx.save_figure(nearest_figure(grid.last, train_x, check), "nearest_training_images")
        ctx.add_section("Memorisation", f"<p>{html.escape(check.describe())}</p>")
        extra["fraction_copied"] = check.fraction_copied
    last = history.last()
    numbers = {k: float(v) for k, v in last.items() if k.startswith(("train_", "val_"))}
    return {**numbers, **extra}


def build_generator(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """A registered generator (``dcgan-28``, ``sagan-28``, ...) and check it samples."""
    model = create_model(name, **kwargs)
    if not hasattr(model, "generate") or not hasattr(model, "z_dim"):
        raise ConfigError(f"model {name!r} is not a generator (needs generate(z) and z_dim)")
    return model


# ------------------------------------------------------------------- VAE report
@torch.no_grad()
def vae_report(
    ctx: RunContext, model: nn.Module, loader: Iterable[Any], *, classes: list[str]
) -> None:
    """Reconstructions, the latent space (test means; PCA to 2-D when Z > 2) coloured by class,
    and a walk between two test digits, into the report."""
    if not dist.is_main_process():
        return
    model.eval()
    xs, ys, mus = [], [], []
    for x, y in loader:
        mu, _ = model.encode(x)  # type: ignore[operator]
        xs.append(x)
        ys.append(y)
        mus.append(mu)
        if sum(len(m) for m in mus) >= 2000:
            break
    x, y, mu = torch.cat(xs), torch.cat(ys), torch.cat(mus)  # (N, C, S, S), (N,), (N, Z)
    recon = model.generate(mu[:16])  # type: ignore[operator]  # decode the means: (16, C, S, S)
    grids = [("test images", grid_image(x[:16])), ("reconstructions", grid_image(recon))]
    ctx.save_figure(grid_figure(grids), "reconstructions")
    ctx.save_figure(latent_figure(mu, y, classes), "latent_space")
    other = int((y != y[0]).nonzero()[0]) if (y != y[0]).any() else min(1, len(y) - 1)
    weights = torch.linspace(0, 1, 10)[:, None]  # (10, 1)
    path = (1 - weights) * mu[0] + weights * mu[other]  # (10, Z): a straight line in z
    walk = grid_image(model.generate(path), ncols=10)  # type: ignore[operator]
    ctx.save_figure(
        grid_figure([(f"{classes[int(y[0])]} -> {classes[int(y[other])]}", walk)]), "interpolation"
    )


def latent_figure(mu: Tensor, labels: Tensor, classes: list[str]) -> Figure:
    """Posterior means (N, Z) as points, coloured by class; Z > 2 is projected by PCA."""
    from torchdojo.viz.figures import new_figure

    if mu.shape[1] > 2:
        centred = mu - mu.mean(0)
        _, _, v = torch.pca_lowrank(centred, q=2, center=False)  # v: (Z, 2)
        points, axes = centred @ v, ("PC 1", "PC 2")
    else:
        points, axes = (
            mu if mu.shape[1] == 2 else torch.cat([mu, torch.zeros_like(mu)], 1),
            ("z1", "z2"),
        )
    fig = new_figure(width=5.5, height=4.5)
    ax = fig.add_subplot(1, 1, 1)
    for c in labels.unique().tolist():
        pts = points[labels == c]
        ax.scatter(
            pts[:, 0], pts[:, 1], s=4, alpha=0.6, label=classes[c] if c < len(classes) else str(c)
        )
    ax.set(xlabel=axes[0], ylabel=axes[1], title="test images in latent space (posterior means)")
    ax.legend(markerscale=3, fontsize=7, loc="best")
    return fig
