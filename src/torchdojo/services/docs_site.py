"""The documentation site: markdown generated from the repository, built by MkDocs (strict).

``build_site(options)`` writes every page into ``options.src`` and builds the HTML into
``options.out`` with the repository's ``mkdocs.yml`` (mkdocs-material, its offline search,
mkdocstrings for the API pages). What is generated, and from where:

- one page per recipe from the recipe contract (:func:`torchdojo.recipes.get_recipe`): the
  module docstring, config fields with what each accepts and its default, the measured floors
  with their data and command, the lesson and the seed chapters; and one sortable table;
- one page per lesson (``lessons/NN_*.py``, found by glob) with its executed outputs
  (:mod:`torchdojo.services.docs_lessons`);
- ``docs/*.md`` (crosswalk, architecture, glossary, the generative table) with lesson and recipe names linked,
  the README's set-up section, the CLI reference (markdown handed in by the CLI, which knows
  itself) and API pages for the public packages.

The site must load nothing from another host: :func:`external_assets` lists any ``src`` or
stylesheet URL that is not local, and the build fails on one.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import logging
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchdojo.recipes import get_recipe, list_recipes
from torchdojo.runs import Recipe
from torchdojo.services.docs_lessons import (
    DOCS_EXTRA,
    LessonRun,
    lesson_files,
    lesson_run,
    notebook_markdown,
)
from torchdojo.services.docs_recipes import recipe_markdown, recipe_table

log = logging.getLogger(__name__)

# The public API (what lessons import): one reference page each.
API_PACKAGES = ("engine", "runs", "models", "data", "viz", "export", "nn", "utils")
SEED_ID = re.compile(r"^\s*(\d{3})\b")


@dataclass(frozen=True)
class SiteOptions:
    """What to build and where.

    Args:
        root: The repository (holds ``mkdocs.yml``, ``lessons/``, ``docs/``, ``README.md``).
        out: Folder the HTML site is written to.
        src: Folder the generated markdown is written to (emptied first).
        cache: Folder of executed lessons (``full/`` and ``smoke/`` entries).
        full: Execute lessons in full mode where no fresh full-mode output is cached.
        rerun: Execute every lesson again, whatever the cache holds.
        lessons: Only these lessons (file stems, e.g. ``07_training_stability``); None: all.
        cli_reference: The CLI reference page (markdown), made from the typer app.
    """

    root: Path
    out: Path
    src: Path
    cache: Path
    full: bool = False
    rerun: bool = False
    lessons: Sequence[str] | None = None
    cli_reference: str = ""


@dataclass
class SiteReport:
    """What a build made: the site folder, its lessons' runs and the time each step took."""

    out: Path
    lesson_runs: dict[str, LessonRun] = field(default_factory=dict)
    recipes: list[str] = field(default_factory=list)
    seconds_lessons: float = 0.0
    seconds_mkdocs: float = 0.0


def find_root(start: Path) -> Path:
    """The repository holding ``start``: the nearest folder with ``mkdocs.yml`` and ``lessons/``."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / "mkdocs.yml").is_file() and (folder / "lessons").is_dir():
            return folder
    raise ValueError(
        f"{start} is not inside a torchdojo checkout (no mkdocs.yml + lessons/ above it); the "
        "site is built from the repository: run `torchdojo docs` in it, or pass --root"
    )


def build_site(options: SiteOptions) -> SiteReport:
    """Generate every page into ``options.src`` and build the HTML site into ``options.out``."""
    _require_mkdocs()
    report = SiteReport(out=options.out)
    if options.src.exists():
        shutil.rmtree(options.src)
    options.src.mkdir(parents=True)
    recipes = [get_recipe(name) for name in list_recipes()]
    report.recipes = [r.name for r in recipes]
    start = time.perf_counter()
    lessons = _write_lessons(options, recipes, report)
    report.seconds_lessons = time.perf_counter() - start
    nav = _write_pages(options, recipes, lessons)
    start = time.perf_counter()
    run_mkdocs(options.root / "mkdocs.yml", options.src, options.out, nav)
    report.seconds_mkdocs = time.perf_counter() - start
    found = external_assets(options.out)
    if found:
        raise ValueError(f"the site loads assets from other hosts ({', '.join(found[:5])})")
    return report


def _require_mkdocs() -> None:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError as error:
        raise ImportError(f"{DOCS_EXTRA} (missing {error.name})") from None


# --- lessons --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LessonPage:
    """A lesson as the site shows it: its file, title, recipes and seed chapters."""

    path: Path
    title: str
    recipes: list[str]
    seeds: list[str]
    run: LessonRun

    @property
    def stem(self) -> str:
        """The file name without ``.py``: also the page's name."""
        return self.path.stem


def _write_lessons(
    options: SiteOptions, recipes: list[Recipe], report: SiteReport
) -> list[LessonPage]:
    pages = []
    for path in lesson_files(options.root):
        if options.lessons is not None and path.stem not in options.lessons:
            continue
        run = lesson_run(path, options.cache, full=options.full, rerun=options.rerun)
        report.lesson_runs[path.stem] = run
        intro = str(run.notebook.cells[0].source)
        title = intro.splitlines()[0].lstrip("# ").strip()
        named = {m for m in re.findall(r"`([a-z0-9-]+)`", intro) if m in report.recipes}
        named |= {r.name for r in recipes if r.lesson == f"lessons/{path.name}"}
        pages.append(LessonPage(path, title, sorted(named), seed_items(intro), run))
    for page in pages:
        (options.src / "lessons").mkdir(parents=True, exist_ok=True)
        text = _lesson_markdown(page, options.src, crosswalk_anchors(options.root))
        (options.src / "lessons" / f"{page.stem}.md").write_text(text, encoding="utf-8")
    return pages


def _lesson_markdown(page: LessonPage, src: Path, anchors: dict[str, str]) -> str:
    """The lesson page: its title, the header box, then its cells with outputs and figures."""
    blocks = notebook_markdown(page.run.notebook, src / "lessons" / page.stem, page.stem)
    title, _, rest = blocks[0].partition("\n")
    if not title.startswith("# "):
        title, rest = f"# {page.title}", blocks[0]
    header = lesson_header(page, anchors, "../recipes/")
    return "\n\n".join([title, header, rest.strip(), *blocks[1:]]) + "\n"


def _run_box(page: LessonPage) -> str:
    run = page.run
    when = f"executed {run.executed_at} in {run.seconds:.0f} s"
    if run.mode == "full":
        return (
            f'!!! success "Full run"\n    The outputs below come from running the whole lesson '
            f"({when}).\n"
        )
    stale = " (the cached full run is older than this lesson's source)" if run.stale_full else ""
    return (
        f'!!! warning "Smoke run"\n    The outputs below come from the **smoke run** '
        f"(`TORCHDOJO_SMOKE=1`: small data, few steps; {when}): the numbers and figures are the "
        f"toy version, not the lesson's full results{stale}. `torchdojo docs --full` builds the "
        "site from full runs.\n"
    )


def lesson_header(page: LessonPage, anchors: dict[str, str], recipe_link: str) -> str:
    """The box under a lesson's title: where its outputs come from, how to run it, its recipes
    and its seed chapters."""
    file = f"lessons/{page.path.name}"
    lines = [
        _run_box(page),
        f"**Run it:** `python {file}` (full) · `TORCHDOJO_SMOKE=1 python {file}` (seconds) · "
        f"as a notebook: `jupytext --to notebook {file}`",
    ]
    if page.recipes:
        links = ", ".join(f"[`{name}`]({recipe_link}{name}.md)" for name in page.recipes)
        lines.append(f"**Recipes:** {links} (`torchdojo run NAME`)")
    if page.seeds:
        lines.append(f"**Seed chapters:** {seed_links(page.seeds, anchors, '../crosswalk.md')}")
    return "\n\n".join(lines)


def seed_items(text: str) -> list[str]:
    """The items of a docstring's or lesson intro's ``Seeds:`` sentence, e.g.
    ``["001 ch9 (CNN on MNIST)", "000 ch3"]``; empty when there is none."""
    flat = " ".join(line.lstrip("# ").strip() for line in text.splitlines())
    match = re.search(r"Seeds?:\s*(.+?)(?:\.(?=\s+[A-Z])|\.?\s*$)", flat)
    if match is None:
        return []
    items, depth, current = [], 0, ""
    for char in match.group(1):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char in ",;" and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return [item.rstrip(".") for item in items if item]


def crosswalk_anchors(root: Path) -> dict[str, str]:
    """Seed id (``"001"``) -> the anchor of its section in ``docs/crosswalk.md``."""
    from markdown.extensions.toc import slugify

    path = root / "docs" / "crosswalk.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return {
        m.group(1): slugify(m.group(0)[3:].strip(), "-")
        for m in re.finditer(r"^## (\d{3})\b.*$", text, re.M)
    }


def seed_links(items: list[str], anchors: dict[str, str], crosswalk: str) -> str:
    """Seed items joined by commas; one that names a seed course links to its crosswalk part."""
    out = []
    for item in items:
        match = SEED_ID.match(item)
        if match and match.group(1) in anchors:
            out.append(f"[{item}]({crosswalk}#{anchors[match.group(1)]})")
        else:
            out.append(item)
    return ", ".join(out)


# --- recipes --------------------------------------------------------------------------------


def _write_recipes(
    src: Path, recipes: list[Recipe], lessons: list[LessonPage], anchors: dict[str, str]
) -> None:
    folder = src / "recipes"
    folder.mkdir(parents=True, exist_ok=True)
    titles = {page.stem: page.title for page in lessons}
    for recipe in recipes:
        used_by = [page.stem for page in lessons if recipe.name in page.recipes]
        text = recipe_markdown(
            recipe,
            lessons=titles,
            used_by=used_by,
            seeds=lambda doc: seed_links(seed_items(doc), anchors, "../crosswalk.md"),
        )
        (folder / f"{recipe.name}.md").write_text(text, encoding="utf-8")
    index = [
        "---\nhide:\n  - toc\n---\n\n# Recipes",  # no contents column: room for the table
        f"{len(recipes)} recipes, each one module in `src/torchdojo/recipes/` with a typed config, "
        "a smoke config that runs offline in seconds, and floors measured on real data with the "
        "command that measured them. Click a column's header to sort by it.",
        recipe_table(recipes, titles),
    ]
    (folder / "index.md").write_text("\n\n".join(index) + "\n", encoding="utf-8")


# --- pages ----------------------------------------------------------------------------------


def readme_section(readme: str, heading: str) -> str:
    """The body of the README's ``## heading`` section (up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(heading)}\s*\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    return match.group(1).strip() if match else ""


def link_names(text: str, lessons: set[str], recipes: set[str], prefix: str = "") -> str:
    """Outside code blocks, turn `` `lessons/NN_x.py` `` and `` `recipe-name` `` into links to
    their pages (only names the site has pages for), and repository links into site links."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced:
            line = re.sub(
                r"(?<!\[)`lessons/(\d\d_\w+)\.py`",
                lambda m: (
                    f"[`lessons/{m.group(1)}.py`]({prefix}lessons/{m.group(1)}.md)"
                    if m.group(1) in lessons
                    else m.group(0)
                ),
                line,
            )
            line = re.sub(
                r"(?<![\[\w-])`([a-z0-9][a-z0-9-]*)`",
                lambda m: (
                    f"[`{m.group(1)}`]({prefix}recipes/{m.group(1)}.md)"
                    if m.group(1) in recipes
                    else m.group(0)
                ),
                line,
            )
            line = re.sub(r"\]\(docs/([\w-]+\.md)\)", r"](\1)", line)
        out.append(line)
    return "\n".join(out)


def _short_title(title: str) -> str:
    """A lesson's title for the navigation: plain text, up to its colon."""
    return title.split(": ", 1)[0].replace("`", "")


def _lessons_table(lessons: list[LessonPage], link: str) -> str:
    lines = ["| lesson | recipes | outputs |", "|---|---|---|"]
    for page in lessons:
        recipes = ", ".join(f"[`{name}`](../recipes/{name}.md)" for name in page.recipes) or "—"
        outputs = "full run" if page.run.mode == "full" else "smoke run"
        lines.append(f"| [{page.title}]({link}{page.stem}.md) | {recipes} | {outputs} |")
    return "\n".join(lines)


def _home(root: Path, recipes: list[Recipe], lessons: list[LessonPage]) -> str:
    readme = (root / "README.md").read_text(encoding="utf-8")
    intro = readme.split("\n## ", 1)[0].partition("\n")[2].strip()
    return "\n\n".join(
        [
            "# torchdojo",
            intro,
            "## Quick start",
            readme_section(readme, "Quick start"),
            "## What is here",
            f"- [Lessons](lessons/index.md): {len(lessons)} lessons, rendered with their outputs "
            "and figures.\n"
            f"- [Recipes](recipes/index.md): {len(recipes)} recipes with their measured floors, "
            "in one sortable table.\n"
            "- [Crosswalk](crosswalk.md): where each chapter of the seed courses lives here.\n"
            "- [Set-up](setup.md), the [command line](reference/cli.md) and the "
            "[API](reference/api/index.md).",
        ]
    )


def _api_pages(src: Path) -> list[Any]:
    folder = src / "reference" / "api"
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["# API reference", "", "The public packages, from their docstrings.", ""]
    nav: list[Any] = ["reference/api/index.md"]
    for package in API_PACKAGES:
        name = f"torchdojo.{package}"
        (folder / f"{package}.md").write_text(f"# `{name}`\n\n::: {name}\n", encoding="utf-8")
        rows.append(f"- [`{name}`]({package}.md)")
        nav.append({name: f"reference/api/{package}.md"})
    (folder / "index.md").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return nav


def _write_pages(
    options: SiteOptions, recipes: list[Recipe], lessons: list[LessonPage]
) -> list[Any]:
    """Every page but the lessons' and recipes' own; returns the site's navigation."""
    root, src = options.root, options.src
    lesson_stems, recipe_names = {p.stem for p in lessons}, {r.name for r in recipes}
    pages = {"index.md": _home(root, recipes, lessons)}
    readme = (root / "README.md").read_text(encoding="utf-8")
    pages["setup.md"] = "\n\n".join(
        ["# Set-up", readme_section(readme, "Set-up"), "## Data", readme_section(readme, "Data")]
    )
    for name in ("crosswalk.md", "architecture.md", "glossary.md", "generative-table.md"):
        pages[name] = (root / "docs" / name).read_text(encoding="utf-8")
    pages["reference/cli.md"] = options.cli_reference or "# Command line\n\nNot generated.\n"
    pages["lessons/index.md"] = "\n\n".join(
        ["# Lessons", LESSONS_INTRO, _lessons_table(lessons, "")]
    )
    for name, text in pages.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = "../" * name.count("/")
        path.write_text(link_names(text, lesson_stems, recipe_names, prefix), encoding="utf-8")
    site_files = root / "docs" / "site"
    shutil.copytree(site_files, src, dirs_exist_ok=True)  # about.md, assets/
    _write_recipes(src, recipes, lessons, crosswalk_anchors(root))
    return [
        {"Home": "index.md"},
        {"Set-up": "setup.md"},
        {
            "Lessons": ["lessons/index.md"]
            + [{_short_title(p.title): f"lessons/{p.stem}.md"} for p in lessons]
        },
        {"Recipes": ["recipes/index.md"] + [f"recipes/{r.name}.md" for r in recipes]},
        {"Crosswalk": "crosswalk.md"},
        {
            "Reference": [
                {"Command line": "reference/cli.md"},
                {"API": _api_pages(src)},
                {"Glossary": "glossary.md"},
                {"Generative models at equal CPU time": "generative-table.md"},
                {"Architecture": "architecture.md"},
            ]
        },
        {"About this site": "about.md"},
    ]


LESSONS_INTRO = (
    "Each lesson is a jupytext percent-format script in `lessons/`: run it with `python`, or "
    "open it as a notebook. Every claim in a lesson is an `assert`, and the test suite runs each "
    "one in smoke mode. The pages below show each lesson with the output of one execution; the "
    "box under each title says whether that was the full lesson or its smoke run."
)


# --- mkdocs ---------------------------------------------------------------------------------


class DocsBuildError(ValueError):
    """The strict MkDocs build failed: the message lists its warnings."""


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))


def run_mkdocs(config_file: Path, src: Path, out: Path, nav: list[Any]) -> None:
    """Build ``src`` into ``out`` with ``config_file`` in strict mode; any warning fails it."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    if out.is_dir() and any(out.iterdir()) and not (out / "sitemap.xml").is_file():
        raise ValueError(f"{out} is a folder that is not a built site; choose an empty --out")
    caught = _Warnings()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(caught)
    try:
        config = load_config(
            str(config_file), docs_dir=str(src), site_dir=str(out), nav=nav, strict=True
        )
        build(config)
    except MkDocsException as error:
        shown = "; ".join(caught.messages[:5]) or str(error)
        more = f" (+{len(caught.messages) - 5} more)" if len(caught.messages) > 5 else ""
        raise DocsBuildError(f"strict docs build failed: {shown}{more}") from None
    finally:
        logger.removeHandler(caught)


class _Assets(html.parser.HTMLParser):
    """The URLs a page loads: script/img/iframe/source ``src`` and stylesheet/icon ``href``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in {"script", "img", "iframe", "source", "audio", "video", "embed"}:
            self.urls += [v for k, v in values.items() if k in {"src", "srcset"} and v]
        if tag == "link" and values.get("rel") not in {"canonical", "alternate", "next", "prev"}:
            self.urls += [values["href"] or ""] if values.get("href") else []


def external_assets(site: Path) -> list[str]:
    """``page: url`` for every asset a built page (or stylesheet) loads from another host."""
    remote = re.compile(r"^(?:https?:)?//", re.I)
    found = []
    for page in sorted(site.rglob("*.html")):
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        rel = page.relative_to(site)
        found += [f"{rel}: {url}" for url in parser.urls if remote.match(url.strip())]
    for sheet in sorted(site.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        for url in re.findall(r"(?:url\(|@import\s+)['\"]?((?:https?:)?//[^'\")\s]+)", text):
            found.append(f"{sheet.relative_to(site)}: {url}")
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        log.debug(format, *args)


def serve_folder(folder: Path, *, port: int = 8000, host: str = "127.0.0.1") -> Any:
    """An HTTP server (not yet serving) for the static site in ``folder``; port 0: any free."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer((host, port), handler)
