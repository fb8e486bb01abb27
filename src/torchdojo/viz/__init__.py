"""Layer 2: plots and interpretation tools — curves, report.html, confusion matrix, image grids,
Grad-CAM, filters and feature maps, decision boundaries.

All figures are pyplot-free :class:`matplotlib.figure.Figure` objects; save them with
:func:`save_figure`.
"""

from torchdojo.viz.attention import (
    AttentionExample,
    attention_figure,
    attention_html,
    attention_page,
    attention_section,
)
from torchdojo.viz.boundary import decision_boundary_figure
from torchdojo.viz.cam import GradCAM, cam_overlay_figure
from torchdojo.viz.classification import (
    confusion_counts,
    confusion_matrix_figure,
    most_confused_pairs,
    top_losses,
)
from torchdojo.viz.curves import plot_curves
from torchdojo.viz.figures import save_figure
from torchdojo.viz.images import feature_maps_figure, filters_figure, image_grid
from torchdojo.viz.lesson import Lesson, start_lesson
from torchdojo.viz.report import write_report

__all__ = [
    "AttentionExample",
    "GradCAM",
    "Lesson",
    "attention_figure",
    "attention_html",
    "attention_page",
    "attention_section",
    "cam_overlay_figure",
    "confusion_counts",
    "confusion_matrix_figure",
    "decision_boundary_figure",
    "feature_maps_figure",
    "filters_figure",
    "image_grid",
    "most_confused_pairs",
    "plot_curves",
    "save_figure",
    "start_lesson",
    "top_losses",
    "write_report",
]
