"""Recipe pages for the documentation site, generated from the recipe contract.

One page per recipe (:func:`recipe_markdown`): its description and module docstring, how to
run it, the measured floors with their data and command, every config field with what it
accepts, its default and the comment beside it in the source, the smoke config, its lesson and
seed chapters. :func:`recipe_table` is the one sortable table of all recipes.
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from torchdojo.runs import Expected, Recipe, config_help


def module_docstring(recipe: Recipe) -> str:
    """The whole docstring of the module that defines ``recipe`` (its ``Config``'s module)."""
    module = inspect.getmodule(recipe.config)
    return inspect.cleandoc(module.__doc__ or "") if module is not None else ""


def field_notes(config_cls: type[Any]) -> dict[str, str]:
    """The comment written after each field of a config dataclass (``lr: float = 0.1  # peak``)."""
    try:
        source = textwrap.dedent(inspect.getsource(config_cls))
    except (OSError, TypeError):
        return {}
    notes = {}
    for line in source.splitlines():
        match = re.match(r"^\s+(\w+)\s*:[^#]*#\s*(.+)$", line)
        if match and not match.group(1).startswith("_"):
            notes[match.group(1)] = match.group(2).strip()
    return notes


def rst_to_markdown(text: str) -> str:
    """Docstring or comment text as markdown: ``double backticks`` become single ones, and
    square brackets outside code are escaped (``[UNK]`` is a token, not a link)."""
    parts = re.split(r"(`+[^`]*`+)", re.sub(r"``(.+?)``", r"`\1`", text))
    return "".join(
        part if part.startswith("`") else part.replace("[", "\\[").replace("]", "\\]")
        for part in parts
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code for a table cell: ``|`` cannot be escaped inside a markdown code span."""
    return f"<code>{html.escape(text).replace('|', '&#124;')}</code>"


def bound(exp: Expected) -> str:
    """``">= 0.99"`` or ``"<= 0.0001"``: what a floor requires."""
    return f"{'≥' if exp.mode == 'max' else '≤'} {exp.floor:g}"


def smoke_changes(recipe: Recipe) -> list[str]:
    """``key=value`` for every field where the smoke config differs from the defaults."""
    defaults = recipe.config()
    changes = []
    for f in dataclasses.fields(recipe.smoke):
        value = getattr(recipe.smoke, f.name)
        if value != getattr(defaults, f.name):
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
            changes.append(f"`{f.name}={shown}`")
    return changes


def recipe_markdown(
    recipe: Recipe,
    *,
    lessons: Mapping[str, str],
    used_by: list[str],
    seeds: Callable[[str], str],
) -> str:
    """The page of one recipe.

    Args:
        recipe: From :func:`torchdojo.recipes.get_recipe` (name and description filled in).
        lessons: Lesson file stem -> title, for the lessons the site has pages for.
        used_by: Stems of the lessons whose intro names this recipe.
        seeds: Turns the docstring into the seed-chapter line (links to the crosswalk).
    """
    doc = module_docstring(recipe)
    body = rst_to_markdown(doc.partition("\n")[2].strip())
    parts = [
        f"# {recipe.name}",
        f"**{rst_to_markdown(recipe.description)}**",
        "```bash\n"
        f"torchdojo run {recipe.name}            # the full run\n"
        f"torchdojo run {recipe.name} --smoke    # seconds, offline: checks the install\n"
        f"torchdojo list {recipe.name}           # its --set keys\n"
        "```",
        body,
        _expected_section(recipe),
        _config_section(recipe),
        _lesson_section(recipe, lessons, used_by, seeds(doc)),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _expected_section(recipe: Recipe) -> str:
    lines = ["## Expected metrics", ""]
    if not recipe.expected:
        why = f" {_cell(recipe.unmeasured)}" if recipe.unmeasured else ""
        return "\n".join([*lines, f"**Not measured yet**: no floor is declared.{why}"])
    cost = (
        f" That run took {cpu_minutes(recipe)} CPU-minutes (user + system over all threads;"
        " `env.json` of a run folder records `cpu_time_s`)."
        if recipe.cpu_minutes is not None
        else ""
    )
    lines += [
        "Floors of the full run, measured on real data; `torchdojo run` checks them." + cost,
        "",
        "| metric | expected | data | measured by |",
        "|---|---|---|---|",
    ]
    for metric, exp in recipe.expected.items():
        lines.append(
            f"| `{metric}` | {bound(exp)} | {_cell(rst_to_markdown(exp.data))} | {_code(exp.measured_by)} |"
        )
    return "\n".join(lines)


def _config_section(recipe: Recipe) -> str:
    notes = field_notes(recipe.config)
    lines = [
        "## Configuration",
        "",
        f"Change a field with `torchdojo run {recipe.name} --set key=value`; values are checked "
        "before anything runs.",
        "",
        "| `--set` key | accepts | default | note |",
        "|---|---|---|---|",
    ]
    for key, accepts, default in config_help(recipe.config):
        note = _cell(rst_to_markdown(notes.get(key, "")))
        lines.append(f"| `{key}` | {_cell(accepts)} | {_code(default)} | {note} |")
    changes = smoke_changes(recipe)
    smoke = ", ".join(changes) if changes else "the defaults"
    lines += ["", f"The smoke config (`--smoke`): {smoke}."]
    return "\n".join(lines)


def _lesson_section(
    recipe: Recipe, lessons: Mapping[str, str], used_by: list[str], seeds: str
) -> str:
    lines = ["## Lesson and seed chapters", ""]
    stems = []
    if recipe.lesson:
        stems.append(recipe.lesson.rsplit("/", 1)[-1].removesuffix(".py"))
    stems += [stem for stem in used_by if stem not in stems]
    for stem in stems:
        if stem in lessons:
            lines.append(f"- Lesson: [{lessons[stem]}](../lessons/{stem}.md)")
        else:
            lines.append(f"- Lesson: `lessons/{stem}.py`")
    if seeds:
        lines.append(f"- Seed chapters: {seeds}")
    if len(lines) == 2:
        lines.append("No lesson or seed chapter is named in the recipe.")
    return "\n".join(lines)


def cpu_minutes(recipe: Recipe) -> str:
    """The CPU minutes of the full run that measured the floors ("—" where not recorded)."""
    if recipe.cpu_minutes is None:
        return "—"
    return f"{recipe.cpu_minutes:.2g}" if recipe.cpu_minutes < 1 else f"{recipe.cpu_minutes:.0f}"


def task_of(recipe: Recipe) -> str:
    """The task in a few words: the description up to its first colon."""
    return rst_to_markdown(recipe.description.split(": ", 1)[0])


def recipe_table(recipes: list[Recipe], lessons: Mapping[str, str], link: str = "") -> str:
    """One sortable table of every recipe's measured floors: recipe, task, data, metric,
    expected, the CPU minutes of the run that measured it, lesson; a recipe with several floors
    has one row each."""
    lines = [
        '<div class="sortable" markdown>',
        "",
        "| recipe | task | data | metric | expected | CPU min | lesson |",
        "|---|---|---|---|---|---|---|",
    ]
    for recipe in recipes:
        stem = recipe.lesson.rsplit("/", 1)[-1].removesuffix(".py") if recipe.lesson else ""
        lesson = f"[{stem[:2]}](../lessons/{stem}.md)" if stem in lessons else stem[:2] or "—"
        name = f"[`{recipe.name}`]({link}{recipe.name}.md)"
        for metric, exp in recipe.expected.items() or [("", None)]:
            data, floor = (
                (_cell(rst_to_markdown(exp.data)), bound(exp)) if exp else ("not measured yet", "—")
            )
            shown = f"`{metric}`" if metric else "—"
            task = _cell(task_of(recipe))
            cpu = cpu_minutes(recipe)
            lines.append(f"| {name} | {task} | {data} | {shown} | {floor} | {cpu} | {lesson} |")
    return "\n".join([*lines, "", "</div>"])
