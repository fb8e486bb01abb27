"""The malignancy ceiling: the synthetic twin's own P(malignant), read back for each chip."""

from __future__ import annotations

from pathlib import Path

import torch

from torchdojo.data.ct import read_candidates, write_synthetic_luna
from torchdojo.data.ct_synthetic import (
    MALIGNANCY_NOISE,
    malignancy_logit,
    malignancy_probabilities,
)

TINY = {"n_series": 1, "seed": 1, "shape": (16, 32, 32), "negatives_per_nodule": 2}


def test_generator_probs_follow_the_drawn_size_and_spiculation(tmp_path: Path) -> None:
    root = write_synthetic_luna(tmp_path / "luna", **TINY)  # type: ignore[arg-type]
    nodules = [c for c in read_candidates(root) if c.is_nodule]
    probs = malignancy_probabilities(root, nodules)
    assert probs is not None and probs.shape == (len(nodules),)
    assert bool(((probs > 0) & (probs < 1)).all())
    # The biggest nodule: logit from its diameter alone (spiculation in 0..1 bounds the rest).
    big = max(range(len(nodules)), key=lambda i: nodules[i].diameter_mm)
    d = nodules[big].diameter_mm
    low, high = (
        float(torch.special.ndtr(torch.tensor(malignancy_logit(d, s) / MALIGNANCY_NOISE)))
        for s in (0.0, 1.0)
    )
    assert low - 1e-6 <= float(probs[big]) <= high + 1e-6


def test_no_ceiling_without_the_drawn_truth(tmp_path: Path) -> None:
    no_truth = malignancy_probabilities(tmp_path, [])  # a LUNA16 folder: no nodules_truth.csv
    assert no_truth is None


def test_logit_is_zero_at_the_reference_and_grows_with_both() -> None:
    assert malignancy_logit(10.0, 0.4) == 0.0
    assert malignancy_logit(15.0, 0.4) > 0.0 and malignancy_logit(10.0, 0.6) > 0.0
