"""Torch-free preprocessing and decoding agree with torchvision and refuse bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from torchdojo.export import ModelCard, decode_image, preprocess_image
from torchdojo.export.card import card_from_dict, default_resize_size
from torchdojo.export.predictor import rank


def card(
    input_size: tuple[int, int, int], mean: tuple[float, ...], std: tuple[float, ...]
) -> ModelCard:
    return ModelCard(
        input_size=input_size,
        mean=mean,
        std=std,
        class_names=("a", "b", "c"),
        model_file="model.onnx",
        format="onnx",
        exporter="dynamo",
        resize_size=default_resize_size(input_size),
    )


def noise_image(width: int, height: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    channels = 3 if mode == "RGB" else 1
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode=mode)


@pytest.mark.parametrize("size", [(300, 200), (150, 400), (224, 224), (33, 500)])
def test_matches_torchvision_eval_transform(size: tuple[int, int]) -> None:
    image = noise_image(*size)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    reference = v2.Compose(
        [
            v2.Resize(256, interpolation=v2.InterpolationMode.BILINEAR),
            v2.CenterCrop(224),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )(image)
    got = preprocess_image(image, card((3, 224, 224), mean, std))
    assert got.shape == (3, 224, 224) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference.numpy(), atol=1e-5)  # same Pillow resampling


def test_grayscale_card_converts_color_images() -> None:
    got = preprocess_image(noise_image(40, 40), card((1, 28, 28), (0.5,), (0.5,)))
    assert got.shape == (1, 28, 28)
    assert got.min() >= -1.0 and got.max() <= 1.0


def test_tiny_images_are_upscaled_then_cropped() -> None:
    got = preprocess_image(noise_image(5, 9), card((3, 32, 32), (0, 0, 0), (1, 1, 1)))
    assert got.shape == (3, 32, 32)


def test_decode_rejects_garbage_truncation_and_bombs() -> None:
    buffer = io.BytesIO()
    noise_image(64, 64).save(buffer, format="PNG")
    png = buffer.getvalue()
    assert decode_image(png).size == (64, 64)
    with pytest.raises(ValueError, match="could not decode"):
        decode_image(b"definitely not an image")
    with pytest.raises(ValueError, match="could not decode"):
        decode_image(png[: len(png) // 2])
    with pytest.raises(ValueError, match="more than the 1000 accepted"):
        decode_image(png, max_pixels=1000)


def test_card_from_dict_checks_fields() -> None:
    with pytest.raises(ValueError, match="lacks"):
        card_from_dict({"input_size": [3, 8, 8]})
    with pytest.raises(ValueError, match="one per input channel"):
        card_from_dict(
            {
                "input_size": [3, 8, 8],
                "mean": [0.5],
                "std": [0.5],
                "class_names": ["a"],
                "model_file": "m",
            }
        )


def test_rank_orders_and_caps_k() -> None:
    ranked = rank(np.array([0.1, 0.7, 0.2], dtype=np.float32), ("a", "b", "c"), k=10)
    assert [p.label for p in ranked] == ["b", "c", "a"]
    with pytest.raises(ValueError, match="k must be at least 1"):
        rank(np.array([1.0]), ("a",), k=0)
