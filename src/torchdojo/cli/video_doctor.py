"""``torchdojo doctor`` on a folder of video clips: counts per class, frames, unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from torchdojo.cli.app import console, fail


def video_doctor(path: Path, max_bad_fraction: float, output: Path | None) -> None:
    """Print clips per split and class and one line per unreadable or zero-frame file."""
    from torchdojo.data.video import scan_video_folder

    report = scan_video_folder(path)
    counts = Table("split", "class", "clips", box=None, header_style="bold")
    for split, per_class in report["class_counts"].items():
        for name, n in per_class.items():
            counts.add_row(split, name, str(n))
    console.print(counts)
    readable = sum(n for per_class in report["class_counts"].values() for n in per_class.values())
    span = report["frames"]
    frames = f"; frames per clip {span['min']}-{span['max']}" if span else ""
    console.print(f"{readable} of {readable + len(report['problems'])} clips readable{frames}")
    for line in report["problems"]:
        console.print(f"[yellow]unreadable:[/yellow] {line}", soft_wrap=True, highlight=False)
    if not report["problems"]:
        console.print("[green]no problems found[/green]")
    if output:
        output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    total = readable + len(report["problems"])
    if total and len(report["problems"]) / total > max_bad_fraction:
        raise fail(
            f"{len(report['problems'])} of {total} clips in {path} are unusable "
            f"(limit {max_bad_fraction:.0%}); remove or re-encode the files listed above",
            code=1,
        )
