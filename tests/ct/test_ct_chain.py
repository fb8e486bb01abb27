"""The chain's test-time flips and its blob grouping (light: synthetic tensors, no training)."""

from __future__ import annotations

import numpy as np
import torch

from torchdojo.models import create_model
from torchdojo.runs.ct import blob_centres
from torchdojo.runs.lung_ct import flip_average


def test_flip_average_is_the_mean_over_the_mirror_images() -> None:
    torch.manual_seed(0)
    model = create_model("luna-cnn", width=2).eval()
    chips = torch.randn(3, 1, 16, 16, 16)
    plain = flip_average(model, chips, flips=False)
    with torch.inference_mode():
        assert torch.allclose(plain, model(chips).softmax(1))
    averaged = flip_average(model, chips)
    assert averaged.shape == (3, 2) and torch.allclose(averaged.sum(1), torch.ones(3))
    mirrored = flip_average(model, chips.flip(-1, -3))  # the same 8 views, in another order
    assert torch.allclose(averaged, mirrored, atol=1e-5)


def test_blob_centres_find_a_ball_at_its_scale() -> None:
    spacing_xyz = (0.8, 0.8, 1.5)
    z, y, x = np.meshgrid(*(np.arange(n) for n in (24, 48, 48)), indexing="ij")
    mm = np.stack([z * 1.5, y * 0.8, x * 0.8])  # (3, Z, Y, X) in mm, index/row/col order
    hu = np.full((24, 48, 48), -850.0, dtype=np.float32)
    ball = np.linalg.norm(
        mm - np.array([12 * 1.5, 16 * 0.8, 16 * 0.8])[:, None, None, None], axis=0
    )
    hu[ball <= 4.0] = 40.0  # an 8 mm nodule at voxel (12, 16, 16)
    tube = np.hypot(mm[1] - 34 * 0.8, mm[2] - 34 * 0.8)
    hu[tube <= 1.2] = 40.0  # a vessel along the slice axis through (., 34, 34)
    found = blob_centres(hu, spacing_xyz)
    near = [c for c in found if np.abs(np.subtract(c.center_irc, (12, 16, 16))).max() <= 1]
    assert len(near) == 1 and 2.5 <= near[0].mean <= 6.0  # the best scale ~ the ball's radius
    assert all(c.mean <= 2.5 for c in found if abs(c.center_irc[2] - 34) <= 1)  # tube: thin
    outside = np.zeros(hu.shape, dtype=bool)
    assert blob_centres(hu, spacing_xyz, outside) == []
