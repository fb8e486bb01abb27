"""The anomaly nets and scorers: shapes, Deep SVDD's missing biases, AUROC as a ranking
probability, k-NN, the batched latent search, and EfficientGAN's one-pass score."""

from __future__ import annotations

import torch
from torch import nn

from torchdojo.models.anomaly import ConvAutoencoder, DeepSVDDNet, Encoder, JointDiscriminator
from torchdojo.models.gan import DCGANDiscriminator, DCGANGenerator
from torchdojo.runs.anomaly import (
    auroc,
    efficientgan_scores,
    gan_residual_score,
    knn_scores,
    latent_search,
    one_class_split,
    to_signed_unit,
)


def test_shapes_of_the_three_players_and_the_autoencoder() -> None:
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    E, D = Encoder(latent_dim=5, width=4), JointDiscriminator(latent_dim=5, width=4, hidden=16)  # noqa: N806
    z = E(x)
    logit, feature = D(x, z)
    assert z.shape == (3, 5) and logit.shape == (3, 1) and feature.shape == (3, 16)
    recon = ConvAutoencoder(latent_dim=5, width=4)(x)
    assert recon.shape == x.shape and recon.abs().max() <= 1  # tanh output


def test_deep_svdd_has_no_bias_and_no_affine_norm() -> None:
    net = DeepSVDDNet(rep_dim=6, width=4)
    assert not [n for n, _ in net.named_parameters() if "bias" in n]
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.affine for m in norms)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 6) and net.center.shape == (6,)


def pairwise_auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    diff = scores[labels == 1][:, None] - scores[labels == 0][None, :]
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def test_auroc_is_the_pairwise_ranking_probability_at_any_scale() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (200,), generator=g)
    scores = torch.randn(200, generator=g) + labels * 0.8
    expected = pairwise_auroc(scores, labels)
    assert 0.6 < expected < 0.95
    for transformed in (scores, 500 + 3 * scores, scores.exp()):  # order-preserving
        assert abs(auroc(transformed, labels) - expected) < 1e-6
    assert abs(auroc(-scores, labels) - (1 - expected)) < 1e-6


def test_one_class_split_labels_and_subsets() -> None:
    x = torch.arange(10 * 4).view(10, 1, 2, 2).to(torch.uint8)
    y = torch.tensor([0, 1, 2, 7, 8, 7, 8, 2, 7, 5])
    data = one_class_split(
        to_signed_unit(x), y, to_signed_unit(x), y, [7, 8], test_classes=[2, 7, 8], max_train=3
    )
    assert len(data.train) == 3 and set(y[data.train_index].tolist()) <= {7, 8}
    assert set(data.test_classes.tolist()) == {2, 7, 8}
    assert torch.equal(data.is_anomaly, (data.test_classes == 2).long())
    assert data.train.min() >= -1 and data.train.max() <= 1


def test_knn_score_is_zero_on_training_points_and_grows_with_distance() -> None:
    train = torch.randn(50, 8, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(
        knn_scores(train, train[:5], k=1), torch.zeros(5), atol=5e-3
    )  # cdist by matmul
    far = train[:5] + 10
    assert (knn_scores(train, far, k=3) > knn_scores(train, train[:5] + 0.1, k=3)).all()


def test_gan_score_formula_by_hand() -> None:
    x, fake = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    fx, ff = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    assert torch.allclose(
        gan_residual_score(x, fake, fx, ff, 0.1), torch.tensor([0.9 * 4 + 0.1 * 3])
    )


def small_gan() -> tuple[DCGANGenerator, DCGANDiscriminator]:
    torch.manual_seed(0)
    return DCGANGenerator(z_dim=6, width=4).eval(), DCGANDiscriminator(width=4).eval()


def test_latent_search_lowers_the_score_and_images_do_not_interact() -> None:
    G, D = small_gan()  # noqa: N806
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    start, _ = latent_search(G, D, x, steps=0, lr=0.05, lambda_disc=0.1, seed=3)
    end, fake = latent_search(G, D, x, steps=15, lr=0.05, lambda_disc=0.1, seed=3)
    assert fake.shape == x.shape and (end < start).all()
    # the batch is only a speed-up: other images in the batch do not change image 0's score
    others = torch.cat([x[:1], -x[1:]])
    again, _ = latent_search(G, D, others, steps=15, lr=0.05, lambda_disc=0.1, seed=3)
    assert torch.allclose(again[:1], end[:1], rtol=1e-4) and not torch.allclose(again, end)
    assert all(p.requires_grad for p in G.parameters())  # restored for training


def test_efficientgan_scores_in_one_pass() -> None:
    G, _ = small_gan()  # noqa: N806
    E, D = Encoder(latent_dim=6, width=4).eval(), JointDiscriminator(latent_dim=6, width=4).eval()  # noqa: N806
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    scores, recon = efficientgan_scores(E, G, D, x, lambda_disc=0.1)
    assert scores.shape == (5,) and recon.shape == x.shape and torch.isfinite(scores).all()
    expected = gan_residual_score(x, recon, D(x, E(x))[1], D(recon, E(x))[1], 0.1)
    assert torch.allclose(scores, expected.detach(), rtol=1e-5)
