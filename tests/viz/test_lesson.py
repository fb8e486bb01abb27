"""start_lesson: smoke flag, output folder, seeding, figures saved and closed outside Jupyter."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from torchdojo.viz import start_lesson


def test_start_lesson_reads_the_environment_and_saves_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCHDOJO_SMOKE", "1")
    monkeypatch.setenv("TORCHDOJO_LESSON_OUT", str(tmp_path))
    lesson = start_lesson("99_demo", seed=3)
    first = torch.rand(3)
    assert lesson.smoke and lesson.out == tmp_path / "99_demo" and lesson.out.is_dir()
    start_lesson("99_demo", seed=3)
    assert torch.equal(torch.rand(3), first)  # seeded
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = lesson.save(fig, "line.png")
    assert path.stat().st_size > 1000 and not plt.fignum_exists(fig.number)
    monkeypatch.delenv("TORCHDOJO_SMOKE")
    assert not start_lesson("99_demo").smoke
