"""Prediction command: `torchdojo predict RUN_DIR IMAGE_OR_FOLDER` (image runs),
`RUN_DIR CLIP.wav|FOLDER` (audio runs), and `RUN_DIR --text "a sentence"` or
`RUN_DIR texts.txt|texts.csv` (text runs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from torchdojo.cli.app import app, console, err, fail

if TYPE_CHECKING:
    from torchdojo.services.predict import PredictResult, TextPredictResult

OUTPUT_SUFFIXES = {".csv", ".json"}


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder: runs/<recipe>/<time>.")],
    path: Annotated[
        Path | None,
        typer.Argument(
            help="Image runs: an image file or a folder of images. Audio runs: a .wav file or a "
            "folder. Text runs: a .txt file (one text per line) or a .csv/.tsv file with a text "
            "column."
        ),
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option("--text", help="Text runs: a sentence to classify; repeat for more."),
    ] = None,
    top_k: Annotated[int, typer.Option(help="Classes to show per image or clip.")] = 3,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "--out",
            help="Also write the predictions to a .csv or .json file (detection and "
            "segmentation runs: a folder for drawn images, masks and predictions.json).",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Text runs: write each text's tokens coloured by attention (.html)."),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="Text runs: the CSV/TSV column holding the texts.")
    ] = None,
    score_thresh: Annotated[
        float | None, typer.Option(help="Detection runs: lowest score kept (default 0.3).")
    ] = None,
) -> None:
    """Classify images, sound clips or texts with a finished run's model; prints the classes and
    probabilities (and, for text models with attention, each token's weight). Detection,
    segmentation and pose runs draw boxes, masks or skeletons into copies of the images and
    write JSON."""
    from torchdojo.services.predict import TextPredictResult, predict_run, run_task

    if run_task(run_dir) in ("detection", "segmentation", "pose") and path is not None:
        from torchdojo.cli.predict_dense import show_dense  # boxes / masks drawn into copies

        return show_dense(run_dir, path, output, score_thresh)
    if top_k < 1:
        raise fail(f"--top-k must be at least 1, got {top_k}")
    if output is not None and output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise fail(f"--output {output}: use a .csv or .json file name")
    if html is not None and html.suffix.lower() not in {".html", ".htm"}:
        raise fail(f"--html {html}: use a .html file name")
    result = predict_run(run_dir, path, texts=text or [], top_k=top_k, text_column=text_column)
    if isinstance(result, TextPredictResult):
        _show_texts(result, output, html)
        return
    if html is not None:
        raise fail(f"--html is for text runs; {run_dir} holds no text classifier: drop --html")
    _show_images(result, path or Path("."), top_k, output)


def _show_texts(result: TextPredictResult, output: Path | None, html: Path | None) -> None:
    from torchdojo.services.predict import write_attention_page, write_text_predictions

    table = Table(box=None, header_style="bold")
    table.add_column("text", overflow="fold", ratio=2)
    table.add_column("label", no_wrap=True)
    if result.has_attention:
        table.add_column("tokens (attention)", overflow="fold", ratio=3)
    for p in result.predictions:
        cells = [escape(p.text), f"{escape(p.label)} ({p.probability:.1%})"]
        if p.attention is not None:
            pairs = zip(p.tokens, p.attention, strict=True)
            cells.append(" ".join(f"{escape(t)}:{w:.2f}" for t, w in pairs))
        table.add_row(*cells)
    console.print(table)
    if output is not None:
        console.print(f"wrote {write_text_predictions(result, output)}")
    if html is not None:
        console.print(f"wrote {write_attention_page(result, html)}")


def _show_images(result: PredictResult, path: Path, top_k: int, output: Path | None) -> None:
    from torchdojo.services.predict import write_predictions

    k = min(top_k, len(result.classes))
    table = Table(box=None, header_style="bold")
    table.add_column("file", overflow="fold")
    for i in range(k):
        table.add_column(f"top {i + 1}", no_wrap=True)
    for p in result.predictions:
        cells = [f"{label} ({prob:.1%})" for label, prob in zip(p.labels, p.probs, strict=True)]
        table.add_row(_shown(Path(p.path), path), *cells)
    if result.predictions:
        console.print(table)
    for bad in result.bad_files:
        err.print(
            f"[yellow]skipped[/yellow] {bad.path}: {bad.reason}", highlight=False, soft_wrap=True
        )
    if output is not None:
        console.print(f"wrote {write_predictions(result, output)}")
    if not result.predictions:
        raise fail(f"no readable input at {path}", code=1)


def _shown(file: Path, given: Path) -> str:
    """``file`` relative to the folder the user passed (short table rows)."""
    return str(file.relative_to(given)) if given.is_dir() else str(file)
