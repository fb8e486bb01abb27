"""Anomaly detection: train on normal images only, then score test images; higher = stranger.

Five scorers, each timed per image (CPU seconds) and judged by AUROC (torchmetrics):

- ``ae``: a convolutional autoencoder's reconstruction error.
- ``deep-svdd``: the squared distance of Deep SVDD's representation to its centre c (Ruff et
  al., 2018), c the mean representation of the training images before training.
- ``knn``: the mean distance to the k nearest training images, on MobileNetV2 ImageNet
  features (offline weights at ``$TORCH_HOME``) or on raw pixels.
- ``anogan``: AnoGAN's latent search (Schlegl et al., 2017): for each test image, N Adam steps
  on z minimise ``(1 - lambda) * |x - G(z)|_1 + lambda * |f(x) - f(G(z))|_1`` (f: the
  discriminator's penultimate feature, lambda = 0.1 as in the paper and seed 003 ch6); the
  final loss is the score. Batched: images do not interact (G and D in eval mode).
- ``efficientgan``: the same score in one pass, with z = E(x) from the BiGAN encoder and f the
  joint discriminator's feature of (x, z) (Zenati et al., 2018); E and G are optionally also
  trained on the cycle term ``|x - G(E(x))|_1`` (``cycle_weight``, ALICE, Li et al., 2017).

Taught in lessons/25_anomaly.py. Recipes: anomaly-mnist, anomaly-folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from torchmetrics.functional.classification import binary_auroc

from torchdojo.data.image_folder import BadFile
from torchdojo.engine import Loaders, StepOutput, TensorLoader, Trainer
from torchdojo.models.anomaly import ConvAutoencoder, DeepSVDDNet, Encoder, JointDiscriminator
from torchdojo.models.gan import DCGANDiscriminator, DCGANGenerator

METHODS = ("ae", "deep-svdd", "knn", "efficientgan", "anogan")
FEATURE_SIZE = 64  # MobileNetV2 input side for k-NN features: 28 px upsampled (cost ~ side^2)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SCORE_BATCH = 512

MakeTrainer = Callable[[str, int], Trainer]  # (method name, epochs) -> a fresh Trainer


@dataclass(frozen=True)
class AnomalyOptions:
    """How the detectors are trained and scored (the recipes' config, minus the data).

    Args:
        epochs: Epochs of the autoencoder and Deep SVDD.
        gan_epochs: Epochs of the two GANs (AnoGAN's and EfficientGAN's).
        batch_size: Training batch size.
        lr: Adam learning rate of the autoencoder and Deep SVDD.
        gan_lr: Adam learning rate of the GAN players (betas 0.5, 0.999).
        latent_dim: Width of z (GANs) and of the autoencoder's bottleneck.
        width: Channels of the first conv stage of every network.
        anogan_steps: Adam steps on z per test image.
        anogan_lr: Adam learning rate of the latent search.
        lambda_disc: Weight of the discrimination loss in the GAN scores.
        cycle_weight: Weight of EfficientGAN's cycle term ``|x - G(E(x))|_1`` (mean per pixel)
            in the E/G loss; 0 is the plain BiGAN game.
        knn_k: Neighbours averaged by k-NN.
        knn_features: ``mobilenet`` (ImageNet features) or ``pixels``.
    """

    epochs: int = 5
    gan_epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    gan_lr: float = 2e-4
    latent_dim: int = 20
    width: int = 32
    anogan_steps: int = 100
    anogan_lr: float = 0.05
    lambda_disc: float = 0.1
    cycle_weight: float = 30.0
    knn_k: int = 1
    knn_features: str = "mobilenet"


@dataclass
class OneClassData:
    """Normal training images and labelled test images, all (N, C, 28, 28) in [-1, 1].

    Args:
        train: Normal images only.
        test: Test images.
        is_anomaly: (N_test,) 1 for an anomaly, 0 for a normal test image.
        test_classes: (N_test,) the original class of each test image.
        train_index: Rows of the full training set kept in ``train``.
        test_index: Rows of the full test set kept in ``test``.
    """

    train: Tensor
    test: Tensor
    is_anomaly: Tensor
    test_classes: Tensor
    train_index: Tensor
    test_index: Tensor


@dataclass
class Scored:
    """One method's result: scores, AUROC, seconds per image, reconstructions (or None)."""

    scores: Tensor
    auroc: float
    seconds_per_image: float
    recon: Tensor | None = None


def to_signed_unit(x: Tensor) -> Tensor:
    """uint8 images -> float in [-1, 1] (the range of the generators' tanh)."""
    return x.float() / 127.5 - 1.0


def one_class_split(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    normal: Sequence[int],
    *,
    test_classes: Sequence[int] = (),
    max_train: int | None = None,
    seed: int = 0,
) -> OneClassData:
    """Keep the training images of the ``normal`` classes (a seeded subset of ``max_train``
    when given); label the test images of other classes (only ``test_classes`` when given,
    e.g. the book's 2, 7, 8) as anomalies."""
    normal_t = torch.tensor(list(normal))
    train_index = torch.isin(train_y, normal_t).nonzero().flatten()
    if max_train is not None and max_train < len(train_index):
        order = torch.randperm(len(train_index), generator=torch.Generator().manual_seed(seed))
        train_index = train_index[order[:max_train].sort().values]
    keep = torch.isin(test_y, torch.tensor(list(test_classes))) if test_classes else None
    test_index = keep.nonzero().flatten() if keep is not None else torch.arange(len(test_y))
    return OneClassData(
        train=train_x[train_index],
        test=test_x[test_index],
        is_anomaly=(~torch.isin(test_y[test_index], normal_t)).long(),
        test_classes=test_y[test_index],
        train_index=train_index,
        test_index=test_index,
    )


def auroc(scores: Tensor, is_anomaly: Tensor) -> float:
    """Area under the ROC curve of ``scores`` ranking anomalies (1) above normals (0).

    torchmetrics reads scores outside [0, 1] as logits and squashes them with a sigmoid, which
    flattens scores like 550 vs 560 into ties (AUROC 0.5); a min-max rescale in float64 keeps
    the order, and the order is all AUROC depends on."""
    s = scores.double()
    span = (s.max() - s.min()).clamp_min(1e-300)
    return float(binary_auroc((s - s.min()) / span, is_anomaly.long()))


def _loader(x: Tensor, *, batch_size: int, seed: int, target: Tensor | None = None) -> Loaders:
    y = target if target is not None else torch.zeros(len(x))
    return Loaders(
        TensorLoader(x, y, batch_size=batch_size, seed=seed, drop_last=len(x) > batch_size)
    )


def _adam(params: Any, lr: float, *, gan: bool = False, weight_decay: float = 0.0) -> Any:
    betas = (0.5, 0.999) if gan else (0.9, 0.999)
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)


# ------------------------------------------------------------------------------ training
def train_autoencoder(
    trainer: Trainer, x: Tensor, opts: AnomalyOptions, *, seed: int
) -> ConvAutoencoder:
    """Fit the autoencoder to reconstruct ``x`` (MSE): the default step on ``(x, x)`` batches."""
    model = ConvAutoencoder(latent_dim=opts.latent_dim, width=opts.width, channels=x.shape[1])
    loaders = _loader(x, batch_size=opts.batch_size, seed=seed, target=x)
    trainer.fit(model, loaders, nn.MSELoss(), _adam(model.parameters(), opts.lr))
    return model.eval()


@torch.no_grad()
def init_center(net: DeepSVDDNet, x: Tensor, *, eps: float = 0.1) -> None:
    """Set Deep SVDD's centre c to the mean representation of ``x`` (an initial forward pass);
    coordinates within ``eps`` of 0 move to +-eps, where a zero-weight unit could reach them
    trivially (Ruff et al.'s reference code)."""
    net.train()  # batch statistics, as in training
    reps = torch.cat([net(x[i : i + SCORE_BATCH]) for i in range(0, len(x), SCORE_BATCH)])
    c = reps.mean(0)
    c[(c.abs() < eps) & (c < 0)] = -eps
    c[(c.abs() < eps) & (c >= 0)] = eps
    net.center.copy_(c)


def deep_svdd_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> StepOutput:
    """One step of one-class Deep SVDD: pull the batch's representations towards c."""
    x, _ = batch
    net = trainer.models["svdd"]
    center = cast(DeepSVDDNet, trainer.unwrapped_models["svdd"]).center
    with trainer.autocast():
        loss = (net(x) - center).pow(2).sum(1).mean()
    trainer.backward(loss)
    trainer.step_optimizer("svdd")
    return StepOutput(loss=loss.detach(), batch_size=len(x))


def train_deep_svdd(trainer: Trainer, x: Tensor, opts: AnomalyOptions, *, seed: int) -> DeepSVDDNet:
    """Fit Deep SVDD on ``x`` (weight decay 1e-6 as the paper's MNIST setting)."""
    net = DeepSVDDNet(
        rep_dim=opts.latent_dim, width=max(opts.width // 4, 2), in_channels=x.shape[1]
    )
    init_center(net, x)
    optimizer = _adam(net.parameters(), opts.lr, weight_decay=1e-6)
    loaders = _loader(x, batch_size=opts.batch_size, seed=seed)
    trainer.fit({"svdd": net}, loaders, optimizer={"svdd": optimizer}, step=deep_svdd_step)
    return net.eval()


def _bce(logits: Tensor, real: bool) -> Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def _z_dim(trainer: Trainer) -> int:
    return cast(DCGANGenerator, trainer.unwrapped_models["G"]).z_dim


def gan_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> StepOutput:
    """AnoGAN's GAN: D on real vs fake images, then G to fool D (non-saturating loss)."""
    x, _ = batch
    G, D = trainer.models["G"], trainer.models["D"]  # noqa: N806
    z = torch.randn(len(x), _z_dim(trainer), device=x.device)
    with trainer.autocast():
        fake = G(z)
        d_loss = _bce(D(x), True) + _bce(D(fake.detach()), False)
    trainer.backward(d_loss)
    trainer.step_optimizer("D")
    with trainer.autocast():
        g_loss = _bce(D(fake), True)
    trainer.backward(g_loss)
    trainer.step_optimizer("G")
    values = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}
    return StepOutput(loss=(d_loss + g_loss).detach(), batch_size=len(x), values=values)


def efficientgan_step(
    trainer: Trainer, batch: tuple[Tensor, Tensor], *, cycle_weight: float = 0.0
) -> StepOutput:
    """EfficientGAN's three players: D tells (x, E(x)) from (G(z), z); E and G, stepped
    together, make it say the opposite (the BiGAN game, whose optimum has E = G^-1).

    With ``cycle_weight`` > 0, E and G also minimise ``cycle_weight * |x - G(E(x))|_1`` (mean
    per pixel): ALICE's explicit cycle term (Li et al., 2017), which keeps E from collapsing
    onto a few codes that the adversarial game alone tolerates."""
    x, _ = batch
    E, G, D = trainer.models["E"], trainer.models["G"], trainer.models["D"]  # noqa: N806
    z = torch.randn(len(x), _z_dim(trainer), device=x.device)
    with trainer.autocast():
        z_real, x_fake = E(x), G(z)  # (B, z_dim), (B, C, 28, 28)
        d_loss = _bce(D(x, z_real.detach())[0], True) + _bce(D(x_fake.detach(), z)[0], False)
    trainer.backward(d_loss)
    trainer.step_optimizer("D")
    values = {"d_loss": d_loss.detach()}
    with trainer.autocast():
        ge_loss = _bce(D(x, z_real)[0], False) + _bce(D(x_fake, z)[0], True)
        values["ge_loss"] = ge_loss.detach()
        if cycle_weight > 0:
            cycle = (x - G(z_real)).abs().mean()  # no randomness: the global RNG is untouched
            ge_loss = ge_loss + cycle_weight * cycle
            values["cycle"] = cycle.detach()
    trainer.backward(ge_loss)
    trainer.step_optimizer("G")
    trainer.step_optimizer("E")
    return StepOutput(loss=(d_loss + ge_loss).detach(), batch_size=len(x), values=values)


def train_gan(
    trainer: Trainer, x: Tensor, opts: AnomalyOptions, *, seed: int
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """Fit AnoGAN's DCGAN (the 28 px nets of :mod:`torchdojo.models.gan`) on ``x``."""
    G = DCGANGenerator(z_dim=opts.latent_dim, channels=x.shape[1], width=opts.width)  # noqa: N806
    D = DCGANDiscriminator(channels=x.shape[1], width=opts.width)  # noqa: N806
    optimizers = {"D": _adam(D.parameters(), opts.gan_lr, gan=True)}
    optimizers["G"] = _adam(G.parameters(), opts.gan_lr, gan=True)
    loaders = _loader(x, batch_size=opts.batch_size, seed=seed)
    trainer.fit({"G": G, "D": D}, loaders, optimizer=optimizers, step=gan_step)
    return G.eval(), D.eval()


def train_efficientgan(
    trainer: Trainer, x: Tensor, opts: AnomalyOptions, *, seed: int
) -> tuple[Encoder, DCGANGenerator, JointDiscriminator]:
    """Fit EfficientGAN's E, G (the same generator as AnoGAN's) and D(x, z) on ``x``, with
    ``opts.cycle_weight`` times the cycle term ``|x - G(E(x))|_1`` in the E/G loss."""
    c, zd, w = x.shape[1], opts.latent_dim, opts.width
    E = Encoder(latent_dim=zd, width=w, in_channels=c)  # noqa: N806
    G = DCGANGenerator(z_dim=zd, channels=c, width=w)  # noqa: N806
    D = JointDiscriminator(latent_dim=zd, width=w, in_channels=c)  # noqa: N806
    models: dict[str, nn.Module] = {"E": E, "G": G, "D": D}
    optimizers = {k: _adam(m.parameters(), opts.gan_lr, gan=True) for k, m in models.items()}
    loaders = _loader(x, batch_size=opts.batch_size, seed=seed)
    step = partial(efficientgan_step, cycle_weight=opts.cycle_weight)
    trainer.fit(models, loaders, optimizer=optimizers, step=step)
    return E.eval(), G.eval(), D.eval()


# ------------------------------------------------------------------------------- scoring
def dcgan_feature(D: DCGANDiscriminator, x: Tensor) -> Tensor:  # noqa: N803
    """The DCGAN discriminator's penultimate feature map, flattened: (B, 2w * 7 * 7) at 28 px."""
    return D.features(x)


def _batched(fn: Callable[[Tensor], Any], x: Tensor, batch: int = SCORE_BATCH) -> list[Any]:
    return [fn(x[i : i + batch]) for i in range(0, len(x), batch)]


@torch.no_grad()
def autoencoder_scores(model: ConvAutoencoder, x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean squared reconstruction error per image (B,), and the reconstructions."""
    recon = torch.cat(_batched(model, x))
    return (x - recon).pow(2).flatten(1).mean(1), recon


@torch.no_grad()
def deep_svdd_scores(net: DeepSVDDNet, x: Tensor) -> Tensor:
    """Squared distance of each representation to the centre c, (B,)."""
    reps = torch.cat(_batched(net, x))
    return (reps - net.center).pow(2).sum(1)


def knn_scores(train_features: Tensor, test_features: Tensor, *, k: int = 1) -> Tensor:
    """Mean Euclidean distance of each test feature to its ``k`` nearest training features."""
    k = min(k, len(train_features))
    chunks = [
        torch.cdist(chunk, train_features).topk(k, dim=1, largest=False).values.mean(1)
        for chunk in test_features.split(SCORE_BATCH)
    ]
    return torch.cat(chunks)


def load_feature_net() -> nn.Module:
    """MobileNetV2's ImageNet feature extractor, offline from ``$TORCH_HOME``; outputs (B, 1280)."""
    from torchdojo.models import create_model

    net = create_model("tv:mobilenet_v2", weights="IMAGENET1K_V1")
    body = cast(nn.Module, net.features)
    return nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


@torch.no_grad()
def image_features(x: Tensor, kind: str, net: nn.Module | None = None) -> Tensor:
    """Features for k-NN: raw pixels (B, C*H*W), or MobileNetV2's (B, 1280) of the image
    upsampled to FEATURE_SIZE, grey repeated to RGB, ImageNet-normalized."""
    if kind == "pixels":
        return x.flatten(1)
    net = load_feature_net() if net is None else net
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def one(batch: Tensor) -> Tensor:
        rgb = ((batch + 1) / 2).expand(-1, 3, -1, -1) if batch.shape[1] == 1 else (batch + 1) / 2
        big = F.interpolate(rgb, size=FEATURE_SIZE, mode="bilinear", align_corners=False)
        return net((big - mean) / std)  # (B, 1280)

    return torch.cat(_batched(one, x, 256))


def gan_residual_score(
    x: Tensor, fake: Tensor, feat_x: Tensor, feat_fake: Tensor, lambda_disc: float
) -> Tensor:
    """``(1 - lambda) * |x - fake|_1 + lambda * |f(x) - f(fake)|_1`` per image, (B,)."""
    residual = (x - fake).abs().flatten(1).sum(1)
    discrimination = (feat_x - feat_fake).abs().sum(1)
    return (1 - lambda_disc) * residual + lambda_disc * discrimination


@torch.no_grad()
def efficientgan_scores(
    E: Encoder,
    G: DCGANGenerator,
    D: JointDiscriminator,
    x: Tensor,
    *,
    lambda_disc: float,  # noqa: N803
) -> tuple[Tensor, Tensor]:
    """EfficientGAN's one-pass score per image (B,) and the reconstructions G(E(x))."""

    def one(batch: Tensor) -> tuple[Tensor, Tensor]:
        z = E(batch)
        fake = G(z)
        score = gan_residual_score(batch, fake, D(batch, z)[1], D(fake, z)[1], lambda_disc)
        return score, fake

    parts = _batched(one, x)
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def latent_search(
    G: DCGANGenerator,  # noqa: N803
    D: DCGANDiscriminator,  # noqa: N803
    x: Tensor,
    *,
    steps: int,
    lr: float,
    lambda_disc: float,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """AnoGAN: ``steps`` Adam steps on z for a batch of images at once; returns the final
    scores (B,) and G(z). Each image's loss depends on its own z only (G and D in eval mode),
    so summing the losses gives every z its own gradient."""
    for p in [*G.parameters(), *D.parameters()]:
        p.requires_grad_(False)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    z = torch.randn(len(x), G.z_dim, generator=generator, device=x.device).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    with torch.no_grad():
        feat_x = dcgan_feature(D, x)
    for _ in range(steps):
        fake = G(z)
        loss = gan_residual_score(x, fake, feat_x, dcgan_feature(D, fake), lambda_disc)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
    with torch.no_grad():
        fake = G(z)
        score = gan_residual_score(x, fake, feat_x, dcgan_feature(D, fake), lambda_disc)
    for p in [*G.parameters(), *D.parameters()]:
        p.requires_grad_(True)
    return score, fake


def anogan_scores(
    G: DCGANGenerator,
    D: DCGANDiscriminator,
    x: Tensor,
    opts: AnomalyOptions,  # noqa: N803
) -> tuple[Tensor, Tensor]:
    """AnoGAN's score per image (B,) and its best reconstruction, batch by batch."""
    parts = [
        latent_search(
            G,
            D,
            x[i : i + SCORE_BATCH],
            steps=opts.anogan_steps,
            lr=opts.anogan_lr,
            lambda_disc=opts.lambda_disc,
            seed=i,
        )
        for i in range(0, len(x), SCORE_BATCH)
    ]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


# ---------------------------------------------------------------------------- one method
def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the CPU seconds it took: this process's user + system time, steadier than
    the wall clock on a shared machine (on one thread it is the compute a scorer needs)."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


Timed = tuple[Tensor, Tensor | None, float]  # scores, reconstructions, CPU seconds


def _ae(data: OneClassData, opts: AnomalyOptions, make: MakeTrainer, seed: int) -> Timed:
    model = train_autoencoder(make("ae", opts.epochs), data.train, opts, seed=seed)
    (scores, recon), took = _timed(lambda: autoencoder_scores(model, data.test))
    return scores, recon, took


def _svdd(data: OneClassData, opts: AnomalyOptions, make: MakeTrainer, seed: int) -> Timed:
    net = train_deep_svdd(make("deep-svdd", opts.epochs), data.train, opts, seed=seed)
    scores, took = _timed(lambda: deep_svdd_scores(net, data.test))
    return scores, None, took


def _efficientgan(data: OneClassData, opts: AnomalyOptions, make: MakeTrainer, seed: int) -> Timed:
    E, G, D = train_efficientgan(make("efficientgan", opts.gan_epochs), data.train, opts, seed=seed)  # noqa: N806
    fn = lambda: efficientgan_scores(E, G, D, data.test, lambda_disc=opts.lambda_disc)  # noqa: E731
    (scores, recon), took = _timed(fn)
    return scores, recon, took


def _anogan(data: OneClassData, opts: AnomalyOptions, make: MakeTrainer, seed: int) -> Timed:
    G, D = train_gan(make("anogan", opts.gan_epochs), data.train, opts, seed=seed)  # noqa: N806
    (scores, recon), took = _timed(lambda: anogan_scores(G, D, data.test, opts))
    return scores, recon, took


def _knn(
    data: OneClassData, opts: AnomalyOptions, features: tuple[Tensor, Tensor, float] | None
) -> Timed:
    if features is None:
        net = load_feature_net() if opts.knn_features == "mobilenet" else None
        test_f, took_f = _timed(lambda: image_features(data.test, opts.knn_features, net))
        train_f = image_features(data.train, opts.knn_features, net)
        features = (train_f, test_f, took_f / max(len(data.test), 1))
    train_f, test_f, per_image = features
    scores, took = _timed(lambda: knn_scores(train_f, test_f, k=opts.knn_k))
    return scores, None, took + per_image * len(data.test)


_TRAINED = {"ae": _ae, "deep-svdd": _svdd, "efficientgan": _efficientgan, "anogan": _anogan}


def run_method(
    method: str,
    data: OneClassData,
    opts: AnomalyOptions,
    make_trainer: MakeTrainer,
    *,
    seed: int,
    features: tuple[Tensor, Tensor, float] | None = None,
) -> Scored:
    """Train ``method`` on ``data.train`` and score ``data.test``; CPU time per test image.

    ``features`` (k-NN only): precomputed (train, test) features and the seconds per image
    their extraction cost, added to k-NN's time; computed here when None.
    """
    if method == "knn":
        scores, recon, took = _knn(data, opts, features)
    elif method in _TRAINED:
        scores, recon, took = _TRAINED[method](data, opts, make_trainer, seed)
    else:
        raise ValueError(f"unknown anomaly method {method!r}; choose from {', '.join(METHODS)}")
    return Scored(scores, auroc(scores, data.is_anomaly), took / max(len(data.test), 1), recon)


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small HTML table, every cell escaped; floats shown with 3 decimals."""
    import html

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


# ------------------------------------------------------------------------ your own folder
SIDE = 28  # the detectors' input side: folder images are resized to SIDE x SIDE


def read_image_folder(
    folder: Path, *, channels: int = 1
) -> tuple[Tensor, list[Path], list[BadFile]]:
    """Every image under ``folder`` (recursively), resized to 28x28, in [-1, 1]: (N, C, 28, 28),
    the files read, and the files that could not be read with the reason (not fatal)."""
    from PIL import Image

    from torchdojo.data.image_folder import describe_error, is_image_file

    images, paths, bad = [], [], []
    mode = "L" if channels == 1 else "RGB"
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p)):
        try:
            with Image.open(path) as img:
                small = img.convert(mode).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types; each is one bad file
            bad.append(BadFile(str(path), describe_error(exc, path)))
            continue
        array = torch.frombuffer(bytearray(small.tobytes()), dtype=torch.uint8)
        images.append(array.view(SIDE, SIDE, channels).permute(2, 0, 1))  # (C, 28, 28)
        paths.append(path)
    x = torch.stack(images) if images else torch.zeros(0, channels, SIDE, SIDE, dtype=torch.uint8)
    return to_signed_unit(x), paths, bad


def write_demo_folder(
    root: Path, *, n_train: int = 64, n_normal: int = 12, n_anomaly: int = 12, seed: int = 0
) -> tuple[Path, Path]:
    """A synthetic stand-in for your folders: normal images hold a horizontal bar, anomalies a
    vertical one (``anomaly_*.png``), and the folder to score has one corrupt file."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    train, score = root / "train", root / "score"
    for folder in (train, score):
        folder.mkdir(parents=True, exist_ok=True)

    def draw(vertical: bool) -> Image.Image:
        x = torch.randint(0, 50, (SIDE, SIDE), generator=g, dtype=torch.uint8)
        at = int(torch.randint(4, SIDE - 7, (1,), generator=g))
        if vertical:
            x[4:-4, at : at + 3] = 255
        else:
            x[at : at + 3, 4:-4] = 255
        return Image.fromarray(x.numpy())

    for i in range(n_train):
        draw(False).save(train / f"normal_{i:03d}.png")
    for i in range(n_normal):
        draw(False).save(score / f"normal_{i:03d}.png")
    for i in range(n_anomaly):
        draw(True).save(score / f"anomaly_{i:03d}.png")
    (score / "broken.png").write_bytes(b"not a png")
    return train, score
