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
# # 23 · Variational autoencoders: a latent space you can sample from
#
# An autoencoder squeezes an image into a code and rebuilds it; nothing makes its codes fill a
# region you could sample new images from. A variational autoencoder (Kingma & Welling, 2013)
# makes the encoder output a *distribution* `q(z|x) = N(mu, sigma^2)`, decodes a sample of it,
# and pays a KL penalty for straying from the prior `N(0, I)`. The loss is the negative ELBO,
# an upper bound on `-log p(x)`. Two pieces make it trainable; both are checked here.
#
# **You will learn**
# - the reparameterisation trick: `z = mu + sigma * eps`, so gradients reach `mu` and `sigma`
#   (checked against the exact gradient of a known expectation);
# - the KL term in closed form, `0.5 * sum(sigma^2 + mu^2 - 1 - log sigma^2)`, against Monte
#   Carlo;
# - training a VAE with a 2-D latent space on digits: the latent map, coloured by class;
# - decoding a straight line between two codes (interpolation) and samples from the prior.
#
# Data: MNIST from `$TORCHDOJO_DATA` (else the 5,000 embedded MNIST images). Recipe:
# `vae-mnist`. Model: `torchdojo.models.vae`; pieces: `torchdojo.nn.generative`. Seed: 000's
# planned VAE chapter.

# %%
import matplotlib.pyplot as plt
import torch

from torchdojo.data.mnist import resolve_idx_dataset
from torchdojo.models.vae import VAE
from torchdojo.nn.generative import gaussian_kl, reparameterize
from torchdojo.viz import start_lesson

LESSON = start_lesson("23_vae")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
torch.set_num_threads(1)

# %% [markdown]
# ## 1. The reparameterisation trick
#
# We want `d/dmu` and `d/dsigma` of `E_{z ~ N(mu, sigma^2)}[f(z)]`. Sampling `z` directly cuts
# the graph: a random draw has no derivative. Writing `z = mu + sigma * eps` with
# `eps ~ N(0, 1)` puts the randomness outside, so the Monte Carlo average is differentiable.
# For `f(z) = z^2` the expectation is `mu^2 + sigma^2`, so the exact gradients are `2 mu` and
# `2 sigma`; the reparameterised estimate must match them.

# %%
mu = torch.tensor([0.8], requires_grad=True)
logvar = torch.tensor([2 * torch.log(torch.tensor(1.5)).item()], requires_grad=True)  # sigma 1.5
g = torch.Generator().manual_seed(0)
z = reparameterize(mu.expand(200_000), logvar.expand(200_000), generator=g)
(z**2).mean().backward()
sigma = torch.exp(0.5 * logvar).item()
grad_sigma = logvar.grad.item() * 2 / sigma  # d/dsigma = d/dlogvar * dlogvar/dsigma = * 2/sigma
print(f"d/dmu    {mu.grad.item():.3f}  (exact {2 * mu.item():.3f})")
print(f"d/dsigma {grad_sigma:.3f}  (exact {2 * sigma:.3f})")
assert abs(mu.grad.item() - 2 * mu.item()) < 0.03
assert abs(grad_sigma - 2 * sigma) < 0.05

# %% [markdown]
# ## 2. The KL term: closed form against Monte Carlo
#
# `KL(q || p) = E_q[log q(z) - log p(z)]`. For a diagonal Gaussian `q` and the standard normal
# `p` the expectation has a closed form per dimension,
# `0.5 * (sigma^2 + mu^2 - 1 - log sigma^2)`, zero exactly at `mu = 0, sigma = 1`. We estimate
# the expectation from samples and compare.

# %%
mu_q, logvar_q = torch.tensor([[1.0, -0.5, 0.0]]), torch.tensor([[0.3, -1.2, 0.0]])
samples = reparameterize(mu_q.expand(200_000, 3), logvar_q.expand(200_000, 3), generator=g)
q = torch.distributions.Normal(mu_q, torch.exp(0.5 * logvar_q))
p = torch.distributions.Normal(0.0, 1.0)
monte_carlo = (q.log_prob(samples) - p.log_prob(samples)).sum(1).mean().item()
closed = gaussian_kl(mu_q, logvar_q).item()
print(f"KL closed form {closed:.4f}, Monte Carlo {monte_carlo:.4f}")
assert abs(closed - monte_carlo) < 0.02
assert gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3)).item() == 0.0  # q = p: no cost

# %% [markdown]
# ## 3. A VAE with a 2-D latent space
#
# With `z_dim = 2` the latent space is a plane we can draw. The encoder has two strided convs
# (28 -> 14 -> 7) and a linear layer to `(mu, log sigma^2)`; the decoder mirrors it and outputs
# a Bernoulli logit per pixel. The loss per image, in nats: binary cross-entropy of the pixels
# (scaled to [0, 1]) plus the KL term.

# %%
digits = resolve_idx_dataset("MNIST", "train", download=False)
test = resolve_idx_dataset("MNIST", "test", download=False)
print(digits.source)
n_train = 1024 if SMOKE else len(digits)
x_train = digits.x[:n_train].float() / 127.5 - 1  # (N, 1, 28, 28) in [-1, 1]
x_test, y_test = test.x[:1000].float() / 127.5 - 1, test.y[:1000]

torch.manual_seed(0)
vae = VAE(z_dim=2, width=16 if SMOKE else 32)
opt = torch.optim.Adam(vae.parameters(), lr=2e-3)


def negative_elbo(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstruction (BCE, summed over pixels) and KL, each averaged over the batch."""
    logits, mu, logvar = model(x)
    recon = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, (x + 1) / 2, reduction="none"
    )
    return recon.flatten(1).sum(1).mean(), gaussian_kl(mu, logvar).mean()


with torch.no_grad():
    start = sum(negative_elbo(vae, x_test)).item()
history = []
epochs = 2 if SMOKE else 10
for epoch in range(epochs):
    order = torch.randperm(n_train)
    for i in range(0, n_train, 128):
        recon, kl = negative_elbo(vae, x_train[order[i : i + 128]])
        opt.zero_grad()
        (recon + kl).backward()
        opt.step()
    with torch.no_grad():
        recon, kl = negative_elbo(vae, x_test)
    history.append((recon.item(), kl.item()))
    print(f"epoch {epoch + 1}: test recon {recon.item():.1f} + KL {kl.item():.2f} nats")
assert sum(history[-1]) < start - 100  # the bound tightened by > 100 nats per image
assert history[-1][1] > 0.5  # the code carries information: KL is not collapsed to 0

# %% [markdown]
# ## 4. The latent map
#
# Each test digit's posterior mean, coloured by its class. Nothing told the VAE the classes;
# similar digits land near each other because the decoder must rebuild them from nearby
# codes, and the KL term keeps the cloud near the origin.

# %%
vae.eval()
with torch.no_grad():
    mu_test, _ = vae.encode(x_test)  # (1000, 2)
fig, ax = plt.subplots(figsize=(5.5, 4.5))
for c in range(10):
    pts = mu_test[y_test == c]
    ax.scatter(pts[:, 0], pts[:, 1], s=5, alpha=0.7, label=str(c))
ax.set(xlabel="z1", ylabel="z2", title="test digits in the latent plane (posterior means)")
ax.legend(markerscale=3, fontsize=7, ncol=2)
save(fig, "latent_map.png")
assert mu_test.abs().mean() < 3  # the KL term keeps codes near the prior

# %% [markdown]
# ## 5. Interpolation and sampling
#
# Decoding points on the straight line between two digits' codes gives a gradual morph (the
# decoder is smooth in `z`); decoding draws from the prior `N(0, I)` gives new digits, which
# is what makes a VAE generative. With only two latent dimensions they are blurry: `vae-mnist`
# uses 16.

# %%
a, b = int((y_test == 1).nonzero()[0]), int((y_test == 7).nonzero()[0])
weights = torch.linspace(0, 1, 10)[:, None]  # (10, 1)
with torch.no_grad():
    path = (1 - weights) * mu_test[a] + weights * mu_test[b]  # (10, 2)
    walk = vae.generate(path)  # (10, 1, 28, 28) in [-1, 1]
    prior = vae.generate(torch.randn(16, 2, generator=g))
assert walk.shape == (10, 1, 28, 28) and walk.min() >= -1 and walk.max() <= 1
steps = (walk[1:] - walk[:-1]).flatten(1).norm(dim=1)  # pixel distance between neighbours
assert steps.max() < (walk[-1] - walk[0]).norm()  # a gradual morph, not a jump
fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
for ax, image in zip(axes[0], walk, strict=True):
    ax.imshow(image[0] * 0.5 + 0.5, cmap="gray", vmin=0, vmax=1)
for ax, image in zip(axes[1:].flat, prior[:20], strict=False):
    ax.imshow(image[0] * 0.5 + 0.5, cmap="gray", vmin=0, vmax=1)
for ax in axes.flat:
    ax.set_axis_off()
fig.suptitle("top: 1 -> 7 through the latent plane; below: samples from the prior")
save(fig, "interpolation_and_samples.png")
print("lesson 23 done")
