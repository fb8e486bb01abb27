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
# # 03 · Optimization from scratch
#
# Machine learning = choose a model with parameters, measure how wrong it is with a loss,
# and change the parameters to make the loss smaller. For a straight line and the sum of
# squared errors (SSE) there is an exact answer (least squares); for everything else we walk
# downhill along the negative gradient (gradient descent).
#
# **You will learn**
# - the least-squares closed form, and `torch.linalg.lstsq`;
# - the SSE loss surface in 3-D, and the path gradient descent takes on it;
# - derivatives as slopes of tangents, gradients as arrows pointing uphill;
# - manual gradient descent with autograd equals `torch.optim.SGD`;
# - what a too-large learning rate does.
#
# Seeds: 002 §1 "optimization and least squares" and "gradient descent", 001 ch3-4,
# 004 ch5.

# %%


import matplotlib.pyplot as plt
import torch

from torchdojo.viz import start_lesson

LESSON = start_lesson("03_optimization")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
torch.set_default_dtype(torch.float64)  # exact comparisons with the closed form


# %% [markdown]
# ## 1. Least squares, exactly
#
# Fit y ≈ w·x + b to points. Stack a column of ones next to x so the model is y ≈ X·θ with
# θ = (w, b). Setting the gradient of SSE(θ) = ‖Xθ − y‖² to zero gives the normal equations
# XᵀXθ = Xᵀy, so θ = (XᵀX)⁻¹Xᵀy. With two points the line passes through both.

# %%
x = torch.tensor([1.0, 3.0])
y = torch.tensor([2.0, 4.0])
X = torch.stack([x, torch.ones_like(x)], dim=1)  # (N, 2): columns x and 1
theta = torch.linalg.inv(X.T @ X) @ X.T @ y
print("closed form (w, b):", theta.tolist())
assert torch.allclose(theta, torch.tensor([1.0, 1.0]))

# With many noisy points, lstsq (a QR/SVD solver) is the numerically safe way.
n = 50 if SMOKE else 500
xs = torch.rand(n) * 10
ys = 2.5 * xs - 4.0 + torch.randn(n)
Xs = torch.stack([xs, torch.ones(n)], dim=1)
theta_star = torch.linalg.lstsq(Xs, ys.unsqueeze(1)).solution.squeeze(1)
assert torch.allclose(theta_star, torch.linalg.inv(Xs.T @ Xs) @ Xs.T @ ys)
assert abs(theta_star[0] - 2.5) < 0.2 and abs(theta_star[1] + 4.0) < 1.0


def sse(theta: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors of the line theta=(w, b) on the two-point data."""
    return ((X @ theta - y) ** 2).sum()


assert sse(theta).item() < 1e-20

# %% [markdown]
# ## 2. Derivatives and gradients
#
# A derivative is the slope of the tangent. For a function of two parameters the gradient
# (∂f/∂w, ∂f/∂b) is an arrow pointing uphill, perpendicular to the contour lines. Autograd
# agrees with the formula ∇SSE = 2Xᵀ(Xθ − y).

# %%
point = torch.tensor([-1.0, 3.0], requires_grad=True)
sse(point).backward()
analytic = 2 * X.T @ (X @ point.detach() - y)
assert torch.allclose(point.grad, analytic)

f = lambda t: t**2  # noqa: E731
x0 = torch.tensor(1.5, requires_grad=True)
f(x0).backward()
assert x0.grad.item() == 3.0

fig = plt.figure(figsize=(10, 4))
ax = fig.add_subplot(1, 2, 1)
grid = torch.linspace(-3, 3, 100)
ax.plot(grid, f(grid), label="f(x) = x²")
for x_t in (-2.0, 0.0, 1.5):
    slope = 2 * x_t
    ax.plot(grid, f(torch.tensor(x_t)) + slope * (grid - x_t), "--", lw=1)
    ax.plot([x_t], [x_t**2], "ko")
ax.set_ylim(-2, 9)
ax.set_title("derivatives: slopes of tangents")
ax = fig.add_subplot(1, 2, 2)
W, B = torch.meshgrid(torch.linspace(-2, 4, 60), torch.linspace(-2, 4, 60), indexing="ij")
thetas = torch.stack([W, B], dim=-1)  # (60, 60, 2)
Z = ((thetas @ X.T - y) ** 2).sum(-1)  # (60, 60): SSE at every (w, b)
ax.contour(W, B, Z, levels=30, cmap="viridis")
Wq, Bq = W[::8, ::8], B[::8, ::8]
G = 2 * ((torch.stack([Wq, Bq], -1) @ X.T - y) @ X)  # (8, 8, 2): gradient at each point
ax.quiver(Wq, Bq, G[..., 0], G[..., 1], color="crimson", angles="xy")
ax.set_xlabel("w")
ax.set_ylabel("b")
ax.set_title("gradient arrows point uphill")
save(fig, "derivative_and_grad.png")

# %% [markdown]
# ## 3. Gradient descent by hand
#
# θ ← θ − lr · ∇SSE(θ). We compute the gradient with autograd and update the parameters
# inside `torch.no_grad()` so the update itself is not recorded.

# %%
steps = 200 if SMOKE else 500
lr = 0.07
params = torch.tensor([-1.0, 3.0], requires_grad=True)
path, losses = [params.detach().clone()], []
for _ in range(steps):
    loss = sse(params)
    losses.append(loss.item())
    loss.backward()
    with torch.no_grad():
        params -= lr * params.grad
    params.grad = None
    path.append(params.detach().clone())
path_t = torch.stack(path)  # (steps + 1, 2)
print(f"after {steps} steps: theta={params.tolist()}, SSE={losses[-1]:.2e}")
assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:], strict=False)), (
    "SSE never goes up here"
)
assert torch.allclose(params.detach(), theta, atol=1e-3)

fig = plt.figure(figsize=(6, 5))
ax3 = fig.add_subplot(projection="3d")
ax3.plot_surface(W, B, Z, cmap="viridis", alpha=0.6)
path_z = ((path_t @ X.T - y) ** 2).sum(-1)
ax3.plot(path_t[:, 0], path_t[:, 1], path_z, "r.-", ms=3, label="gradient descent")
ax3.set_xlabel("w")
ax3.set_ylabel("b")
ax3.set_zlabel("SSE")
ax3.legend()
save(fig, "sse_3d_descent.png")

# %% [markdown]
# ## 4. The same with `torch.optim.SGD`
#
# The optimizer only packages the update rule: `zero_grad()`, `backward()`, `step()`.
# Plain SGD follows exactly the same path as our loop.

# %%
params2 = torch.tensor([-1.0, 3.0], requires_grad=True)
optimizer = torch.optim.SGD([params2], lr=lr)
for _ in range(steps):
    optimizer.zero_grad()
    sse(params2).backward()
    optimizer.step()
assert torch.allclose(params2.detach(), path_t[-1])

# %% [markdown]
# ## 5. Learning rate: too large diverges
#
# Along the steepest direction the SSE is a parabola with curvature 2·λ_max(XᵀX). Steps
# larger than 1/λ_max overshoot farther each time.

# %%
lam_max = torch.linalg.eigvalsh(X.T @ X).max().item()
print(f"largest stable lr ≈ {1 / lam_max:.4f}")
for lr_try, should_converge in [(0.9 / lam_max, True), (1.1 / lam_max, False)]:
    p = torch.tensor([-1.0, 3.0], requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr_try)
    for _ in range(200):
        opt.zero_grad()
        sse(p).backward()
        opt.step()
    final = sse(p).item()
    print(f"lr={lr_try:.4f}: final SSE {final:.3g}")
    assert (final < 1e-3) == should_converge
torch.set_default_dtype(torch.float32)
print("lesson 03 done")
