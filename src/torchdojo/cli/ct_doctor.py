"""``torchdojo doctor`` on a LUNA16-style folder: series, candidates, nodules, broken volumes."""

from __future__ import annotations

import json
from pathlib import Path

from torchdojo.cli.app import console, fail


def ct_doctor(path: Path, output: Path | None) -> None:
    """Print the folder's counts and one line per unusable series; exit 1 when there is one."""
    from torchdojo.data.ct import scan_luna_folder

    report = scan_luna_folder(path)
    for key, value in report.items():
        if key != "problems":
            console.print(f"{key.replace('_', ' ')}: {value}", highlight=False)
    for line in report["problems"]:
        console.print(f"[yellow]problem:[/yellow] {line}", soft_wrap=True, highlight=False)
    if output:
        output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if report["problems"]:
        raise fail(f"{len(report['problems'])} problem(s) in {path}: fix the files above", code=1)
    console.print("[green]no problems found[/green]")
