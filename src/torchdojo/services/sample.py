"""Draw samples from a finished generative run: ``torchdojo sample RUN_DIR --n 64 --out grid.png``.

``sample_run`` rebuilds the run's generator from ``model.json`` + ``model.safetensors`` (a
bundle with ``task="generation"``: a GAN or style generator with ``z_dim``, a VAE, a diffusion
model with ``sample(...)``), draws ``n`` images with a seeded generator (same seed, same grid)
and writes them as one PNG grid. A run that did not finish is refused (its model is not the
trained one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from torchdojo.models import load_bundle
from torchdojo.runs import ConfigError
from torchdojo.runs.sample_quality import sample_images, to_unit_range
from torchdojo.services.finished import require_finished
from torchdojo.utils.io import atomic_write

GENERATION = "generation"


@dataclass(frozen=True)
class SampleResult:
    """Where the grid went and what it holds."""

    path: Path
    n: int
    model: str
    seed: int
    image_shape: tuple[int, ...]


def write_grid(images: Tensor, path: Path, *, ncols: int | None = None) -> Path:
    """Write images in [0, 1], (N, C, H, W), as one PNG grid (2 px gaps), atomically."""
    from torchvision.utils import save_image

    nrow = ncols or max(1, math.ceil(math.sqrt(len(images))))
    suffix = path.suffix.lower().lstrip(".") or "png"
    return atomic_write(
        path, lambda tmp: save_image(images, tmp, nrow=nrow, padding=2, format=suffix)
    )


def sample_run(
    run_dir: Path,
    *,
    n: int = 64,
    out: Path | None = None,
    seed: int = 0,
    steps: int | None = None,
    ncols: int | None = None,
) -> SampleResult:
    """Rebuild a generative run's model, draw ``n`` seeded samples, write them as a grid.

    Args:
        run_dir: A finished run folder (or a bare ``save_bundle`` folder).
        n: Images to draw.
        out: The PNG to write (default ``RUN_DIR/samples.png``).
        seed: Seeds the noise.
        steps: Sampler steps of a diffusion model (None: the model's default).
        ncols: Images per row (default: a square grid).
    """
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    require_finished(run_dir, "sample")
    model, spec = load_bundle(run_dir)
    if spec.task != GENERATION:
        raise ConfigError(
            f"{run_dir} holds a {spec.task} model ({spec.name}), not a generator; sample works "
            "on generative runs (dcgan-mnist, vae-mnist, diffusion-mnist, ...): use "
            "`torchdojo predict` for this one"
        )
    images = to_unit_range(sample_images(model, n, seed=seed, steps=steps))  # (n, C, H, W)
    path = write_grid(images, out or run_dir / "samples.png", ncols=ncols)
    return SampleResult(path, n, spec.name, seed, tuple(images.shape[1:]))


__all__ = ["SampleResult", "sample_run", "write_grid"]
