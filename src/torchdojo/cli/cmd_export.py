"""Ship a model: `torchdojo export RUN_DIR` and `torchdojo serve EXPORT_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from torchdojo.cli.app import app, console, fail


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")],
    format: Annotated[
        str, typer.Option(help="onnx (for `torchdojo serve`) or torch-export.")
    ] = "onnx",
    out: Annotated[
        Path | None, typer.Option(help="Export folder (default: RUN_DIR/export).")
    ] = None,
) -> None:
    """Export a finished run's model with its model card and an ONNX Runtime vs PyTorch
    parity report."""
    from torchdojo.services.export import export_run

    if format not in {"onnx", "torch-export"}:
        raise fail(f"--format must be onnx or torch-export, not {format!r}")
    result, source = export_run(run_dir, format=format, out_dir=out)  # type: ignore[arg-type]
    p = result.parity
    console.print(f"exported {result.model_path} ({result.card.exporter})")
    if hasattr(p, "describe"):  # detection / segmentation: compared after post-processing
        console.print(f"parity on {source}, {p.describe()}")
    else:
        console.print(
            f"parity on {source}, batches {list(p.batch_sizes)}: max |dprob| "
            f"{p.max_abs_diff_probs:.2e} (tol {p.atol_probs:.0e}), max |dlogit| "
            f"{p.max_abs_diff_logits:.2e}, top-1 agreement {p.top1_agreement:.1%}"
        )
    lengths = getattr(p, "seq_lengths", ())  # text exports: sentences of varied length
    if lengths:
        console.print(
            f"  sequence lengths {min(lengths)}..{max(lengths)} ({len(lengths)} distinct)"
        )
    for note in getattr(result.card, "notes", ()):  # how the graph differs from the module
        console.print(f"note: {note}")
    if format == "onnx":
        console.print(f"serve it: torchdojo serve {result.out_dir}")


@app.command()
def serve(
    export_dir: Annotated[Path, typer.Argument(help="A folder written by `torchdojo export`.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload.")] = 10.0,
    max_concurrency: Annotated[int, typer.Option(help="Inferences running at once.")] = 2,
) -> None:
    """Serve an exported model: web page at /, POST /predict (an image upload, or JSON
    {"text": ...} for a text model), GET /health, docs at /docs."""
    from torchdojo.serve import run_server
    from torchdojo.services.finished import require_finished

    if not (export_dir / "card.json").is_file():
        raise fail(f"{export_dir} has no card.json; export a run first: torchdojo export RUN_DIR")
    require_finished(export_dir.parent, "serve")  # RUN_DIR/export of a run that failed later
    console.print(f"serving {export_dir} on http://{host}:{port}/  (Ctrl-C to stop)")
    run_server(
        export_dir,
        host=host,
        port=port,
        max_upload_bytes=int(max_upload_mb * 2**20),
        max_concurrency=max_concurrency,
    )
