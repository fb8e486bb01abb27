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
# # 01 · Tensors
#
# A tensor is an n-dimensional array that knows its data type, its device, and (later) how it
# was computed. Everything in PyTorch is built from tensors.
#
# **You will learn**
# - how to create tensors and what data type PyTorch picks for you;
# - indexing, slicing, masking, and merging (`cat`, `stack`) and reshaping (`view`, `permute`);
# - broadcasting: how tensors of different shapes combine;
# - linear algebra with `torch.linalg`;
# - storage and strides: why `view` is free, why `transpose` is not contiguous;
# - devices: moving tensors between CPU and GPU, and the `meta` device.
#
# Seeds: 002 §1 (tensor create/index, slice/merge, broadcast, linear algebra), 004 ch3-4,
# 000 ch2, 001 ch2.

# %%


import matplotlib.pyplot as plt
import numpy as np
import torch

from torchdojo.utils import choose_device
from torchdojo.viz import start_lesson

LESSON = start_lesson("01_tensors")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# ## 1. Creating tensors
#
# `torch.tensor` copies data and infers the dtype: Python ints become `int64`, floats become
# `float32` (the default float type). `torch.from_numpy` does **not** copy: the tensor and the
# array share memory.

# %%
a = torch.tensor([1, 2, 3])
b = torch.tensor([1.0, 2.0, 3.0])
print(a.dtype, b.dtype)
assert a.dtype == torch.int64 and b.dtype == torch.float32

zeros = torch.zeros(2, 3)
ones = torch.ones(2, 3, dtype=torch.float64)
ar = torch.arange(0, 10, 2)  # end is excluded
lin = torch.linspace(0, 1, 5)  # end is included
eye = torch.eye(3)
full = torch.full((2, 2), 7.0)
assert zeros.shape == (2, 3) and ones.dtype == torch.float64
assert ar.tolist() == [0, 2, 4, 6, 8]
assert torch.allclose(lin, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
assert torch.equal(eye.diagonal(), torch.ones(3)) and eye.sum().item() == 3.0
assert full.sum().item() == 28.0

arr = np.arange(4.0)
shared = torch.from_numpy(arr)
arr[0] = 100.0
assert shared[0].item() == 100.0, "from_numpy shares memory with the array"
copied = torch.tensor(arr)
arr[1] = -1.0
assert copied[1].item() == 1.0, "torch.tensor copies"

r = torch.randn(10_000)
print(f"randn mean {r.mean():.3f}, std {r.std():.3f}")
assert abs(r.mean().item()) < 0.05 and abs(r.std().item() - 1) < 0.05

# %% [markdown]
# ## 2. Indexing, slicing, masking and merging
#
# Indexing works like NumPy. A slice keeps the dimension, an integer index removes it.
# Boolean masks select elements; `torch.where` picks between two tensors element by element.

# %%
t = torch.arange(12).reshape(3, 4)  # (3, 4)
print(t)
assert t[1, 2].item() == 6
assert t[:, 1].tolist() == [1, 5, 9]  # integer index drops a dim: shape (3,)
assert t[:, 1:2].shape == (3, 1)  # slice keeps it
assert t[::2, ::3].tolist() == [[0, 3], [8, 11]]  # steps
assert t[-1].tolist() == [8, 9, 10, 11]  # negative index counts from the end
assert torch.index_select(t, 1, torch.tensor([0, 3])).tolist() == [[0, 3], [4, 7], [8, 11]]
assert t[t > 8].tolist() == [9, 10, 11]  # a mask flattens the result
assert torch.where(t % 2 == 0, t, -1)[0].tolist() == [0, -1, 2, -1]

# %% [markdown]
# `cat` joins along an existing dimension; `stack` creates a new one. `split` and `chunk`
# undo them. `reshape`/`view` change the shape without changing the element order;
# `squeeze`/`unsqueeze` remove/add dimensions of size 1; `permute` reorders dimensions.

# %%
x = torch.ones(2, 3)
y = torch.zeros(2, 3)
assert torch.cat([x, y], dim=0).shape == (4, 3)
assert torch.cat([x, y], dim=1).shape == (2, 6)
assert torch.stack([x, y], dim=0).shape == (2, 2, 3)
assert [p.shape for p in torch.split(torch.arange(10), [3, 7])] == [(3,), (7,)]
assert len(torch.chunk(torch.arange(10), 3)) == 3

img = torch.rand(3, 32, 32)  # (C, H, W)
batch = img.unsqueeze(0)  # (1, C, H, W)
hwc = img.permute(1, 2, 0)  # (H, W, C), the layout matplotlib wants
assert batch.shape == (1, 3, 32, 32) and batch.squeeze(0).shape == (3, 32, 32)
assert hwc.shape == (32, 32, 3) and hwc[5, 7, 2] == img[2, 5, 7]
assert img.reshape(3, -1).shape == (3, 1024)  # -1: "whatever is left"
assert img.flatten().shape == (3 * 32 * 32,)

# %% [markdown]
# ## 3. Broadcasting
#
# Two shapes are compatible when, read from the right, each pair of sizes is equal or one of
# them is 1. Size-1 (or missing) dimensions are stretched, without copying. A column `(3, 1)`
# plus a row `(1, 4)` gives a `(3, 4)` table.

# %%
col = torch.tensor([[0.0], [10.0], [20.0]])  # (3, 1)
row = torch.tensor([0.0, 1.0, 2.0, 3.0])  # (4,) behaves like (1, 4)
table = col + row  # (3, 4)
assert table.shape == (3, 4)
assert table[2, 3].item() == 23.0
assert torch.broadcast_shapes((3, 1), (4,)) == (3, 4)
assert torch.broadcast_shapes((8, 1, 6, 1), (7, 1, 5)) == (8, 7, 6, 5)
try:
    torch.ones(3, 2) + torch.ones(3)
    raise AssertionError("(3, 2) + (3,) must not broadcast")
except RuntimeError as err:
    print("as expected:", str(err).splitlines()[0])

# Per-channel normalization is broadcasting: (B, C, H, W) - (C, 1, 1).
images = torch.rand(16, 3, 8, 8) * 5 + 2
mean = images.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
std = images.std(dim=(0, 2, 3), keepdim=True)
normed = (images - mean) / std
assert torch.allclose(normed.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
assert torch.allclose(normed.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-5)

fig, axes = plt.subplots(1, 3, figsize=(7, 2.2))
for ax, data, title in zip(
    axes,
    [col.expand(3, 4), row.expand(3, 4), table],
    ["col (3,1)", "row (4,)", "sum (3,4)"],
    strict=True,
):
    ax.imshow(data, cmap="viridis")
    for (i, j), v in np.ndenumerate(data.numpy()):
        ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="w")
    ax.set_title(title)
    ax.axis("off")
save(fig, "broadcasting.png")

# %% [markdown]
# ## 4. Elementwise maths and reductions
#
# Reductions take a `dim`; `keepdim=True` keeps it with size 1 so the result broadcasts back.

# %%
m = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
assert m.sum().item() == 10.0
assert m.sum(dim=0).tolist() == [4.0, 6.0]  # down the rows
assert m.sum(dim=1, keepdim=True).shape == (2, 1)
assert torch.allclose(torch.exp(torch.log(m)), m)
assert m.argmax().item() == 3  # index into the flattened tensor
assert torch.allclose((m / m.sum(dim=1, keepdim=True)).sum(dim=1), torch.ones(2))

# %% [markdown]
# ## 5. Linear algebra
#
# `@` is matrix multiplication (batched when there are leading dims). `torch.linalg` holds
# the solvers and decompositions: `inv`, `det`, `solve`, `eigh`, `svd`, `lstsq`.

# %%
A = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
v = torch.tensor([1.0, 2.0], dtype=torch.float64)
assert torch.allclose(A @ v, torch.tensor([4.0, 7.0], dtype=torch.float64))
assert torch.dot(v, v).item() == 5.0
assert abs(torch.linalg.det(A).item() - 5.0) < 1e-12
assert torch.allclose(A @ torch.linalg.inv(A), torch.eye(2, dtype=torch.float64))
sol = torch.linalg.solve(A, v)  # better than inv(A) @ v: faster and more accurate
assert torch.allclose(A @ sol, v)
evals, evecs = torch.linalg.eigh(A)  # symmetric matrix: real eigenvalues, ascending
assert torch.allclose(A @ evecs, evecs * evals)
M = torch.randn(5, 3, dtype=torch.float64)
U, S, Vh = torch.linalg.svd(M, full_matrices=False)
assert torch.allclose(U @ torch.diag(S) @ Vh, M)
assert torch.allclose(torch.linalg.matrix_norm(M), S.norm())  # Frobenius = norm of singulars
batched = torch.randn(10, 4, 5) @ torch.randn(10, 5, 2)  # (10, 4, 2)
assert batched.shape == (10, 4, 2)

# %% [markdown]
# ## 6. Storage and strides
#
# A tensor is a *view* onto a flat block of memory (its storage). `stride()` says how many
# elements to skip to move one step along each dimension. `view`, `transpose`, slicing and
# `expand` only change the strides: no copy. A transposed tensor is not *contiguous*, so
# `view` refuses it; `reshape` copies when it has to, `contiguous()` always makes a copy
# of a non-contiguous tensor.

# %%
s = torch.arange(6.0).reshape(2, 3)
assert s.stride() == (3, 1)
st = s.t()  # (3, 2)
assert st.stride() == (1, 3) and not st.is_contiguous()
assert st.untyped_storage().data_ptr() == s.untyped_storage().data_ptr()  # same memory
st[0, 1] = 99.0
assert s[1, 0].item() == 99.0, "writing through a view changes the original"
try:
    st.view(6)
    raise AssertionError("view of a non-contiguous tensor must fail")
except RuntimeError:
    pass
flat = st.reshape(6)  # copies here
assert flat.untyped_storage().data_ptr() != s.untyped_storage().data_ptr()
assert st.contiguous().stride() == (2, 1)
row1 = s[1]  # a slice starts at an offset inside the same storage
assert row1.storage_offset() == 3
wide = torch.tensor([1.0, 2.0]).expand(1000, 2)  # 1000 rows, no new memory
assert wide.stride() == (0, 1)

# %% [markdown]
# ## 7. Devices
#
# Tensors live on a device. Operations need their operands on the same device. Pick one
# device at the top of a script and move data and models there with `.to(device)`. The
# `meta` device holds only shapes and dtypes: handy to size a model without allocating it.

# %%
device = choose_device()
print("device:", device)
on_dev = torch.ones(3).to(device)
assert on_dev.device.type == device.type
assert torch.equal(on_dev.cpu(), torch.ones(3))
meta = torch.empty(100_000, 100_000, device="meta")  # 40 GB if it were real
assert meta.shape == (100_000, 100_000) and meta.is_meta
half = torch.ones(3).to(torch.bfloat16)
assert half.dtype == torch.bfloat16 and half.element_size() == 2
print("lesson 01 done")
