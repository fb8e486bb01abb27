"""Sampling command: `torchdojo sample RUN_DIR --n 64 --out grid.png` (generative runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from torchdojo.cli.app import app, console


@app.command()
def sample(
    run_dir: Annotated[
        Path, typer.Argument(help="A finished generative run folder: runs/<recipe>/<time>.")
    ],
    n: Annotated[int, typer.Option("--n", help="Images to draw.")] = 64,
    out: Annotated[
        Path | None, typer.Option(help="The PNG grid to write (default RUN_DIR/samples.png).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the noise: same seed, same grid.")] = 0,
    steps: Annotated[
        int | None, typer.Option(help="Diffusion runs: sampler steps (default: the model's).")
    ] = None,
    ncols: Annotated[
        int | None, typer.Option(help="Images per row (default: a square grid).")
    ] = None,
) -> None:
    """Draw images from a finished GAN, VAE or diffusion run and write them as one PNG grid."""
    from torchdojo.services.sample import sample_run

    result = sample_run(run_dir, n=n, out=out, seed=seed, steps=steps, ncols=ncols)
    shape = "x".join(str(s) for s in result.image_shape)
    console.print(
        f"{result.n} samples ({shape}) of {result.model}, seed {result.seed}: {result.path}",
        highlight=False,
    )
