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
# steps, so it adds no host-device synchronization per step. A callback hooks into the loop's
# events (`on_fit_start`, `on_epoch_start`, `on_batch_start`, `on_before_step`, `on_batch_end`,
# `on_validation_start/end`, `on_epoch_end`, `on_fit_end`); techniques such as `EMA`, `Mix`
# (MixUp/CutMix), `Freeze` and `GradientClipping` are callbacks, so they combine freely.


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
# The CPU thread count depends on the work and the machine, never on what else is running, so
# the same seed gives the same weights on a busy machine too; the reason is in env.json.
print("threads:", trainer.env["num_threads"], "-", trainer.env["threads_reason"])

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
# ## 5. Any task: several models, your own step
# A GAN has two models and two optimizers stepped in turn; a detector's targets are lists of
# boxes. The same `fit` takes dicts of models and optimizers and a `step(trainer, batch)` that
# does its own backward passes and optimizer steps (`trainer.backward`, `trainer.step_optimizer`),
# while the loop keeps logging, checkpoints, exact resume, AMP and DDP. Here a generator learns
# to draw points from N(3, 0.5) against a discriminator: the mean of its samples moves to 3.

# %%
from torchdojo.engine import StepOutput  # noqa: E402

points = torch.randn(2048, 1) * 0.5 + 3.0  # the "real data": samples of N(3, 0.5)
gan_loader = TensorLoader(points, torch.zeros(len(points)), batch_size=128, seed=0)


def gan_step(trainer: Trainer, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
    real, _ = batch
    G, D = trainer.models["G"], trainer.models["D"]
    fake = G(torch.randn(len(real), 4))  # (B, 1)
    bce = nn.functional.binary_cross_entropy_with_logits
    ones, zeros = torch.ones(len(real), 1), torch.zeros(len(real), 1)
    d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)  # D: real -> 1, fake -> 0
    trainer.backward(d_loss)
    trainer.step_optimizer("D")
    g_loss = bce(D(fake), ones)  # G: make D say 1 on fakes
    trainer.backward(g_loss)
    trainer.step_optimizer("G")
    return StepOutput(d_loss + g_loss, len(real), values={"d_loss": d_loss, "g_loss": g_loss})


seed_everything(0)
G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
D = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1))
adam = {  # betas (0.5, 0.999): the DCGAN paper's, steadier for the two-player game
    name: torch.optim.Adam(m.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for name, m in {"G": G, "D": D}.items()
}
Trainer(TrainerConfig(epochs=20, device="cpu")).fit(  # 320 steps, about a second
    {"G": G, "D": D}, Loaders(gan_loader), optimizer=adam, step=gan_step
)
with torch.no_grad():
    samples = G(torch.randn(4096, 4))
print(f"generated mean {samples.mean():.2f} (real 3.00)")
assert abs(float(samples.mean()) - 3.0) < 0.3

# %% [markdown]
# ## 6. A recipe and its run folder
# `torchdojo run mnist-cnn --smoke` does all of the above for one task and writes a run folder:
# config, metrics, TensorBoard events, plots, checkpoints, the trained model and `report.html`.

# %%
result = run_recipe("mnist-cnn", RunOptions(smoke=True, out=str(workdir / "runs"), progress=False))
print(result.run_dir, result.metrics)
print(sorted(p.name for p in result.run_dir.iterdir()))
for name in ("config.yaml", "metrics.jsonl", "report.html", "model.safetensors", "env.json"):
    assert (result.run_dir / name).exists(), name
