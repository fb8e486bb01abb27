# %% [markdown]
# # 00 · A tour of torchdojo: registries, the Trainer, checkpoints and run folders
#
# You will learn:
# - how to find and build models, datasets and recipes by name (and what an unknown name says);
# - how the `Trainer` runs an explicit loop over in-memory batches (`TensorLoader`);
# - how callbacks see the run, and why the loop logs only every N steps;
# - how a checkpoint (safetensors + JSON, no pickle) lets a stopped run continue *bit for bit*;
# - what a run folder holds after `torchdojo run RECIPE`.
#
# Everything here is also what the command line does for you.

# %%
import os
import tempfile
from pathlib import Path

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from torchdojo.data import create_dataset, list_datasets
from torchdojo.engine import Callback, Loaders, TensorLoader, Trainer, TrainerConfig
from torchdojo.models import create_model, list_models
from torchdojo.recipes import RunOptions, list_recipes, run_recipe
from torchdojo.utils import seed_everything

SMOKE = os.environ.get("TORCHDOJO_SMOKE") == "1"
seed_everything(0)

# %% [markdown]
# ## 1. Everything has a name
# Models, datasets and recipes live in registries. An unknown name is answered with the closest
# valid one, not a bare `KeyError`.

# %%
print("models:", ", ".join(list_models()))
print("datasets:", ", ".join(list_datasets()))
print("recipes:", ", ".join(list_recipes()))
assert "mnist-cnn" in list_models() and "mnist-cnn" in list_recipes()
try:
    create_model("mnist-cnm")
except KeyError as err:
    print(err)
    assert "Did you mean 'mnist-cnn'" in str(err)

# %% [markdown]
# ## 2. Data as tensors, batches as slices
# `mnist-tiny` is a synthetic twin of MNIST with the same shapes: 28x28 uint8 images. A
# `TensorLoader` keeps the whole set as one tensor and slices shuffled batches out of it; a
# `Normalize` transform turns each uint8 batch into normalized floats on the fly.

# %%
from torchdojo.data import Normalize  # noqa: E402

train = create_dataset("mnist-tiny", "train")
test = create_dataset("mnist-tiny", "test")
print(train.source, tuple(train.x.shape), train.x.dtype)
assert train.x.shape[1:] == (1, 28, 28) and train.x.dtype == torch.uint8
normalize = Normalize(train.mean, train.std)
loader = TensorLoader(train.x, train.y, batch_size=64, seed=0, transform=normalize)
x, y = next(iter(loader))
assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32 and len(loader) == 8

# %% [markdown]
# ## 3. The Trainer
# `Trainer.fit(model, loaders, loss_fn, optimizer, scheduler)` runs one readable loop. Metrics are
# torchmetrics objects; the loop keeps the running loss as a tensor and reads it only on log
# steps, so it adds no host-device synchronization per step. A callback sees five events.


# %%
class CountSteps(Callback):
    def __init__(self) -> None:
        self.steps = 0

    def on_batch_end(self, trainer, output) -> None:  # noqa: ANN001
        self.steps += 1


def build():
    seed_everything(0)
    model = create_model("mnist-cnn", width=8)
    return model, torch.optim.Adam(model.parameters(), lr=3e-3)


epochs = 2 if SMOKE else 4
counter = CountSteps()
model, optimizer = build()
trainer = Trainer(
    TrainerConfig(epochs=epochs, device="cpu", log_every=4),
    callbacks=[counter],
    metrics={"acc": MulticlassAccuracy(10)},
)
val = TensorLoader(test.x, test.y, batch_size=256, shuffle=False, transform=normalize)
history = trainer.fit(model, Loaders(loader, val), nn.CrossEntropyLoss(), optimizer)
for record in history.records:
    print({k: round(v, 4) for k, v in record.items()})
assert counter.steps == epochs * len(loader)
assert history.records[-1]["train_loss"] < history.records[0]["train_loss"]
assert history.last()["val_acc"] > 0.5
print("threads chosen for this small model:", trainer.env["num_threads"])

# %% [markdown]
# ## 4. Stop, resume, and get the same weights
# Train 5 steps and stop (as if the machine went down after a checkpoint), then resume from
# the checkpoint in a fresh Trainer. The weights equal those of one uninterrupted run, bit for
# bit: the checkpoint holds the model, optimizer, RNG states and the position inside the epoch.

# %%
workdir = Path(tempfile.mkdtemp())
model_a, opt_a = build()
Trainer(TrainerConfig(epochs=2, device="cpu")).fit(
    model_a, Loaders(loader), nn.CrossEntropyLoss(), opt_a
)

model_b, opt_b = build()
Trainer(
    TrainerConfig(epochs=2, device="cpu", max_steps=5, checkpoint_every=5),
    checkpoint_dir=workdir / "ckpt",
).fit(model_b, Loaders(loader), nn.CrossEntropyLoss(), opt_b)
print("checkpoints:", sorted(p.name for p in (workdir / "ckpt").iterdir()))
model_c, opt_c = build()
Trainer(TrainerConfig(epochs=2, device="cpu")).fit(
    model_c, Loaders(loader), nn.CrossEntropyLoss(), opt_c, resume=workdir / "ckpt"
)
same = all(
    torch.equal(a, c)
    for a, c in zip(model_a.state_dict().values(), model_c.state_dict().values(), strict=True)
)
print("resumed weights equal the uninterrupted run:", same)
assert same

# %% [markdown]
# ## 5. A recipe and its run folder
# `torchdojo run mnist-cnn --smoke` does all of the above for one task and writes a run folder:
# config, metrics, TensorBoard events, plots, checkpoints, the trained model and `report.html`.

# %%
result = run_recipe("mnist-cnn", RunOptions(smoke=True, out=str(workdir / "runs"), progress=False))
print(result.run_dir, result.metrics)
print(sorted(p.name for p in result.run_dir.iterdir()))
for name in ("config.yaml", "metrics.jsonl", "report.html", "model.safetensors", "env.json"):
    assert (result.run_dir / name).exists(), name
