"""What `torchdojo predict` prints for a detection, segmentation or pose run: one row per image,
then where the drawn images, masks and ``predictions.json`` went."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from torchdojo.cli.app import console, err, fail


def show_dense(run_dir: Path, path: Path, output: Path | None, score_thresh: float | None) -> None:
    """Predict with a dense run, print a summary per image, and say where the files are."""
    from torchdojo.export.dense import DISPLAY_SCORE_THRESH
    from torchdojo.services.predict_dense import PREDICTIONS_FILE, predict_dense

    if output is not None and output.suffix.lower() in {".csv", ".json"}:
        raise fail(
            f"--output {output}: a detection or segmentation run writes drawn images, masks and "
            f"{PREDICTIONS_FILE} into a folder; pass a folder name"
        )
    thresh = DISPLAY_SCORE_THRESH if score_thresh is None else score_thresh
    result = predict_dense(run_dir, path, out_dir=output, score_thresh=thresh)
    table = Table(box=None, header_style="bold")
    table.add_column("file", overflow="fold")
    table.add_column("found", overflow="fold")
    for item in result.items:
        if item.detections is not None:
            found = ", ".join(f"{d['label']} {d['score']:.2f}" for d in item.detections[:8])
            more = len(item.detections) - 8
            found = (found + (f", +{more} more" if more > 0 else "")) or "no boxes"
        elif item.people is not None:
            found = f"{len(item.people)} people" if item.people else "nobody"
        else:
            counts = item.pixel_counts or {}
            total = max(1, item.width * item.height)
            found = ", ".join(f"{name} {n / total:.1%}" for name, n in counts.items() if n)
        table.add_row(Path(item.path).name if path.is_dir() else item.path, found)
    if result.items:
        console.print(table)
    for bad in result.bad_files:
        err.print(
            f"[yellow]skipped[/yellow] {bad.path}: {bad.reason}", highlight=False, soft_wrap=True
        )
    console.print(
        f"wrote {len(result.items)} drawn images and {Path(result.out_dir) / PREDICTIONS_FILE}"
    )
    if not result.items:
        raise fail(f"no readable image at {path}", code=1)
