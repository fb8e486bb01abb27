"""Lessons as web pages: execute each lesson as a notebook, cache its outputs, write markdown.

A lesson (``lessons/NN_name.py``, jupytext percent format) is executed by a Jupyter kernel
(jupytext -> nbclient), in full mode or in smoke mode (``TORCHDOJO_SMOKE=1``, seconds). The
executed notebook is cached under ``cache/<mode>/<lesson>.ipynb`` beside a ``.json`` record of
the SHA-256 of the lesson's source; an entry whose hash differs from the source is stale and
is never shown. The page is plain markdown: the lesson's own text, its code, its printed output
and its figures as PNG files beside the page, under a box that says which run made them.

Used by :mod:`torchdojo.services.docs_site`; needs the ``docs`` extra (jupytext, nbclient).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

Mode = Literal["full", "smoke"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WARNING = re.compile(r"^\S+\.py:\d+: \w*Warning: .*\n(?:[ \t]+.*\n)?", re.M)
MAX_OUTPUT_LINES = 200
WORK_PREFIX = "torchdojo-docs-"  # the temporary folder a lesson runs in  # a longer printout is cut, with a note saying how much
DOCS_EXTRA = 'building the docs needs the docs extra: pip install "torchdojo[docs]"'


def lesson_files(root: Path) -> list[Path]:
    """Every lesson of the repository at ``root``: ``lessons/NN_*.py``, in order."""
    return sorted((root / "lessons").glob("[0-9][0-9]_*.py"))


def source_hash(path: Path) -> str:
    """The SHA-256 of a lesson's source: what a cached output was made from."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class LessonRun:
    """An executed lesson: the notebook with outputs and how it was made.

    Args:
        notebook: The executed notebook (an ``nbformat`` node).
        mode: ``"full"`` or ``"smoke"``.
        seconds: Wall time of the execution that made it.
        executed_at: When it ran (UTC, ISO 8601).
        cached: True when read from the cache rather than executed in this build.
        stale_full: True when a full-mode entry exists but was made from an older source.
    """

    notebook: Any
    mode: Mode
    seconds: float
    executed_at: str
    cached: bool
    stale_full: bool = False


def _import_notebook_tools() -> tuple[Any, Any, Any]:
    try:
        import jupytext
        import nbclient
        import nbclient.exceptions
        import nbformat
    except ImportError as error:
        raise ImportError(f"{DOCS_EXTRA} (missing {error.name})") from None
    return jupytext, nbclient, nbformat


def execute_lesson(path: Path, mode: Mode, *, timeout: float = 1800) -> tuple[Any, float]:
    """Run lesson ``path`` top to bottom in a fresh kernel; the notebook and the seconds it took.

    The figures a cell saves (``LESSON.save``) become that cell's image outputs, in place of
    what the kernel showed inline (a ``Figure`` made without pyplot is never shown inline);
    a cell that saves nothing keeps its inline images. A failing cell raises ``RuntimeError``
    naming the lesson, the error and the command that reproduces it.
    """
    jupytext, nbclient, _ = _import_notebook_tools()
    notebook = jupytext.read(path)
    with tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{path.stem}-") as work:
        figures, cwd = Path(work) / "figures", Path(work) / "cwd"
        cwd.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in {"MPLBACKEND", "TORCHDOJO_SMOKE"}}
        env.update(TORCHDOJO_LESSON_OUT=str(figures), PYDEVD_DISABLE_FILE_VALIDATION="1")
        if mode == "smoke":
            env.update(TORCHDOJO_SMOKE="1", OMP_NUM_THREADS="1")
        saved = _SavedFigures(figures)
        client = nbclient.NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(cwd)}},
            extra_arguments=["--InlineBackend.rc={'figure.dpi': 96}"],
            on_cell_executed=saved.after_cell,
        )
        start = time.perf_counter()
        try:
            client.execute(env=env)
        except nbclient.exceptions.CellExecutionError as error:
            smoke = "TORCHDOJO_SMOKE=1 " if mode == "smoke" else ""
            raise RuntimeError(
                f"lesson {path.name} failed in {mode} mode: {error.ename}: {error.evalue} "
                f"(reproduce: {smoke}python lessons/{path.name})"
            ) from error
        seconds = time.perf_counter() - start
    log.info("executed %s (%s) in %.1f s", path.name, mode, seconds)
    return notebook, seconds


class _SavedFigures:
    """After each cell, the PNG files it wrote (new or rewritten) become its image outputs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: dict[Path, int] = {}

    def after_cell(self, cell: Any, **_: Any) -> None:
        written = []
        for file in sorted(self.folder.rglob("*.png"), key=lambda f: f.stat().st_mtime_ns):
            stamp = file.stat().st_mtime_ns
            if self.seen.get(file) != stamp:
                self.seen[file] = stamp
                written.append(file)
        if not written:
            return
        _, _, nbformat = _import_notebook_tools()
        outputs = [o for o in cell.get("outputs", []) if "image/png" not in o.get("data", {})]
        for file in written:
            data = {"image/png": base64.b64encode(file.read_bytes()).decode("ascii")}
            metadata = {"torchdojo": {"saved_as": file.name}}
            outputs.append(nbformat.v4.new_output("display_data", data=data, metadata=metadata))
        cell["outputs"] = outputs


def _entry(cache: Path, mode: Mode, path: Path) -> tuple[Path, Path]:
    return cache / mode / f"{path.stem}.ipynb", cache / mode / f"{path.stem}.json"


def read_cached(cache: Path, mode: Mode, path: Path) -> tuple[LessonRun | None, bool]:
    """The cached run of ``path`` in ``mode`` if its source hash matches; and whether a stale
    entry (an older source) was found instead."""
    notebook_file, record_file = _entry(cache, mode, path)
    if not (notebook_file.is_file() and record_file.is_file()):
        return None, False
    record = json.loads(record_file.read_text(encoding="utf-8"))
    if record.get("source_sha256") != source_hash(path):
        return None, True
    _, _, nbformat = _import_notebook_tools()
    notebook = nbformat.read(notebook_file, as_version=4)
    run = LessonRun(notebook, mode, float(record["seconds"]), str(record["executed_at"]), True)
    return run, False


def write_cached(cache: Path, path: Path, run: LessonRun) -> None:
    """Store ``run`` of lesson ``path`` with the hash of the source it was made from."""
    _, _, nbformat = _import_notebook_tools()
    notebook_file, record_file = _entry(cache, run.mode, path)
    notebook_file.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(run.notebook, notebook_file)
    record = {
        "lesson": path.name,
        "mode": run.mode,
        "source_sha256": source_hash(path),
        "seconds": round(run.seconds, 1),
        "executed_at": run.executed_at,
    }
    record_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def lesson_run(path: Path, cache: Path, *, full: bool, rerun: bool = False) -> LessonRun:
    """The outputs to show for lesson ``path``.

    A fresh full-mode entry is always preferred. ``full=True`` executes the lesson in full mode
    when there is none; otherwise a fresh smoke entry is used, else the lesson runs in smoke
    mode. ``rerun=True`` executes it (in the mode ``full`` asks for) whatever the cache holds,
    e.g. after a change in the library. Every execution is written to the cache.
    """
    mode: Mode = "full" if full else "smoke"
    cached_full, stale_full = read_cached(cache, "full", path)
    if cached_full is not None and not rerun:
        return cached_full
    cached_smoke, _ = read_cached(cache, "smoke", path)
    if mode == "smoke" and cached_smoke is not None and not rerun:
        return dataclasses.replace(cached_smoke, stale_full=stale_full)
    notebook, seconds = execute_lesson(path, mode)
    executed_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    run = LessonRun(notebook, mode, seconds, executed_at, False, stale_full and mode == "smoke")
    write_cached(cache, path, run)
    return run


# --- markdown -------------------------------------------------------------------------------


def markdown_text(source: str) -> str:
    """A markdown cell made safe for Python-Markdown: a list right after a paragraph line gets
    the blank line it needs (Jupyter renders it without one)."""
    out: list[str] = []
    item = re.compile(r"^\s{0,3}(?:[-*+]|\d+\.)\s")
    for line in source.splitlines():
        previous = out[-1] if out else ""
        if item.match(line) and previous.strip() and not item.match(previous):
            if not previous.startswith((" ", "\t")):  # not a continuation of an item
                out.append("")
        out.append(line)
    return "\n".join(out)


def clean_output(text: str) -> str:
    """Printed output as a terminal would show it: no colour codes, a ``\\r`` overwrites its
    line, at most :data:`MAX_OUTPUT_LINES` lines."""
    text = ANSI.sub("", text)
    lines = [line.rsplit("\r", 1)[-1] for line in text.rstrip("\n").split("\n")]
    if len(lines) > MAX_OUTPUT_LINES:
        cut = len(lines) - MAX_OUTPUT_LINES
        lines = [*lines[:MAX_OUTPUT_LINES], f"... ({cut} more lines)"]
    return "\n".join(lines)


def _fence(text: str, language: str) -> str:
    ticks = "````" if "```" in text else "```"
    return f"{ticks}{language}\n{text}\n{ticks}"


def _merge_streams(outputs: list[Any]) -> list[Any]:
    """Consecutive prints to the same stream as one output (one block on the page)."""
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else {}
        if output.get("output_type") == "stream" and previous.get("output_type") == "stream":
            if previous.get("name") == output.get("name"):
                text = str(previous.get("text", "")) + str(output.get("text", ""))
                merged[-1] = {**previous, "text": text}
                continue
        merged.append(output)
    return merged


def _outputs(outputs: list[Any], figures: Path, prefix: str, link: str) -> list[str]:
    """Markdown for one code cell's outputs; images are written to ``figures``."""
    blocks: list[str] = []
    for number, output in enumerate(_merge_streams(outputs)):
        kind = output.get("output_type")
        if kind == "stream":
            text = str(output.get("text", ""))
            if output.get("name") == "stderr":  # a library's warnings are not the lesson's
                text = WARNING.sub("", text)
            text = clean_output(text)
            if text.strip():
                blocks.append(_fence(text, "output"))
            continue
        if kind == "error":
            blocks.append(_fence(clean_output("\n".join(output.get("traceback", []))), "output"))
            continue
        data = output.get("data", {})
        if "image/png" in data:
            name = f"{prefix}_{number}.png"
            figures.mkdir(parents=True, exist_ok=True)
            (figures / name).write_bytes(base64.b64decode(data["image/png"]))
            saved_as = output.get("metadata", {}).get("torchdojo", {}).get("saved_as", "")
            alt = Path(saved_as).stem.replace("_", " ") or f"figure {number + 1}"
            blocks.append(f"![{alt}]({link}/{name})")
        elif "text/plain" in data and kind in {"execute_result", "display_data"}:
            if WORK_PREFIX in str(data["text/plain"]):
                continue  # the temporary path `save(...)` returned: not the lesson's output
            blocks.append(_fence(clean_output(str(data["text/plain"])), "output"))
    return blocks


def notebook_markdown(notebook: Any, figures: Path, link: str) -> list[str]:
    """The blocks of an executed notebook as markdown: text, code, output, figures.

    Args:
        notebook: An executed ``nbformat`` notebook.
        figures: Folder the PNG figures are written to.
        link: How the page refers to that folder (relative URL).
    """
    blocks: list[str] = []
    for index, cell in enumerate(notebook.cells):
        source = str(cell.source).strip()
        if cell.cell_type == "markdown":
            blocks.append(markdown_text(source))
        elif cell.cell_type == "code":
            if source:
                blocks.append(_fence(source, "python"))
            blocks += _outputs(cell.get("outputs", []), figures, f"cell{index:02d}", link)
    return blocks
