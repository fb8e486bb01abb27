"""Layer 4: the ``torchdojo`` command line (typer + rich)."""

from torchdojo.cli.app import app, main

__all__ = ["app", "main"]
