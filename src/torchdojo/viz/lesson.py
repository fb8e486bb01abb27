"""What every lesson in ``lessons/`` sets up: smoke mode, an output folder, seeded RNGs, and a
figure saver that keeps figures open in Jupyter and closes them when run as a script.

    LESSON = start_lesson("08_mnist")
    SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save

``TORCHDOJO_SMOKE=1`` asks a lesson for its seconds-long version (the test suite runs every
lesson that way); ``TORCHDOJO_LESSON_OUT`` is where figures go (default ``runs/lessons``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from torchdojo.utils import seed_everything


def in_notebook() -> bool:
    """True inside a running Jupyter kernel (importing ``ipykernel`` alone does not count)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


@dataclass(frozen=True)
class Lesson:
    """A running lesson: whether it is in smoke mode and where its figures go."""

    name: str
    smoke: bool
    out: Path

    def save(self, fig: Figure, name: str) -> Path:
        """Save ``fig`` as ``out/name``; close it unless a notebook should still show it."""
        path = self.out / name
        fig.savefig(path, dpi=72, bbox_inches="tight")
        if not in_notebook():
            import matplotlib.pyplot as plt

            plt.close(fig)
        return path


def start_lesson(name: str, seed: int = 0) -> Lesson:
    """Set a lesson up: the Agg backend outside Jupyter, seeded RNGs, its output folder."""
    if not in_notebook():
        matplotlib.use("Agg")
    seed_everything(seed)
    out = Path(os.environ.get("TORCHDOJO_LESSON_OUT", "runs/lessons")) / name
    out.mkdir(parents=True, exist_ok=True)
    return Lesson(name, os.environ.get("TORCHDOJO_SMOKE") == "1", out)
