"""The site generator's parts, without a build: seed lines, notes, links, outputs, the lesson
cache and its staleness, the external-asset check, and the `torchdojo docs` command's errors."""

from __future__ import annotations

import base64
import dataclasses
import io
import sys
from pathlib import Path
from typing import Any

import markdown
import nbformat
import pytest
from PIL import Image
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.recipes import get_recipe
from torchdojo.services import docs_lessons
from torchdojo.services.docs_lessons import (
    LessonRun,
    clean_output,
    lesson_run,
    markdown_text,
    notebook_markdown,
    read_cached,
    write_cached,
)
from torchdojo.services.docs_recipes import field_notes, recipe_markdown, recipe_table
from torchdojo.services.docs_site import (
    DocsBuildError,
    crosswalk_anchors,
    external_assets,
    find_root,
    link_names,
    readme_section,
    run_mkdocs,
    seed_items,
)

ROOT = Path(__file__).resolve().parents[2]


def test_seed_items_split_at_top_level_commas_and_stop_at_the_sentence() -> None:
    doc = "Title.\n\nSeeds: 001 ch9 (CNN, MNIST), 000 ch3;\n004 ch7. Lesson: lessons/08_mnist.py."
    assert seed_items(doc) == ["001 ch9 (CNN, MNIST)", "000 ch3", "004 ch7"]
    assert seed_items("# Seeds: 002 §4 (all five notebooks), 000 ch5-6.") == [
        "002 §4 (all five notebooks)",
        "000 ch5-6",
    ]
    assert seed_items("No seeds here.") == []


def test_crosswalk_anchors_are_the_ids_markdown_gives_the_headings() -> None:
    anchors = crosswalk_anchors(ROOT)
    assert {"000", "001", "002", "004"} <= set(anchors)
    md = markdown.Markdown(extensions=["toc"])
    md.convert((ROOT / "docs" / "crosswalk.md").read_text(encoding="utf-8"))
    ids = {entry["id"] for top in md.toc_tokens for entry in [top, *top["children"]]}  # type: ignore[attr-defined]
    assert set(anchors.values()) <= ids


@dataclasses.dataclass(frozen=True)
class _Config:
    dataset: str = "mnist"  # mnist | fashion-mnist
    lr: float = 0.1
    width: int = 16  # channels of the first stage


def test_field_notes_read_the_comment_beside_each_field() -> None:
    assert field_notes(_Config) == {
        "dataset": "mnist | fashion-mnist",
        "width": "channels of the first stage",
    }


def test_the_recipe_table_shows_the_cpu_minutes_of_the_measuring_run() -> None:
    measured = get_recipe("softmax-iris")
    assert measured.cpu_minutes is not None
    unmeasured = dataclasses.replace(measured, name="unmeasured", cpu_minutes=None)
    table = recipe_table([measured, unmeasured], {})
    header = next(line for line in table.splitlines() if line.startswith("| recipe"))
    assert "CPU min" in header
    column = header.strip("|").split("|").index(" CPU min ")
    rows = [line.strip("|").split("|") for line in table.splitlines() if "`test_acc`" in line]
    assert [row[column].strip() for row in rows] == [f"{measured.cpu_minutes:.2g}", "—"]
    page = recipe_markdown(measured, lessons={}, used_by=[], seeds=lambda text: text)
    assert f"{measured.cpu_minutes:.2g} CPU-minutes" in page


def test_link_names_links_known_lessons_and_recipes_outside_code() -> None:
    text = (
        "See `lessons/08_mnist.py` and recipe `mnist-cnn`, not `no-such` or `lessons/99_x.py`.\n"
        "```\n`mnist-cnn`\n```\n[the crosswalk](docs/crosswalk.md)"
    )
    out = link_names(text, {"08_mnist"}, {"mnist-cnn"}, prefix="../")
    assert "[`lessons/08_mnist.py`](../lessons/08_mnist.md)" in out
    assert "recipe [`mnist-cnn`](../recipes/mnist-cnn.md)" in out
    assert "`no-such`" in out and "[`no-such`]" not in out
    assert "`lessons/99_x.py`" in out and "99_x.md" not in out
    assert "```\n`mnist-cnn`\n```" in out  # code blocks stay as written
    assert "[the crosswalk](crosswalk.md)" in out


def test_readme_section_is_the_body_up_to_the_next_heading() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme_section(readme, "Set-up")
    assert "python3 -m venv" in setup and "## " not in setup
    assert readme_section(readme, "No such section") == ""


def test_markdown_text_gives_a_list_its_blank_line() -> None:
    cell = "**You will learn**\n- one\n  continued\n- two"
    assert markdown_text(cell) == "**You will learn**\n\n- one\n  continued\n- two"
    html = markdown.markdown(markdown_text(cell))
    assert html.count("<li>") == 2


def test_clean_output_strips_colour_and_carriage_returns_and_cuts() -> None:
    assert clean_output("\x1b[31mred\x1b[0m\n10%\r50%\r100%\n") == "red\n100%"
    long = "\n".join(str(i) for i in range(docs_lessons.MAX_OUTPUT_LINES + 7))
    cut = clean_output(long).splitlines()
    assert len(cut) == docs_lessons.MAX_OUTPUT_LINES + 1 and cut[-1] == "... (7 more lines)"


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _executed_notebook(text: str = "hello") -> Any:
    notebook = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("print('hello')\nfig")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=text + "\n"),
        nbformat.v4.new_output("stream", name="stdout", text="second line\n"),
        nbformat.v4.new_output(
            "stream",
            name="stderr",
            text="/x/tqdm/auto.py:21: TqdmWarning: IProgress not found.\n  from x import y\n",
        ),
        nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<F>"}),
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
    ]
    notebook.cells = [nbformat.v4.new_markdown_cell("# 99 · A lesson\n\nSeeds: 001 ch1."), code]
    return notebook


def test_notebook_markdown_writes_code_output_and_figures(tmp_path: Path) -> None:
    blocks = notebook_markdown(_executed_notebook(), tmp_path / "figs", "figs")
    text = "\n\n".join(blocks)
    assert blocks[0].startswith("# 99 · A lesson")
    assert "```python\nprint('hello')\nfig\n```" in text
    assert "```output\nhello\nsecond line\n```" in text  # two prints, one block
    assert "```output\n42\n```" in text
    (figure,) = (tmp_path / "figs").iterdir()
    assert f"](figs/{figure.name})" in text
    assert Image.open(figure).size == (4, 3)
    assert "Warning" not in text  # a library's warning on stderr is dropped
    assert "<F>" not in text  # a figure's repr is not shown beside the figure


def test_the_temporary_path_save_returns_is_not_shown(tmp_path: Path) -> None:
    cell = nbformat.v4.new_code_cell("save(fig, 'a.png')")
    where = f"PosixPath('/tmp/{docs_lessons.WORK_PREFIX}07_x-abc/figures/a.png')"
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": where})]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    assert notebook_markdown(notebook, tmp_path, "figs") == ["```python\nsave(fig, 'a.png')\n```"]


@pytest.fixture
def lesson(tmp_path: Path) -> Path:
    path = tmp_path / "lessons" / "99_demo.py"
    path.parent.mkdir()
    path.write_text("# %% [markdown]\n# # 99 · A lesson\n\n# %%\nprint('hello')\n")
    return path


def _run(mode: str, text: str = "hello") -> LessonRun:
    return LessonRun(_executed_notebook(text), mode, 1.5, "2026-01-01 00:00 UTC", False)  # type: ignore[arg-type]


def _no_execution(path: Path, mode: str, **_: Any) -> Any:
    raise AssertionError(f"{path.name} was executed in {mode} mode; the cache should serve it")


def test_a_cached_entry_is_used_while_the_source_is_unchanged(
    lesson: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    write_cached(cache, lesson, _run("smoke", "from the cache"))
    monkeypatch.setattr(docs_lessons, "execute_lesson", _no_execution)
    run = lesson_run(lesson, cache, full=False)
    assert run.cached and run.mode == "smoke" and not run.stale_full
    assert "from the cache" in str(run.notebook.cells[1].outputs[0].text)


def test_an_edited_lesson_makes_its_entries_stale(
    lesson: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    write_cached(cache, lesson, _run("full", "full output"))
    assert read_cached(cache, "full", lesson)[0] is not None
    lesson.write_text(lesson.read_text() + "print('edited')\n")
    assert read_cached(cache, "full", lesson) == (None, True)
    executed: list[str] = []

    def fake_execute(path: Path, mode: str, **_: Any) -> tuple[Any, float]:
        executed.append(mode)
        return _executed_notebook("fresh smoke output"), 2.0

    monkeypatch.setattr(docs_lessons, "execute_lesson", fake_execute)
    run = lesson_run(lesson, cache, full=False)
    assert executed == ["smoke"] and run.mode == "smoke" and run.stale_full
    assert read_cached(cache, "smoke", lesson)[0] is not None  # the new run was stored
    run = lesson_run(lesson, cache, full=True)
    assert executed == ["smoke", "full"] and run.mode == "full" and not run.cached


def test_rerun_executes_whatever_the_cache_holds(
    lesson: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    write_cached(cache, lesson, _run("full"))
    monkeypatch.setattr(
        docs_lessons, "execute_lesson", lambda path, mode, **_: (_executed_notebook("new"), 1.0)
    )
    run = lesson_run(lesson, cache, full=False, rerun=True)
    assert run.mode == "smoke" and not run.cached


def test_a_fresh_full_entry_wins_over_smoke(
    lesson: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    write_cached(cache, lesson, _run("smoke"))
    write_cached(cache, lesson, _run("full"))
    monkeypatch.setattr(docs_lessons, "execute_lesson", _no_execution)
    assert lesson_run(lesson, cache, full=False).mode == "full"


def test_external_assets_finds_scripts_styles_images_and_css_urls(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text(
        '<script src="https://cdn.example.org/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/css">'
        '<img src="http://example.org/y.png"><img src="../local.png">'
        '<a href="https://example.org/">a link is not an asset</a>'
        '<link rel="canonical" href="https://example.org/a/">'
        '<script src="../assets/local.js"></script>'
    )
    (tmp_path / "site.css").write_text(
        "@import 'https://x.org/a.css'; b { background: url(x.png) }"
    )
    found = external_assets(tmp_path)
    assert found == [
        "a/index.html: https://cdn.example.org/x.js",
        "a/index.html: //fonts.example.org/css",
        "a/index.html: http://example.org/y.png",
        "site.css: https://x.org/a.css",
    ]
    for path in [tmp_path / "a" / "index.html", tmp_path / "site.css"]:
        path.unlink()
    assert external_assets(tmp_path) == []


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.md").write_text("# Home\n\n[gone](missing.md)\n")
    with pytest.raises(DocsBuildError, match=r"missing\.md"):
        run_mkdocs(ROOT / "mkdocs.yml", src, tmp_path / "site", [{"Home": "index.md"}])


def test_the_build_will_not_overwrite_a_folder_that_is_not_a_site(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a built site"):
        run_mkdocs(ROOT / "mkdocs.yml", tmp_path / "src", tmp_path, [])
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_find_root_outside_a_checkout_says_what_to_do(tmp_path: Path) -> None:
    assert find_root(ROOT / "src" / "torchdojo") == ROOT
    with pytest.raises(ValueError, match="not inside a torchdojo checkout"):
        find_root(tmp_path)


def test_docs_command_without_the_docs_extra_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _register_commands()
    monkeypatch.setitem(sys.modules, "mkdocs", None)  # `import mkdocs` raises ImportError
    result = CliRunner().invoke(app, ["docs", "--root", str(ROOT), "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert 'pip install "torchdojo[docs]"' in result.output
    assert "Traceback" not in result.output


def test_docs_command_help_lists_its_options() -> None:
    _register_commands()
    result = CliRunner().invoke(app, ["docs", "--help"])
    assert result.exit_code == 0
    for option in ("--serve", "--full", "--out"):
        assert option in result.output


def test_figures_a_cell_saves_replace_its_inline_images(tmp_path: Path) -> None:
    saved = docs_lessons._SavedFigures(tmp_path)
    inline = nbformat.v4.new_output("display_data", data={"image/png": _png()})
    text = nbformat.v4.new_output("stream", name="stdout", text="hi\n")
    quiet = nbformat.v4.new_code_cell("x = 1")
    quiet.outputs = [text, inline]
    saved.after_cell(quiet)
    assert quiet.outputs == [text, inline]  # nothing saved: the inline image stays
    (tmp_path / "lesson").mkdir()
    Image.new("RGB", (7, 5)).save(tmp_path / "lesson" / "a.png")
    saving = nbformat.v4.new_code_cell("save(fig, 'a.png')")
    saving.outputs = [text, inline]
    saved.after_cell(saving)
    assert [o.output_type for o in saving.outputs] == ["stream", "display_data"]
    figure = base64.b64decode(saving.outputs[1].data["image/png"])
    assert Image.open(io.BytesIO(figure)).size == (7, 5)  # the saved file, not the inline one
    again = nbformat.v4.new_code_cell("print('later')")
    saved.after_cell(again)
    assert again.outputs == []  # a file is attached to the cell that wrote it, once


def test_a_failing_lesson_names_itself_and_how_to_reproduce(tmp_path: Path) -> None:
    pytest.importorskip("ipykernel")
    lesson = tmp_path / "98_broken.py"
    lesson.write_text("# %% [markdown]\n# # 98 · Broken\n\n# %%\nassert 1 == 2, 'claim broken'\n")
    with pytest.raises(RuntimeError, match="98_broken.py failed in smoke mode: AssertionError"):
        docs_lessons.execute_lesson(lesson, "smoke", timeout=120)
