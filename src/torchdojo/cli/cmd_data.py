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
        Path, typer.Argument(help="A folder of class subfolders (train/val optional).")
    ],
    max_bad_fraction: Annotated[
        float, typer.Option(help="Fail above this share of bad files.")
    ] = 0.05,
    output: Annotated[Path | None, typer.Option(help="Also write the report as JSON here.")] = None,
) -> None:
    """Check an image folder before training: classes, sizes, duplicates, broken files."""
    from torchdojo.data.doctor import scan_folder

    if not path.is_dir():
        raise fail(f"{path} is not a folder; pass a folder of class subfolders")
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
