"""The zoo contract: every registered model builds with its defaults, gives finite logits of
shape (B, num_classes), sends gradients to every parameter, and matches its golden summary.

Regenerate the goldens after a deliberate model change:
    python tests/models/test_contract.py --update            # every model
    python tests/models/test_contract.py --update vgg11      # some models
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from torchdojo.models import create_model, get_model_builder, list_models

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "models.json"
BATCH = 2
# Input shapes that the builders' defaults cannot tell (a model flattening 28x28 digits).
INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "mlp": (BATCH, 1, 28, 28),
    # MNIST-1D models read 40-sample signals
    **dict.fromkeys(
        ("mnist1d-logistic", "mnist1d-mlp", "mnist1d-convbase", "mnist1d-gru", "mnist1d-resnet"),
        (BATCH, 1, 40),
    ),
    "audio-cnn": (BATCH, 1, 40, 101),  # a 1 s log-mel spectrogram: 40 mel bands x 101 frames
    # video: clips (B, C, T, H, W), 8 sampled frames of 32x32
    **dict.fromkeys(("eco-lite", "frame-average", "r2plus1d"), (BATCH, 1, 8, 32, 32)),
    "openpose-small": (BATCH, 3, 64, 64),  # maps at 1/4: 16 x 16
    # segmentation: logits (B, K, H, W) at the input's size; 40 is no multiple of U-Net's 16
    "unet": (BATCH, 1, 48, 40),
    "luna-cnn": (BATCH, 1, 16, 32, 32),  # a 3-D CT chip (index, row, col): 4 pools of 2
    "pspnet-mobilenetv2": (BATCH, 3, 48, 48),
    "deeplabv3-mobilenetv2": (BATCH, 3, 48, 48),
}

# Models with several outputs: the one whose leading (B, C) must be (BATCH, num_classes), and
# the one the goldens summarize; the backward check uses every output.
OUTPUT_PICKERS: dict[str, Callable[[Any], torch.Tensor]] = {
    "openpose-small": lambda out: out[0][:, :-1],  # heatmaps (B, K + 1, h, w) less background
    # detectors: (boxes (B, A, 4), scores (B, A, C)); scores moved to (B, C, A)
    **dict.fromkeys(
        ("ssdlite-mobilenetv2", "ssd-vgg", "fcos-mobilenetv2"),
        lambda out: out[1].transpose(1, 2),
    ),
}


def main_output(name: str, out: Any) -> torch.Tensor:
    """The output checked against num_classes (OUTPUT_PICKERS, else the output itself)."""
    return OUTPUT_PICKERS[name](out) if name in OUTPUT_PICKERS else out


def all_outputs(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, tuple | list) else [out]


def input_shape(name: str) -> tuple[int, ...]:
    """(B, C, H, W) for a model: from the table above, else from its builder's defaults."""
    if name in INPUT_SHAPES:
        return INPUT_SHAPES[name]
    params = inspect.signature(get_model_builder(name)).parameters
    channels = params["in_channels"].default if "in_channels" in params else 3
    default_side = 28 if channels == 1 else 32  # MNIST models vs CIFAR models
    side = params["image_size"].default if "image_size" in params else default_side
    return (BATCH, channels, side, side)


def text_inputs(vocab_size: int = 1000, length: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (B, T) and a padding mask for text models; the second row ends in padding."""
    ids = torch.randint(1, vocab_size, (BATCH, length))
    mask = torch.ones(BATCH, length, dtype=torch.int64)
    mask[1, length // 2 :] = 0
    return ids * mask, mask  # padding positions hold pad_id 0


# Models whose inputs are not one float tensor of input_shape(name).
INPUT_BUILDERS: dict[str, Callable[[], tuple[torch.Tensor, ...]]] = dict.fromkeys(
    ("text-bow", "text-rnn", "text-lstm", "text-gru", "text-transformer"), text_inputs
)
INPUT_BUILDERS["minilm"] = text_inputs  # ids 1..999 are in its 30,522-piece vocabulary

# Generative models have no classes: the output shape they must give instead (their input comes
# from INPUT_BUILDERS or INPUT_SHAPES). GAN generators read noise (B, z_dim).
OUTPUT_SHAPES: dict[str, tuple[int, ...]] = {
    **{f"dcgan-{s}": (BATCH, 1, s, s) for s in (28, 32, 64)},
    **{f"sagan-{s}": (BATCH, 1, s, s) for s in (28, 32, 64)},
    "vae-mnist": (BATCH, 1, 28, 28),  # (pixel logits, mu, logvar): the logits
}
GAN_NOISE = [n for n in OUTPUT_SHAPES if n.startswith(("dcgan-", "sagan-"))]
INPUT_BUILDERS.update(dict.fromkeys(GAN_NOISE, lambda: (torch.randn(BATCH, 100),)))
INPUT_BUILDERS["vae-mnist"] = lambda: (torch.randn(BATCH, 1, 28, 28),)
OUTPUT_PICKERS["vae-mnist"] = lambda out: out[0]
# The diffusion U-Net predicts noise from (x_t, t); the style generator reads z (B, 64).
OUTPUT_SHAPES.update({"ddpm-unet-28": (BATCH, 1, 28, 28), "stylegan-28": (BATCH, 1, 28, 28)})
INPUT_BUILDERS["ddpm-unet-28"] = lambda: (torch.randn(BATCH, 1, 28, 28), torch.tensor([0, 999]))
INPUT_BUILDERS["stylegan-28"] = lambda: (torch.randn(BATCH, 64),)


def make_inputs(name: str, shape: tuple[int, ...] | None = None) -> tuple[torch.Tensor, ...]:
    """The positional inputs of a model: from INPUT_BUILDERS, else one randn of ``shape``."""
    if name in INPUT_BUILDERS:
        return INPUT_BUILDERS[name]()
    return (torch.randn(shape or input_shape(name)),)


def golden_summary(name: str) -> dict[str, Any]:
    """Parameter count, output shape and output mean/std for seeded weights and input."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    torch.manual_seed(1)
    x = make_inputs(name)
    with torch.no_grad():
        y = main_output(name, model(*x))
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "output_shape": list(y.shape),
        "mean": float(f"{y.mean().item():.6g}"),
        "std": float(f"{y.std().item():.6g}"),
    }


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_zoo_is_populated() -> None:
    names = list_models()
    for expected in ("lenet5", "resnet18", "vit-tiny", "mobilenet-v2", "swin-mini"):
        assert expected in names


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_contract(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).train()
    out = model(*make_inputs(name))
    logits = main_output(name, out)
    if name in OUTPUT_SHAPES:  # generative: images (B, C, H, W), no classes
        assert logits.shape == OUTPUT_SHAPES[name]
    else:
        num_classes = inspect.signature(get_model_builder(name)).parameters["num_classes"].default
        assert logits.shape[:2] == (BATCH, num_classes)  # (B, C) or dense (B, C, H, W)
    assert torch.isfinite(logits).all()
    loss = sum(o.square().mean() for o in all_outputs(out))
    if hasattr(model, "forward_aux"):  # PSPNet's auxiliary head is reached in training only
        loss = loss + model.forward_aux(*make_inputs(name))[1].square().mean()
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: no gradient reaches {no_grad[:5]}"
    bad = [
        n
        for n, p in model.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]
    assert not bad, f"{name}: non-finite gradients in {bad[:5]}"


@pytest.mark.parametrize("name", list_models())
def test_num_classes_and_in_channels_are_honoured(name: str) -> None:
    params = inspect.signature(get_model_builder(name)).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values()), (
        f"{name}: builder options must be keyword-only"
    )
    if name in OUTPUT_SHAPES:
        return  # generative models have no classes; their shape is checked above
    assert "num_classes" in params
    shape = list(input_shape(name))
    kwargs: dict[str, Any] = {"num_classes": 7}
    if "in_channels" in params:
        kwargs["in_channels"] = shape[1] = 2
        if name == "mlp":
            kwargs["in_features"] = 2 * 28 * 28
    elif "in_features" in params:
        kwargs["in_features"] = math.prod(shape[1:])
    model = create_model(name, **kwargs).eval()
    with torch.no_grad():
        assert main_output(name, model(*make_inputs(name, tuple(shape)))).shape[:2] == (BATCH, 7)


@pytest.mark.parametrize("name", list_models())
def test_golden_summary(name: str) -> None:
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if name not in golden:
        pytest.fail(
            f"no golden for {name!r}: run `python tests/models/test_contract.py --update "
            f"{name}` and commit tests/golden/models.json"
        )
    want, got = golden[name], golden_summary(name)
    assert got["params"] == want["params"]
    assert got["output_shape"] == want["output_shape"]
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-3, abs=1e-5)
    assert got["std"] == pytest.approx(want["std"], rel=1e-3, abs=1e-5)


def update_golden(names: list[str]) -> None:
    """Recompute the goldens of ``names`` (all models when empty) and rewrite the JSON file."""
    torch.set_num_threads(1)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    for name in names or list_models():
        golden[name] = golden_summary(name)
        print(name, golden[name])
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(golden.items())]
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one line per model


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "--update":
        sys.exit("usage: python tests/models/test_contract.py --update [NAME ...]")
    update_golden(sys.argv[2:])
