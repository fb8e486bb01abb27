"""`torchdojo doctor` on annotations: VOC folders, COCO JSON files, image + mask folders."""

from __future__ import annotations

import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from torchdojo.cli.app import console, fail


def annotation_doctor(
    path: Path, images: Path | None, classes: str | None, output: Path | None
) -> None:
    """Print the annotation doctor's class counts and findings; exit 1 when a finding would
    stop training (malformed file, unknown class, bad mask values)."""
    from torchdojo.data.annotation_doctor import (
        annotation_format,
        check_coco,
        check_masks,
        check_voc,
    )

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    kind = annotation_format(path)
    if kind == "coco":
        folder = images or (
            path.parent / "images" if (path.parent / "images").is_dir() else path.parent
        )
        report = check_coco(path, folder, names)
    elif kind == "voc":
        report = check_voc(path, names)
    else:
        report = check_masks(path / "images", path / "masks", classes=names)
    counts = Table("class", "boxes" if kind != "masks" else "images", box=None, header_style="bold")
    for name, n in report.class_counts.items():
        counts.add_row(name, str(n))
    console.print(counts)
    checked = f"{report.format}: {report.num_images} images checked in {escape(report.path)}"
    console.print(checked, soft_wrap=True, highlight=False)
    for f in report.findings:  # one line each, never truncated: file names stay greppable
        colour = "red" if f.severity == "error" else "yellow"
        line = f"[{colour}]{f.severity}[/{colour}] {f.problem} {escape(f.file)}: {escape(f.fix)}"
        console.print(line, soft_wrap=True, highlight=False)
    if not report.findings:
        console.print("[green]no problems found[/green]")
    if output:
        output.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if report.errors:
        raise fail(
            f"{len(report.errors)} annotation error(s) in {path} would stop training; fix the "
            "files listed above",
            code=1,
        )
