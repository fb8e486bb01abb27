# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 22 · GANs: a minimax game, solved on a line, then DCGAN and SAGAN
#
# A generative adversarial network (Goodfellow et al., 2014) trains two nets against each
# other: a generator `G` turns noise into samples, a discriminator `D` tells real samples from
# generated ones. On a 1-D toy every quantity of the theory can be computed exactly, so this
# lesson checks the theory first, then takes the ideas that make image GANs train (DCGAN,
# then Self-Attention GAN) one at a time.
#
# **You will learn**
# - the minimax value `V(D, G)` and the optimal discriminator `D* = p_data / (p_data + p_g)`,
#   learned by a logistic regression and compared with the formula;
# - why `V(D*, G) = -log 4 + 2 JSD(p_data || p_g)`: the game minimises a divergence;
# - why G trains on `-log D(G(z))` (non-saturating) instead of `log(1 - D(G(z)))`;
# - DCGAN's nets (transposed convs up, strided convs down, batch norm, tanh);
# - SAGAN's three ideas in isolation: spectral norm (largest singular value 1),
#   self-attention (each row of the map sums to 1), and the hinge loss, by hand.
#
# Recipes: `dcgan-mnist`, `sagan-mnist`. Models: `torchdojo.models.gan`; blocks:
# `torchdojo.nn.generative`. Seed: 003 ch5 (DCGAN and SAGAN on 64x64 digits; spectral norm
# now lives in `torch.nn.utils.parametrizations`, see docs/crosswalk.md).

# %%
import math

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.nn.utils.parametrizations import spectral_norm

from torchdojo.models.gan import DCGANDiscriminator, DCGANGenerator
from torchdojo.nn.generative import SelfAttention2d, hinge_d_loss, hinge_g_loss
from torchdojo.viz import start_lesson

LESSON = start_lesson("22_gans")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
torch.set_num_threads(1)

# %% [markdown]
# ## 1. The game on a line, with the generator held still
#
# Real data: `N(2, 0.5^2)`. A fixed "generator" gives `N(0, 1)`. `D` maximises
#
# `V(D, G) = E_data[log D(x)] + E_g[log(1 - D(x))]`,
#
# whose maximiser, point by point, is `D*(x) = p_data(x) / (p_data(x) + p_g(x))`. For two
# Gaussians `log(D* / (1 - D*)) = log p_data - log p_g` is a quadratic in `x`, so a logistic
# regression on `(x, x^2)` can represent `D*` exactly: we train one on samples and compare.

# %%
data = torch.distributions.Normal(2.0, 0.5)
fixed_g = torch.distributions.Normal(0.0, 1.0)


def optimal_d(
    x: torch.Tensor, p: torch.distributions.Normal, q: torch.distributions.Normal
) -> torch.Tensor:
    """D*(x) = p(x) / (p(x) + q(x)), computed stably from log densities."""
    return torch.sigmoid(p.log_prob(x) - q.log_prob(x))


class QuadraticD(nn.Module):
    """A logistic regression on (x, x^2): exactly the family D* of two Gaussians lives in."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.stack([x, x * x], dim=-1)).squeeze(-1)  # logits (N,)


d = QuadraticD()
real, fake = data.sample((20000,)), fixed_g.sample((20000,))
opt = torch.optim.LBFGS(d.parameters(), max_iter=50, line_search_fn="strong_wolfe")


def closure() -> torch.Tensor:
    """-V(D, G) on the samples: the discriminator's loss is minus the game's value."""
    opt.zero_grad()
    loss = F.binary_cross_entropy_with_logits(d(real), torch.ones(20000)) + (
        F.binary_cross_entropy_with_logits(d(fake), torch.zeros(20000))
    )
    loss.backward()
    return loss


opt.step(closure)  # a convex problem: L-BFGS solves it in a few dozen steps
# the exact logit: log p_data - log p_g = -1.5 x^2 + 8 x - (8 - log 2)
(w1, w2), bias = d.linear.weight.detach()[0].tolist(), d.linear.bias.item()
print(f"learned logit {w2:.2f} x^2 + {w1:.2f} x + {bias:.2f}; exact -1.50 x^2 + 8.00 x - 7.31")
grid = torch.linspace(-2.5, 4.0, 300)
with torch.no_grad():
    learned = torch.sigmoid(d(grid))
exact = optimal_d(grid, data, fixed_g)
# where the data live, D matches D*; far in the tails neither sample says much
mixture = 0.5 * (data.log_prob(grid).exp() + fixed_g.log_prob(grid).exp())
gap = float(((learned - exact).abs() * mixture).sum() * (grid[1] - grid[0]))
print(f"mean |D_learned - D*| under the samples' density: {gap:.4f}")
assert gap < 0.01  # the sampled game finds the formula's discriminator
assert abs(w2 + 1.5) < 0.3 and abs(w1 - 8.0) < 1.0

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(grid, data.log_prob(grid).exp(), label="p_data = N(2, 0.5²)")
ax.plot(grid, fixed_g.log_prob(grid).exp(), label="p_g = N(0, 1)")
ax.plot(grid, exact, "k--", label="D* (formula)")
ax.plot(grid, learned, "r", lw=1, label="D (trained on samples)")
ax.set(xlabel="x", title="the optimal discriminator is a density ratio")
ax.legend(fontsize=8)
save(fig, "optimal_discriminator.png")

# %% [markdown]
# ## 2. At D*, the game measures a divergence
#
# Putting `D*` into `V` gives `V(D*, G) = -log 4 + 2 JSD(p_data || p_g)`, where the
# Jensen-Shannon divergence is 0 exactly when `p_g = p_data`. So the generator, minimising `V`
# against the best `D`, minimises the JSD; at the optimum `D* = 1/2` everywhere and
# `V = -log 4`. We check both by numerical integration on a fine grid.

# %%
xs = torch.linspace(-8.0, 10.0, 200_001, dtype=torch.float64)
dx = float(xs[1] - xs[0])
data64, g64 = torch.distributions.Normal(2.0, 0.5), torch.distributions.Normal(0.0, 1.0)
p, q = data64.log_prob(xs).exp(), g64.log_prob(xs).exp()
d_star = p / (p + q)
value = float(((p * d_star.log() + q * (1 - d_star).log()) * dx).sum())
m = (p + q) / 2
jsd = float((0.5 * (p * (p / m).log() + q * (q / m).log()) * dx).sum())
print(f"V(D*, G) = {value:.4f};  -log 4 + 2 JSD = {-math.log(4) + 2 * jsd:.4f};  JSD = {jsd:.4f}")
assert abs(value - (-math.log(4) + 2 * jsd)) < 1e-6
same = optimal_d(xs.float(), data, data)
assert torch.allclose(same, torch.full_like(same, 0.5))  # p_g = p_data: D* = 1/2, V = -log 4

# %% [markdown]
# ## 3. Now let G move: the non-saturating loss
#
# Early in training `D` rejects fakes easily: `D(G(z))` is near 0. The minimax generator loss
# `log(1 - D(G(z)))` then has almost no slope (its gradient w.r.t. D's logit is `-D`), while
# `-log D(G(z))` has the same fixed point and a gradient of `-(1 - D)`, near -1 exactly then.

# %%
logit = torch.tensor(math.log(0.01 / 0.99), requires_grad=True)  # D(G(z)) = 0.01
(saturating,) = torch.autograd.grad(torch.log(1 - torch.sigmoid(logit)), logit)
(non_saturating,) = torch.autograd.grad(-torch.log(torch.sigmoid(logit)), logit)
print(f"d/dlogit: minimax {saturating.item():.3f}, non-saturating {non_saturating.item():.3f}")
assert abs(saturating.item()) < 0.02 and abs(non_saturating.item()) > 0.98

# %% [markdown]
# A generator `G(z) = a z + b` (noise `z ~ N(0, 1)`) against the quadratic `D`, one step each
# in turn, with the non-saturating loss and two learning rates (D's faster: the two time-scale
# rule SAGAN uses). `b` should move to the data's mean 2 and `|a|` to its spread 0.5. It is a
# game, not a descent: the players circle the equilibrium rather than settle on it, so we
# judge the last 200 steps on average.

# %%
torch.manual_seed(0)
g_params = torch.tensor([1.0, 0.0], requires_grad=True)  # a, b: starts at N(0, 1)
d = QuadraticD()
opt_d = torch.optim.Adam(d.parameters(), lr=0.05, betas=(0.0, 0.9))
opt_g = torch.optim.Adam([g_params], lr=0.02, betas=(0.0, 0.9))
trace = []
for _ in range(600 if SMOKE else 2000):
    real = data.sample((256,))
    fake = g_params[0] * torch.randn(256) + g_params[1]
    d_loss = F.binary_cross_entropy_with_logits(d(real), torch.ones(256)) + (
        F.binary_cross_entropy_with_logits(d(fake.detach()), torch.zeros(256))
    )
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = F.binary_cross_entropy_with_logits(d(fake), torch.ones(256))  # -log D(G(z))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    trace.append(g_params.detach().clone())
late = torch.stack(trace[-200:])  # (200, 2): a, b over the last 200 steps
spread, mean = late[:, 0].abs().mean().item(), late[:, 1].mean().item()
print(f"last 200 steps: p_g ~ N({mean:.2f}, {spread:.2f}^2) on average; data N(2.00, 0.50^2)")
assert abs(mean - 2.0) < 0.1 and abs(spread - 0.5) < 0.15

trace_t = torch.stack(trace)
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.plot(trace_t[:, 1], label="b (mean of p_g)")
ax.plot(trace_t[:, 0].abs(), label="|a| (spread of p_g)")
ax.axhline(2.0, color="C0", ls=":")
ax.axhline(0.5, color="C1", ls=":")
ax.set(
    xlabel="step", title="the generator walks to the data (it oscillates: a game, not a descent)"
)
ax.legend(fontsize=8)
save(fig, "generator_walk.png")

# %% [markdown]
# ## 4. DCGAN: the same game with convolutional players
#
# Radford et al. (2015) found the architecture that made image GANs train: `G` upsamples with
# transposed convolutions (noise -> 7x7 -> 14 -> 28 here; -> 64x64 in the book), batch norm and
# ReLU inside, `tanh` out (images in [-1, 1]); `D` mirrors it with strided convolutions and
# LeakyReLU(0.2), no pooling, no fully connected layers. Weights start at N(0, 0.02^2); Adam's
# beta1 drops to 0.5 (less momentum damps the players' oscillation).

# %%
G = DCGANGenerator(z_dim=100, image_size=28, width=64)
D = DCGANDiscriminator(image_size=28, width=64)
z = torch.randn(16, 100)
images = G(z)
assert images.shape == (16, 1, 28, 28) and images.abs().max() <= 1.0
assert D(images).shape == (16,)
x = z.view(16, 100, 1, 1)
for layer in G.net:  # the shapes a noise vector goes through
    x = layer(x)
    if isinstance(layer, nn.ConvTranspose2d):
        print(f"{type(layer).__name__:16s} -> {tuple(x.shape)}")
print(
    f"G: {sum(p.numel() for p in G.parameters()):,} parameters; D: {sum(p.numel() for p in D.parameters()):,}"
)

# %% [markdown]
# ## 5. Spectral normalisation: every layer 1-Lipschitz
#
# SAGAN divides each weight matrix by its largest singular value `sigma`, so no layer can
# stretch its input: `D` cannot become arbitrarily sharp, and its gradients stay useful to `G`.
# `sigma` is estimated by power iteration, one step per training forward. By hand first, then
# `torch.nn.utils.parametrizations.spectral_norm`.

# %%
W = torch.randn(64, 3 * 3 * 32) * 0.5  # a conv weight, flattened to (out, in * kh * kw)
u = torch.randn(64)
for _ in range(30):
    v = F.normalize(W.T @ u, dim=0)
    u = F.normalize(W @ v, dim=0)
sigma_power = float(u @ W @ v)
sigma_svd = float(torch.linalg.matrix_norm(W, ord=2))
print(f"sigma by power iteration {sigma_power:.4f}, by SVD {sigma_svd:.4f}")
assert abs(sigma_power - sigma_svd) / sigma_svd < 1e-3

conv = spectral_norm(nn.Conv2d(32, 64, 3, padding=1))
for _ in range(15):
    conv(torch.randn(2, 32, 8, 8))  # training forwards: one power iteration each
sigma_after = float(torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2))
print(f"largest singular value of the normalised conv: {sigma_after:.4f}")
assert abs(sigma_after - 1.0) < 0.02

# %% [markdown]
# ## 6. Self-attention: each position looks at all the others
#
# A convolution sees a 3x3 neighbourhood; a digit's stroke at the top and at the bottom must
# agree. SAGAN's layer scores every pair of positions (queries x keys, softmax over the keys),
# mixes the values with those weights and adds the result, scaled by `gamma` (starts at 0:
# the layer begins as the identity). Each row of the map is a probability distribution.

# %%
attn_layer = SelfAttention2d(32)
features = torch.randn(1, 32, 14, 14)
attention = attn_layer.attention(features)  # (1, 196, 196)
assert torch.allclose(attention.sum(-1), torch.ones(1, 196), atol=1e-5)
assert torch.equal(attn_layer(features), features)  # gamma = 0: identity at the start
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2), layout="constrained")
axes[0].imshow(attention[0].detach(), cmap="viridis")
axes[0].set(title="attention map (196 x 196)", xlabel="key position", ylabel="query position")
axes[1].imshow(attention[0, 7 * 14 + 7].detach().view(14, 14), cmap="viridis")
axes[1].set(title="where the centre looks (untrained)")
save(fig, "attention_map.png")

# %% [markdown]
# ## 7. The hinge loss, by hand
#
# SAGAN trains `D` on `mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))`: real logits above 1
# and fake logits below -1 cost nothing, so `D` stops pushing samples it already separates.
# `G` minimises `-mean(D(G(z)))`. With real logits (2, 0.5, -1) and fake logits (-3, 0):

# %%
real_logits, fake_logits = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0])
by_hand = (0 + 0.5 + 2) / 3 + (0 + 1) / 2
assert math.isclose(hinge_d_loss(real_logits, fake_logits).item(), by_hand, rel_tol=1e-6)
assert math.isclose(hinge_g_loss(fake_logits).item(), 1.5, rel_tol=1e-6)
print(f"hinge D loss {by_hand:.4f}; G loss 1.5")

# %% [markdown]
# ## 8. Putting it together
#
# `torchdojo run dcgan-mnist` trains the DCGAN pair on MNIST (`--set image_size=64` for the
# book's size, `--set dataset=fashion-mnist`); `torchdojo run sagan-mnist` the same nets with
# spectral norm, self-attention, the hinge loss and two learning rates (D 4x faster: TTUR).
# Each run draws the same fixed noise through G after every epoch (report and TensorBoard)
# and logs D's accuracy on real and fake images: pinned at 1 means G has stopped learning.
# An untrained G draws noise:

# %%
with torch.no_grad():
    samples = G(torch.randn(16, 100))
fig, axes = plt.subplots(2, 8, figsize=(8, 2.2))
for ax, image in zip(axes.flat, samples, strict=True):
    ax.imshow(image[0] * 0.5 + 0.5, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
fig.suptitle("an untrained DCGAN generator")
save(fig, "untrained_samples.png")
print("lesson 22 done")
