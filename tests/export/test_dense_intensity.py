"""A one-channel segmenter is fed 16-bit images scaled the way it was trained: the scaling is a
key of the model spec, carried into the export card, and applied by predict, export and serve."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from torchdojo.export.dense import dense_card, prepare, to_model_image
from torchdojo.models.bundle import ModelSpec
from torchdojo.services.predict_dense import card_of
from torchdojo.utils.intensity import log_scale, normalize_percentiles


def microscope_image() -> Image.Image:
    """A 16-bit field: background ~150, one bright nucleus ~3000, one hot pixel."""
    rng = np.random.default_rng(0)
    raw = rng.normal(150, 10, (24, 32)).clip(0, None)
    raw[8:16, 10:20] = 3000
    raw[0, 0] = 60000
    return Image.fromarray(raw.astype(np.uint16))  # mode I;16


@pytest.mark.parametrize(("scaling", "scale"), [("log", log_scale), ("percentiles", None)])
def test_prepare_applies_the_cards_scaling(scaling: str, scale) -> None:
    image = microscope_image()
    x = prepare([image], (1, 24, 32), scaling)  # same size: no resize
    raw = np.asarray(image, dtype=np.float32)
    expected = (scale or normalize_percentiles)(raw)
    np.testing.assert_allclose(x[0, 0].numpy(), expected, atol=1e-6)


def test_an_empty_field_stays_dark_on_the_log_scale_only() -> None:
    noise = np.random.default_rng(1).normal(150, 10, (24, 32)).clip(0, None)
    empty = Image.fromarray(noise.astype(np.uint16))  # no nucleus at all
    log, stretched = (prepare([empty], (1, 24, 32), s)[0, 0] for s in ("log", "percentiles"))
    # the per-image stretch turns the noise into mid-grey "nuclei"; the fixed log scale does not
    assert float(log.mean()) < 0.15 < 0.3 < float(stretched.mean())


def test_a_bbbc039_run_card_says_log_and_an_old_run_percentiles() -> None:
    def spec(preprocess: dict) -> ModelSpec:
        return ModelSpec(
            "unet", {}, [1, 24, 32], [0.0], [1.0], ["bg", "nucleus"], "segmentation", preprocess
        )

    assert card_of(spec({"intensity": "log"})).intensity == "log"
    assert card_of(spec({})).intensity == "percentiles"
    with pytest.raises(ValueError, match="intensity 'gamma'"):
        card_of(spec({"intensity": "gamma"}))
    assert dense_card("segmentation", ["a", "b"], (1, 8, 8), intensity="log").intensity == "log"


def test_float_images_in_unit_range_are_drawn_bright_not_black() -> None:
    pixels = np.full((4, 4), 0.8, dtype=np.float32)
    drawn = np.asarray(to_model_image(Image.fromarray(pixels), 1))
    assert int(drawn.max()) == 204  # 0.8 * 255, as data.transforms.to_rgb draws it
