"""Decision regions follow the classifier's rule."""

from __future__ import annotations

import numpy as np
import torch

from torchdojo.viz import decision_boundary_figure
from torchdojo.viz.boundary import predict_labels


def test_predict_labels_accepts_labels_scores_and_probabilities() -> None:
    points = np.array([[-1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    assert predict_labels(lambda p: (p[:, 0] > 0).astype(int), points).tolist() == [0, 1]
    assert predict_labels(lambda p: torch.tensor([[2.0, 1.0], [0.0, 3.0]]), points).tolist() == [
        0,
        1,
    ]
    assert predict_labels(lambda p: np.array([0.2, 0.7]), points).tolist() == [0, 1]


def test_regions_follow_a_linear_rule() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    fig = decision_boundary_figure(
        lambda p: torch.sigmoid(torch.from_numpy(p).sum(1) * 5),
        X,
        y,
        class_names=["neg", "pos"],
        resolution=50,
    )
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["neg", "pos"]
    assert len(ax.collections) >= 3  # filled regions + one scatter per class
    x_low, x_high = ax.get_xlim()
    assert x_low < X[:, 0].min() and x_high > X[:, 0].max()
