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
# # 05 · Single-layer and deep networks, by hand and with `nn`
#
# A neuron computes a weighted sum plus a bias and passes it through an activation. One
# layer of them draws straight lines; stacking layers with non-linear activations draws
# curves.
#
# **You will learn**
# - AND and OR as single neurons with hand-picked weights, and why XOR needs a hidden layer;
# - the forward pass written with matrices, and the same with `nn.Linear`;
# - three ways to build the same deep net: by hand, `nn.Sequential`, an `nn.Module` subclass;
# - counting parameters by formula and with `torchinfo` (the successor of `torchsummary`);
# - training a deep net on two interleaved moons.
#
# Recipes: `digits-mlp`, `mnist-mlp`. Seeds: 002 §2-3, 001 ch4 and ch8, 004 ch6, 000 ch3
# and ch5.

# %%


import matplotlib.pyplot as plt
import torch
from sklearn.datasets import make_moons
from torch import Tensor, nn
from torchinfo import summary

from torchdojo.models import create_model
from torchdojo.viz import start_lesson

LESSON = start_lesson("05_deep_nets")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# ## 1. Logic gates as single neurons
#
# Inputs x ∈ {0,1}², output 1 when w·x + b > 0 (a step activation). AND needs both inputs:
# w = (1, 1), b = −1.5. OR needs one: b = −0.5. NAND is AND with the signs flipped.

# %%
X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # (4, 2)


def neuron(x: Tensor, w: list[float], b: float) -> Tensor:
    """One neuron with a step activation."""
    return (x @ torch.tensor(w, dtype=x.dtype) + b > 0).float()


AND = neuron(X, [1, 1], -1.5)
OR = neuron(X, [1, 1], -0.5)
NAND = neuron(X, [-1, -1], 1.5)
assert AND.tolist() == [0, 0, 0, 1]
assert OR.tolist() == [0, 1, 1, 1]
assert NAND.tolist() == [1, 1, 1, 0]

# %% [markdown]
# XOR (1 when the inputs differ) is not linearly separable: no single line puts (0,1) and
# (1,0) on one side and (0,0), (1,1) on the other. Trained logistic regression gets at most
# 3 of 4 right. Two layers solve it: XOR = AND(NAND, OR).

# %%
XOR = torch.tensor([0.0, 1.0, 1.0, 0.0])
single = nn.Linear(2, 1)
opt = torch.optim.Adam(single.parameters(), lr=0.1)
for _ in range(500):
    opt.zero_grad()
    nn.functional.binary_cross_entropy_with_logits(single(X).squeeze(1), XOR).backward()
    opt.step()
single_correct = ((single(X).squeeze(1) > 0).float() == XOR).sum().item()
assert single_correct <= 3, "a straight line cannot solve XOR"

hidden = torch.stack([NAND, OR], dim=1)  # (4, 2): the hidden layer's outputs
assert neuron(hidden, [1, 1], -1.5).tolist() == XOR.tolist()

# %% [markdown]
# ## 2. A layer is a matrix product
#
# For a batch X of shape (B, in) a layer computes X Wᵀ + b with W of shape (out, in).
# That is exactly what `nn.Linear` stores and computes.

# %%
layer = nn.Linear(3, 4)  # weight (4, 3), bias (4,)
x = torch.randn(5, 3)  # (B, in)
assert layer.weight.shape == (4, 3) and layer.bias.shape == (4,)
assert torch.allclose(layer(x), x @ layer.weight.T + layer.bias)


# %% [markdown]
# ## 3. One deep net, three ways
#
# A 2 → 16 → 16 → 1 network with ReLU. By hand we keep the weights in a list; with
# `nn.Sequential` we list the layers; with an `nn.Module` subclass we name them and write
# `forward`. Loading the same weights into all three gives the same outputs.


# %%
class MoonNet(nn.Module):
    """Two hidden ReLU layers, one logit out."""

    def __init__(self, *, width: int = 16) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(2, width)
        self.hidden2 = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.hidden1(x))  # (B, width)
        x = self.act(self.hidden2(x))  # (B, width)
        return self.out(x)  # (B, 1): a logit


seq = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
module = MoonNet()
module.load_state_dict(
    {
        new: seq.state_dict()[old]
        for new, old in zip(module.state_dict(), seq.state_dict(), strict=True)
    }
)
weights = [(seq[i].weight.detach(), seq[i].bias.detach()) for i in (0, 2, 4)]


def by_hand(x: Tensor) -> Tensor:
    """The same forward pass with explicit matrix products."""
    for i, (w, b) in enumerate(weights):
        x = x @ w.T + b
        if i < len(weights) - 1:
            x = x.clamp(min=0)  # ReLU
    return x


probe = torch.randn(7, 2)
assert torch.allclose(seq(probe), module(probe)) and torch.allclose(seq(probe), by_hand(probe))

# %% [markdown]
# Call the module (`module(x)`), not `module.forward(x)`: `__call__` runs `forward` *and* the
# hooks that tools such as torchinfo, profilers and Grad-CAM attach.

# %%
calls = []
handle = module.hidden1.register_forward_hook(lambda mod, inp, out: calls.append(out.shape))
module(probe)
module.forward(probe)  # hidden1 is still called through __call__ inside forward...
module.hidden1.forward(probe)  # ...but calling forward directly skips the hook
handle.remove()
assert calls == [(7, 16), (7, 16)]

# %% [markdown]
# ## 4. Counting parameters
#
# A linear layer has in·out weights and out biases. `torchinfo.summary` (the maintained
# successor of `torchsummary`) lists every layer's output shape and parameter count.

# %%
expected = (2 * 16 + 16) + (16 * 16 + 16) + (16 * 1 + 1)
n_params = sum(p.numel() for p in module.parameters())
info = summary(module, input_size=(32, 2), verbose=0)
print(info)
assert n_params == expected == info.total_params == 337

mlp = create_model("mlp", in_features=784, num_classes=10, width=256, depth=2)
assert sum(p.numel() for p in mlp.parameters()) == 784 * 256 + 256 + 256 * 256 + 256 + 2570
assert mlp(torch.randn(4, 1, 28, 28)).shape == (4, 10)  # the MLP flattens images itself

# %% [markdown]
# ## 5. Training the deep net
#
# The usual loop: forward, loss, `zero_grad`, backward, step. The network bends its
# boundary around the two moons, which a straight line cannot do.

# %%
n = 400 if SMOKE else 2000
Xm_np, ym_np = make_moons(n_samples=n, noise=0.15, random_state=0)
Xm = torch.tensor(Xm_np, dtype=torch.float32)
ym = torch.tensor(ym_np, dtype=torch.float32).unsqueeze(1)
model = MoonNet(width=32)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
loss_fn = nn.BCEWithLogitsLoss()
losses = []
for _ in range(300 if SMOKE else 1000):
    loss = loss_fn(model(Xm), ym)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
with torch.no_grad():
    acc = ((model(Xm) > 0).float() == ym).float().mean().item()
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, accuracy {acc:.3f}")
assert losses[-1] < 0.15 and acc > 0.95

linear = nn.Linear(2, 1)
opt = torch.optim.Adam(linear.parameters(), lr=0.05)
for _ in range(300):
    opt.zero_grad()
    loss_fn(linear(Xm), ym).backward()
    opt.step()
with torch.no_grad():
    linear_acc = ((linear(Xm) > 0).float() == ym).float().mean().item()
print(f"a straight line: accuracy {linear_acc:.3f}")
assert linear_acc < 0.9 < acc

xx, yy = torch.meshgrid(torch.linspace(-1.5, 2.5, 200), torch.linspace(-1, 1.5, 200), indexing="xy")
with torch.no_grad():
    zz = model(torch.stack([xx.flatten(), yy.flatten()], 1)).reshape(xx.shape)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(losses)
axes[0].set_yscale("log")
axes[0].set_title("training loss")
axes[1].contourf(xx, yy, torch.sigmoid(zz), levels=20, cmap="RdBu", alpha=0.5)
axes[1].contour(xx, yy, zz, levels=[0], colors="k")
axes[1].scatter(Xm[:, 0], Xm[:, 1], c=ym[:, 0], cmap="RdBu", s=6)
axes[1].set_title("deep net boundary")
save(fig, "moons.png")
print("lesson 05 done")
