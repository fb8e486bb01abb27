"""Build the documentation site: `torchdojo docs [--serve] [--full] [--out DIR]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from torchdojo.cli.app import _register_commands, app, console


def cli_reference() -> str:
    """The CLI reference page (markdown) made from the typer app by typer's own generator."""
    import typer.cli
    import typer.main

    _register_commands()  # every cmd_* module, also when called outside `main()`
    command = typer.main.get_command(app)
    context = typer.Context(command, info_name="torchdojo")
    text = typer.cli.get_docs_for_click(obj=command, ctx=context, name="torchdojo")
    return text.replace("# `torchdojo`", "# Command line", 1)


@app.command()
def docs(
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the built site on 127.0.0.1.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Execute the lessons in full mode (long) where no fresh output is cached.",
        ),
    ] = False,
    rerun: Annotated[
        bool,
        typer.Option("--rerun", help="Execute every lesson again, ignoring the cached outputs."),
    ] = False,
    out: Annotated[Path, typer.Option(help="Folder the HTML site is written to.")] = Path("site"),
    root: Annotated[
        Path | None, typer.Option(help="The repository (default: the one holding this folder).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
) -> None:
    """Build the documentation site from the repository (needs the docs extra).

    Lessons run in smoke mode (seconds each) unless a fresh full-mode output is cached in
    docs/lesson-outputs/ (keyed by the SHA-256 of the lesson's source); --full executes them in full
    mode first; --rerun executes them again whatever the cache holds.
    """
    from torchdojo.services.docs_site import SiteOptions, build_site, find_root, serve_folder

    base = find_root(root or Path.cwd())
    options = SiteOptions(
        root=base,
        out=out.resolve(),
        src=base / "site_src",
        cache=base / "docs" / "lesson-outputs",
        full=full,
        rerun=rerun,
        cli_reference=cli_reference(),
    )
    report = build_site(options)
    modes = [run.mode for run in report.lesson_runs.values()]
    console.print(
        f"built {report.out}: {len(report.recipes)} recipes, {len(modes)} lessons "
        f"({modes.count('full')} full, {modes.count('smoke')} smoke runs); lessons "
        f"{report.seconds_lessons:.0f} s, mkdocs {report.seconds_mkdocs:.0f} s",
        highlight=False,
        soft_wrap=True,
    )
    if serve:
        server = serve_folder(report.out, port=port)
        console.print(f"serving http://127.0.0.1:{server.server_port}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        finally:
            server.server_close()
