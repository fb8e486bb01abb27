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
# # 02 · Autograd
#
# PyTorch records every operation on tensors that require gradients in a graph built on the
# fly (a *dynamic* graph). `backward()` walks that graph from a scalar back to the leaves
# and stores d(scalar)/d(leaf) in each leaf's `.grad`.
#
# **You will learn**
# - leaves, `requires_grad`, `grad_fn` and how the graph is built;
# - `backward()` on a scalar, and why we call `.sum()` on a vector first (and what `.max()`
#   does instead);
# - gradients accumulate: zero them between steps;
# - drawing the graph with torchviz (needs Graphviz's `dot`);
# - `torch.no_grad()`, `torch.inference_mode()` and `.detach()`.
#
# Seeds: 001 ch2 (and the author's notes on sum() vs max()), 002 §1 "dynamic computational
# graph", 004 ch5, 000 ch2.

# %%
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from torchdojo.viz import start_lesson

LESSON = start_lesson("02_autograd")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# ## 1. A scalar function
#
# y = x² + 3x, so dy/dx = 2x + 3 = 7 at x = 2.

# %%
x = torch.tensor(2.0, requires_grad=True)  # a leaf: created by us, not by an operation
y = x**2 + 3 * x
assert x.is_leaf and not y.is_leaf
assert y.grad_fn is not None and type(y.grad_fn).__name__ == "AddBackward0"
y.backward()
print("dy/dx at 2 =", x.grad.item())
assert x.grad.item() == 7.0

# %% [markdown]
# ## 2. Vectors: why `.sum()`?
#
# `backward()` needs a scalar. For y = x² applied elementwise, each y_j depends only on x_j,
# so d(Σ y_j)/dx_j = dy_j/dx_j: summing first gives every element's own derivative at once.
# It is the same as `y.backward(torch.ones_like(y))` (a vector-Jacobian product with ones).

# %%
xs = torch.linspace(-2, 2, 5, requires_grad=True)
ys = xs**2
try:
    ys.backward()
    raise AssertionError("backward on a non-scalar needs a gradient argument")
except RuntimeError as err:
    print("as expected:", err)
ys.sum().backward()
assert torch.allclose(xs.grad, 2 * xs.detach())  # [-4, -2, 0, 2, 4]

xs2 = xs.detach().clone().requires_grad_()
(xs2**2).backward(torch.ones(5))
assert torch.equal(xs2.grad, xs.grad)

# %% [markdown]
# `.max()` is a scalar too, but it is not a sum: its gradient is 1 at the position of the
# maximum and 0 elsewhere. It tells how the *maximum* moves, not how each y_j does.

# %%
xs3 = torch.tensor([-1.0, 0.5, 2.0, 1.5], requires_grad=True)
(xs3**2).max().backward()
print("grad through max():", xs3.grad.tolist())
assert xs3.grad.tolist() == [0.0, 0.0, 4.0, 0.0]  # only the arg-max x=2 gets dy/dx = 4

# With ties (x = -2 and x = 2 both give y = 4) the gradient is split evenly between them.
xs4 = xs.detach().clone().requires_grad_()
(xs4**2).max().backward()
assert xs4.grad.tolist() == [-2.0, 0.0, 0.0, 0.0, 2.0]  # half of -4 and half of 4

# %% [markdown]
# Autograd gives derivatives of any curve. The sigmoid's derivative is σ(x)(1 − σ(x)),
# largest (0.25) at 0: remember this number for lesson 07.

# %%
grid = torch.linspace(-6, 6, 121, requires_grad=True)
sig = torch.sigmoid(grid)
sig.sum().backward()
s = sig.detach()
assert torch.allclose(grid.grad, s * (1 - s), atol=1e-6)
assert abs(grid.grad.max().item() - 0.25) < 1e-6

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(grid.detach(), s, label="sigmoid(x)")
ax.plot(grid.detach(), grid.grad, label="d/dx by autograd")
ax.legend()
ax.grid(alpha=0.3)
save(fig, "sigmoid_derivative.png")

# %% [markdown]
# ## 3. Gradients accumulate
#
# Each `backward()` *adds* into `.grad`. Training loops therefore call
# `optimizer.zero_grad()` (or set `.grad = None`) before every backward. The graph is freed
# after backward; a second pass needs `retain_graph=True`.

# %%
w = torch.tensor(1.0, requires_grad=True)
loss = 3 * w
loss.backward(retain_graph=True)
loss.backward()
assert w.grad.item() == 6.0  # 3 + 3
w.grad = None
try:
    loss.backward()
    raise AssertionError("the graph was freed")
except RuntimeError:
    pass

# %% [markdown]
# ## 4. The graph of a small model
#
# torchviz turns `grad_fn` chains into a Graphviz picture. Building the description needs only
# Python; rendering it needs the `dot` program (`apt-get install graphviz`).

# %%
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
inputs = torch.randn(8, 3)
out = model(inputs).mean()


def graph_ops(fn: object) -> set[str]:
    """Names of every backward node reachable from ``fn``."""
    seen, stack = set(), [fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    return {type(n).__name__ for n in seen}


ops = graph_ops(out.grad_fn)
print(sorted(ops))
assert {"MeanBackward0", "AddmmBackward0", "ReluBackward0", "AccumulateGrad"} <= ops

try:
    from torchviz import make_dot
except ImportError:  # pragma: no cover - torchviz is a test dependency
    make_dot = None
if make_dot is not None:
    dot = make_dot(out, params=dict(model.named_parameters()))
    assert "0.weight" in dot.source and "AddmmBackward0" in dot.source
    if shutil.which("dot"):
        path = dot.render(str(OUT / "mlp_graph"), format="png", cleanup=True)
        assert Path(path).stat().st_size > 0
        print("graph drawn:", path)
    else:
        print("Graphviz `dot` not found: skipping the picture (apt-get install graphviz)")

# %% [markdown]
# ## 5. Turning autograd off
#
# - `torch.no_grad()`: no graph is recorded inside (evaluation, manual weight updates).
# - `torch.inference_mode()`: the same, faster; its tensors can never enter autograd later.
# - `t.detach()`: a tensor sharing `t`'s memory but cut from the graph; gradients stop there.

# %%
with torch.no_grad():
    pred = model(inputs)
assert not pred.requires_grad and pred.grad_fn is None
with torch.inference_mode():
    pred2 = model(inputs)
assert pred2.is_inference() and torch.allclose(pred, pred2)

a = torch.tensor(3.0, requires_grad=True)
b = a * a  # db/da = 2a = 6
c = b.detach() * a  # the detached b acts as a constant 9: dc/da = 9
c.backward()
assert a.grad.item() == 9.0
assert b.detach().data_ptr() == b.data_ptr()  # no copy

# A manual gradient-descent step is the classic use of no_grad.
w = torch.tensor(5.0, requires_grad=True)
for _ in range(3 if SMOKE else 50):
    loss = (w - 1.0) ** 2
    loss.backward()
    with torch.no_grad():
        w -= 0.25 * w.grad
    w.grad = None
print("w after descent:", w.item())
assert abs(w.item() - 1.0) < 0.6  # halves the distance each step: 4 -> 2 -> 1 -> 0.5
print("lesson 02 done")
