"""Prediction command: `torchdojo predict RUN_DIR IMAGE_OR_FOLDER`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from torchdojo.cli.app import app, console, err, fail


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder: runs/<recipe>/<time>.")],
    path: Annotated[Path, typer.Argument(help="An image file or a folder of images.")],
    top_k: Annotated[int, typer.Option(help="Classes to show per image.")] = 3,
    output: Annotated[
        Path | None, typer.Option(help="Also write the predictions to a .csv or .json file.")
    ] = None,
) -> None:
    """Classify images with a finished run's model; prints the top-k classes per image."""
    from torchdojo.services.predict import predict as predict_images
    from torchdojo.services.predict import write_predictions

    if top_k < 1:
        raise fail(f"--top-k must be at least 1, got {top_k}")
    if output is not None and output.suffix.lower() not in {".csv", ".json"}:
        raise fail(f"--output {output}: use a .csv or .json file name")
    result = predict_images(run_dir, path, top_k=top_k)
    k = min(top_k, len(result.classes))
    table = Table(box=None, header_style="bold")
    table.add_column("image", overflow="fold")
    for i in range(k):
        table.add_column(f"top {i + 1}", no_wrap=True)
    for p in result.predictions:
        cells = [f"{label} ({prob:.1%})" for label, prob in zip(p.labels, p.probs, strict=True)]
        table.add_row(_shown(Path(p.path), path), *cells)
    if result.predictions:
        console.print(table)
    for bad in result.bad_files:
        err.print(f"[yellow]skipped[/yellow] {bad.path}: {bad.reason}", highlight=False)
    if output is not None:
        console.print(f"wrote {write_predictions(result, output)}")
    if not result.predictions:
        raise fail(f"no readable image at {path}", code=1)


def _shown(file: Path, given: Path) -> str:
    """``file`` relative to the folder the user passed (short table rows)."""
    return str(file.relative_to(given)) if given.is_dir() else str(file)
