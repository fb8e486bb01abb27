"""The reference to beat: pytorch/examples' MNIST script, trimmed to stop at a target accuracy.

Same network (conv32-conv64-maxpool-dropout-fc128-dropout-fc10), per-sample PIL -> ToTensor ->
Normalize through a Dataset and a DataLoader (batch 64, test batch 1000, no workers on CPU as
in the example), Adadelta lr 1.0, StepLR gamma 0.7, test after each epoch. Reads the IDX files
under ``$TORCHDOJO_DATA/<MNIST|FashionMNIST>/raw``. Prints one JSON line at the end.

    python benchmarks/reference_mnist.py --dataset MNIST --target 0.99
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

STATS = {"MNIST": (0.1307, 0.3081), "FashionMNIST": (0.2860, 0.3530)}


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class IdxImages(Dataset):
    """Like torchvision's MNIST: a uint8 array, PIL image per sample, then the transform."""

    def __init__(self, root: Path, train: bool, transform: transforms.Compose) -> None:
        prefix = "train" if train else "t10k"
        self.images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
        self.labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[i], mode="L")
        return self.transform(img), int(self.labels[i])


def train(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer) -> None:
    model.train()
    for data, target in loader:
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()


def test(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in loader:
            correct += model(data).argmax(dim=1).eq(target).sum().item()
    return correct / len(loader.dataset)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="MNIST", choices=sorted(STATS))
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    root = Path(os.environ.get("TORCHDOJO_DATA", "~/.cache/torchdojo")).expanduser()
    mean, std = STATS[args.dataset]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    raw = root / args.dataset / "raw"
    train_loader = DataLoader(IdxImages(raw, True, transform), batch_size=64, shuffle=True)
    test_loader = DataLoader(IdxImages(raw, False, transform), batch_size=1000)
    model = Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    accs: list[float] = []
    for _epoch in range(args.epochs):
        train(model, train_loader, optimizer)
        accs.append(test(model, test_loader))
        scheduler.step()
        if accs[-1] >= args.target:
            break
    result = {
        "reached": accs[-1] >= args.target,
        "seconds": time.perf_counter() - started,
        "epochs": len(accs),
        "accs": accs,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
