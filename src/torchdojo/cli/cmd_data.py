"""Data commands: `torchdojo doctor PATH`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from torchdojo.cli.app import app, console, fail


@app.command()
def doctor(
    path: Annotated[
        Path,
        typer.Argument(
            help="A folder of class subfolders (train/val optional), or text: a .csv/.tsv "
            "file or a folder of <class>/*.txt."
        ),
    ],
    max_bad_fraction: Annotated[
        float, typer.Option(help="Fail above this share of bad files.")
    ] = 0.05,
    output: Annotated[Path | None, typer.Option(help="Also write the report as JSON here.")] = None,
    text_column: Annotated[str | None, typer.Option(help="CSV/TSV: the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="CSV/TSV: the label column.")] = None,
    images: Annotated[Path | None, typer.Option(help="COCO JSON: the images folder.")] = None,
    classes: Annotated[str | None, typer.Option(help="Annotations: classes a,b,c.")] = None,
) -> None:
    """Check data before training: image folders (classes, sizes, duplicates, broken files),
    text (empty rows, duplicates, conflicting labels, imbalance, lines not UTF-8) and
    annotations (VOC folders, COCO JSON, images/ + masks/: boxes, classes, missing files)."""
    from torchdojo.data.annotation_doctor import annotation_format
    from torchdojo.data.doctor import scan_folder
    from torchdojo.data.text_doctor import is_text_data

    if annotation_format(path) is not None:  # VOC folder, COCO JSON, images/ + masks/
        from torchdojo.cli.cmd_annotations import annotation_doctor

        return annotation_doctor(path, images, classes, output)
    from torchdojo.data.ct import is_luna_folder

    if is_luna_folder(path):  # candidates.csv + subset*/*.mhd: LUNA16-style CT
        from torchdojo.cli.ct_doctor import ct_doctor

        return ct_doctor(path, output)
    if is_text_data(path):
        return text_doctor(path, text_column, label_column, output)
    from torchdojo.data.video import is_video_folder

    if is_video_folder(path):  # <class>/*.mp4 (or train/<class>/...): clips, not images
        from torchdojo.cli.video_doctor import video_doctor

        return video_doctor(path, max_bad_fraction, output)
    if not path.is_dir():
        raise fail(f"{path} is not a folder; pass a folder of class subfolders or a .csv/.tsv file")
    report = scan_folder(path, max_bad_fraction=max_bad_fraction)
    counts = Table("split", "class", "images", box=None, header_style="bold")
    for split, per_class in report.class_counts.items():
        for name, n in per_class.items():
            counts.add_row(split, name, str(n))
    console.print(counts)
    imbalance = ", ".join(
        f"{split} {'n/a' if r is None else f'{r:.2f}'}" for split, r in report.imbalance.items()
    )
    console.print(
        f"{report.num_readable} of {report.num_files} files readable; imbalance "
        f"(largest/smallest class): {imbalance}; scanned in {report.seconds:.1f} s"
    )
    if report.problems:
        problems = Table("problem", "file", "detail", box=None, header_style="bold")
        for p in report.problems:
            problems.add_row(p.kind, str(p.path), p.detail)
        console.print(problems)
    else:
        console.print("[green]no problems found[/green]")
    if output:
        output.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if report.too_many_bad:
        raise fail(
            f"{report.bad_fraction:.1%} of the files in {path} are unusable "
            f"(limit {max_bad_fraction:.0%}); remove or fix the files listed above",
            code=1,
        )


def text_doctor(
    path: Path, text_column: str | None, label_column: str | None, output: Path | None
) -> None:
    """Print the text doctor's label counts and problems (exit 0: problems are warnings)."""
    from torchdojo.data.text_doctor import scan_text

    report = scan_text(path, text_column=text_column, label_column=label_column)
    counts = Table("label", "rows", box=None, header_style="bold")
    for name, n in report.label_counts.items():
        counts.add_row(name, str(n))
    console.print(counts)
    columns = f"text column {report.text_column!r}, label column {report.label_column!r}; "
    imbalance = "n/a" if report.imbalance is None else f"{report.imbalance:.2f}"
    console.print(
        f"{report.num_rows} rows; {columns if report.text_column else ''}"
        f"imbalance (largest/smallest label): {imbalance}"
    )
    if report.problems:
        problems = Table("problem", "where", "detail", box=None, header_style="bold")
        for p in report.problems:
            problems.add_row(p.kind, p.where, p.detail)
        console.print(problems)
    else:
        console.print("[green]no problems found[/green]")
    if output:
        output.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
