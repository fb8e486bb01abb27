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
# # 24 · Diffusion: noise a digit step by step, then learn to undo it
#
# A diffusion model (DDPM, Ho et al., 2020) destroys an image with Gaussian noise in `T` small
# steps and trains a network to predict the noise that was added. Generating is the reverse
# walk: start from pure noise and remove the predicted noise a step at a time. Everything that
# makes this trainable is in the forward process, which has a closed form; this lesson checks
# it, plots the schedule, takes one denoising step by hand and trains a tiny noise predictor.
#
# **You will learn**
# - the linear beta schedule and its running product alpha-bar (how much signal survives);
# - why `x_t` can be drawn from `x_0` in one shot: Gaussians compose (asserted two ways);
# - the training target: predict the noise `eps` of `x_t = sqrt(abar) x_0 + sqrt(1-abar) eps`;
# - one reverse (denoising) step, DDPM's and DDIM's, and why DDIM needs 20x fewer calls.
#
# Data: an MNIST test digit from `$TORCHDOJO_DATA` (else the embedded subset). Recipe:
# `diffusion-mnist`. Model: `torchdojo.models.diffusion`. No seed book covers diffusion: it is
# what readers now expect next to the GANs of lessons/22_gans.py.

# %%
import matplotlib.pyplot as plt
import torch

from torchdojo.data.mnist import resolve_idx_dataset
from torchdojo.models import create_model
from torchdojo.models.diffusion import DiffusionModel, NoiseSchedule
from torchdojo.viz import start_lesson

LESSON = start_lesson("24_diffusion")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save

digits = resolve_idx_dataset("MNIST", "test", download=False)
x0 = digits.x[:1].float() / 127.5 - 1  # one digit (1, 1, 28, 28), scaled to [-1, 1]
print(digits.source, "| digit:", int(digits.y[0]))

# %% [markdown]
# ## 1. The schedule: beta_t grows linearly, alpha-bar_t falls to ~0
#
# Step `t` keeps `sqrt(1 - beta_t)` of the image and adds noise of variance `beta_t`. After `t`
# steps the signal's factor is `sqrt(abar_t)`, with `abar_t = prod_{s <= t} (1 - beta_s)`.
# DDPM's `beta` runs from 1e-4 to 0.02 over `T = 1000` steps: `abar_T` is 4e-5, so `x_T` is
# noise for all practical purposes, which is what sampling starts from.

# %%
schedule = NoiseSchedule(1000, 1e-4, 0.02)
abar = schedule.alpha_bar
assert (abar.diff() < 0).all() and abar[-1] < 1e-4
half = int((abar < 0.5).nonzero()[0])
print(f"abar_T = {abar[-1]:.1e}; half the signal variance is gone at t = {half}")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(abar, label="alpha-bar_t (signal variance kept)")
ax.plot(1 - abar, label="1 - alpha-bar_t (noise variance)")
ax.plot(schedule.betas / schedule.betas.max(), "--", label="beta_t / max beta")
ax.set(xlabel="step t", title="the linear DDPM schedule")
ax.legend(fontsize=8)
save(fig, "alpha_bar.png")

# %% [markdown]
# ## 2. The forward process in closed form
#
# Two steps with independent noises `e1, e2` give
# `sqrt(a2 a1) x0 + sqrt(a2 (1 - a1)) e1 + sqrt(1 - a2) e2`; the two noise terms are one
# Gaussian of variance `a2 (1 - a1) + (1 - a2) = 1 - a1 a2`. So `x_2` is `q_sample(x0, 2, e)`
# with `e` the normalized sum: equal for every draw, not only on average.

# %%
g = torch.Generator().manual_seed(0)
e1, e2 = torch.randn(x0.shape, generator=g), torch.randn(x0.shape, generator=g)
t0, t1 = torch.tensor([0]), torch.tensor([1])
x2_iterated = schedule.q_step(schedule.q_step(x0, t0, e1), t1, e2)
a1, a2 = schedule.alphas[0], schedule.alphas[1]
e = ((a2 * (1 - a1)).sqrt() * e1 + (1 - a2).sqrt() * e2) / (1 - a1 * a2).sqrt()
assert torch.allclose(x2_iterated, schedule.q_sample(x0, t1, e), atol=1e-5)  # float32

# %% [markdown]
# For many steps we check the distribution instead: iterate `q(x_t | x_{t-1})` `t` times on
# many copies of the digit and compare each pixel's mean and variance over the copies with the
# closed form's `sqrt(abar_t) x0` and `1 - abar_t`.

# %%
copies, t_check = (256, 100) if SMOKE else (2048, 300)
x = x0.expand(copies, -1, -1, -1)
for step in range(t_check):
    x = schedule.q_step(x, torch.full((copies,), step), torch.randn(x.shape, generator=g))
mean_err = (x.mean(0) - abar[t_check - 1].sqrt() * x0[0]).abs().max()
var_err = (x.var(0) - (1 - abar[t_check - 1])).abs().mean()
print(
    f"after {t_check} steps: max |mean error| {mean_err:.3f}, mean |variance error| {var_err:.3f}"
)
assert mean_err < 5 / copies**0.5 and var_err < 0.1  # sampling error shrinks as 1/sqrt(copies)

steps_shown = [0, 50, 150, 300, 600, 999]
noisy = [
    schedule.q_sample(x0, torch.tensor([s]), torch.randn(x0.shape, generator=g))
    for s in steps_shown
]
fig, axes = plt.subplots(1, len(steps_shown), figsize=(2 * len(steps_shown), 2.3))
for ax, s, img in zip(axes, steps_shown, noisy, strict=True):
    ax.imshow(img[0, 0], cmap="gray", vmin=-1, vmax=1)
    ax.set_title(f"t = {s}, abar = {abar[s]:.2f}", fontsize=8)
    ax.set_axis_off()
save(fig, "forward_process.png")

# %% [markdown]
# ## 3. One denoising step
#
# The reverse step needs `x_0`, which it estimates from the predicted noise:
# `x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)`. DDPM then draws `x_{t-1}` from
# the Gaussian posterior `q(x_{t-1} | x_t, x0_hat)`. With the *true* noise the estimate is
# exact, and the step's mean is DDPM's eq. 11; its noise part shrinks by the factor
# `sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t)` relative to `x_t`'s `sqrt(1 - abar_t)`.

# %%
t = torch.tensor([400])
eps = torch.randn(x0.shape, generator=g)
x_t = schedule.q_sample(x0, t, eps)
assert torch.allclose(schedule.predict_x0(x_t, t, eps), x0, atol=1e-4)
mean = schedule.ddpm_step(x_t, t, eps, torch.zeros_like(x_t))  # the step without its noise
alpha, beta, ab, ab_prev = schedule.alphas[t], schedule.betas[t], abar[t], abar[t - 1]
eq11 = (x_t - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()
assert torch.allclose(mean, eq11, atol=1e-5)
noise_before = (1 - ab).sqrt()
noise_after = alpha.sqrt() * (1 - ab_prev) / (1 - ab).sqrt()
assert torch.allclose(mean - ab_prev.sqrt() * x0, noise_after * eps, atol=1e-5)
print(f"noise factor {noise_before.item():.4f} -> {noise_after.item():.4f} in one step")

# %% [markdown]
# DDIM (Song et al., 2021) takes the same `x0_hat` and `eps_hat` and jumps straight to any
# earlier step along the forward trajectory, `x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t')
# eps_hat` (no fresh noise when `eta = 0`): 50 network calls instead of 1000.

# %%
t_prev = torch.tensor([100])
jumped = schedule.ddim_step(x_t, t, t_prev, eps, torch.zeros_like(x_t), eta=0.0)
assert torch.allclose(jumped, schedule.q_sample(x0, t_prev, eps), atol=1e-5)

# %% [markdown]
# ## 4. Learning the noise
#
# The network sees `(x_t, t)` and is trained with a mean squared error on `eps`. A tiny U-Net
# and a few hundred digits show the loss falling (the recipe trains a wider one on all 60,000).
# Predicting zero noise scores 1.0 (the noise has unit variance): anything below has learned.

# %%
train = digits.x[: 256 if SMOKE else 2048].float() / 127.5 - 1  # (N, 1, 28, 28)
torch.manual_seed(0)
model = create_model("ddpm-unet-28", width=8 if SMOKE else 16)
assert isinstance(model, DiffusionModel)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
losses = []
batch_size = 16 if SMOKE else 32
for _ in range(20 if SMOKE else 600):
    batch = train[torch.randint(0, len(train), (batch_size,))]
    t = torch.randint(0, 1000, (batch_size,))
    noise = torch.randn_like(batch)
    loss = (model(model.schedule.q_sample(batch, t, noise), t) - noise).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(f"noise MSE: first 5 steps {sum(losses[:5]) / 5:.3f}, last 5 {sum(losses[-5:]) / 5:.3f}")
assert sum(losses[-5:]) < sum(losses[:5])

samples = model.sample(8, generator=torch.Generator().manual_seed(0), steps=10 if SMOKE else 50)
assert samples.shape == (8, 1, 28, 28) and samples.abs().max() <= 1
fig, axes = plt.subplots(1, 8, figsize=(12, 1.8))
for ax, img in zip(axes, samples, strict=True):
    ax.imshow(img[0], cmap="gray", vmin=-1, vmax=1)
    ax.set_axis_off()
fig.suptitle("DDIM samples of the tiny model (the recipe's are digits)", fontsize=9)
save(fig, "samples.png")

# %% [markdown]
# ## What to take away
# - The forward process needs no simulation: `x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`.
# - Training is regression on the noise at a random step; sampling calls the network once per
#   reverse step: 1,000 calls for DDPM, 50 for DDIM, against one for a GAN's generator.
# - `torchdojo run diffusion-mnist` trains the recipe's U-Net; `torchdojo sample RUN_DIR`
#   draws a grid from the saved model.
