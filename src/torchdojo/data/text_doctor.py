"""The text data doctor: one pass over a CSV/TSV file or a folder of ``<class>/*.txt`` files.

It lists rows with an empty text or label, duplicate texts (and duplicates whose labels
disagree), label counts and imbalance, and every line that is not UTF-8, by file and line.
Unlike :func:`torchdojo.data.text.load_text_dataset` it never stops at the first problem.
``torchdojo doctor PATH`` prints it. Taught in lessons/13_text_as_tensors.py.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torchdojo.data.text import LABEL_COLUMNS, TEXT_COLUMNS, find_column, sort_labels

TABLE_SUFFIXES = (".csv", ".tsv")


@dataclass(frozen=True)
class TextProblem:
    """One row of the doctor's table: what, where (``file:line``) and detail."""

    kind: str  # not-utf8 | empty-text | empty-label | short-row | conflict | duplicate
    where: str
    detail: str


@dataclass
class TextDoctorReport:
    """What :func:`scan_text` found.

    Attributes:
        path: The file or folder scanned.
        text_column: Column of the texts (None for a folder).
        label_column: Column of the labels (None for a folder).
        num_rows: Rows with a text and a label.
        label_counts: Label -> rows, in label order.
        imbalance: Largest over smallest label count (None with fewer than two labels).
        problems: Every finding, most serious first.
    """

    path: str
    text_column: str | None
    label_column: str | None
    num_rows: int
    label_counts: dict[str, int]
    imbalance: float | None
    problems: list[TextProblem] = field(default_factory=list)

    def count(self, kind: str) -> int:
        """How many problems of ``kind`` were found."""
        return sum(p.kind == kind for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        return asdict(self)


@dataclass
class _Row:
    where: str
    text: str
    label: str


def is_text_data(path: Path) -> bool:
    """True for a ``.csv`` / ``.tsv`` file or a folder whose class subfolders hold ``.txt``."""
    if path.is_file():
        return path.suffix.lower() in TABLE_SUFFIXES
    return path.is_dir() and any(path.glob("*/*.txt"))


def scan_text(
    path: str | Path, *, text_column: str | None = None, label_column: str | None = None
) -> TextDoctorReport:
    """Check a CSV/TSV file or a ``<class>/*.txt`` folder and report what is wrong.

    Raises:
        ValueError: The path is neither, or the text/label columns cannot be told apart.
    """
    path = Path(path).expanduser()
    problems: list[TextProblem] = []
    columns: tuple[str | None, str | None] = (None, None)
    if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
        rows, columns = _table_rows(path, text_column, label_column, problems)
    elif path.is_dir():
        rows = _folder_rows(path, problems)
    else:
        raise ValueError(f"{path} is not a .csv/.tsv file or a folder of <class>/*.txt files")
    problems += _duplicates(rows)
    counts = Counter(r.label for r in rows)
    ordered = {name: counts[name] for name in sort_labels(set(counts))} if counts else {}
    imbalance = max(counts.values()) / min(counts.values()) if len(counts) >= 2 else None
    return TextDoctorReport(str(path), *columns, len(rows), ordered, imbalance, problems)


def _decode_lines(path: Path, problems: list[TextProblem]) -> str:
    """The file's text with every non-UTF-8 line reported (and its bad bytes replaced)."""
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            detail = f"byte 0x{line[err.start]:02x} at column {err.start + 1} is not UTF-8"
            problems.append(TextProblem("not-utf8", f"{path}:{number}", detail))
    return raw.decode("utf-8", errors="replace")


def _table_rows(
    path: Path, text_column: str | None, label_column: str | None, problems: list[TextProblem]
) -> tuple[list[_Row], tuple[str, str]]:
    content = _decode_lines(path, problems)
    if not content.strip():
        raise ValueError(f"{path} is empty; it needs a header row and one row per example")
    lines = io.StringIO(content, newline="")
    if path.suffix.lower() == ".tsv":
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(lines)
    header = [h.strip() for h in next(reader)]
    text_name = find_column(path, header, text_column, TEXT_COLUMNS, "text")
    label_name = find_column(path, header, label_column, LABEL_COLUMNS, "label")
    text_at, label_at = header.index(text_name), header.index(label_name)
    rows: list[_Row] = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(text_at, label_at):
            detail = f"{len(row)} fields, the header has {len(header)}"
            problems.append(TextProblem("short-row", where, detail))
            continue
        _add_row(rows, problems, where, row[text_at].strip(), row[label_at].strip())
    return rows, (text_name, label_name)


def _folder_rows(root: Path, problems: list[TextProblem]) -> list[_Row]:
    rows: list[_Row] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(folder.glob("*.txt")):
            text = _decode_lines(file, problems).strip()
            _add_row(rows, problems, str(file), text, folder.name)
    return rows


def _add_row(
    rows: list[_Row], problems: list[TextProblem], where: str, text: str, label: str
) -> None:
    if not text:
        problems.append(TextProblem("empty-text", where, f"no text (label {label!r})"))
    elif not label:
        problems.append(TextProblem("empty-label", where, "no label"))
    else:
        rows.append(_Row(where, text, label))


def _duplicates(rows: list[_Row]) -> list[TextProblem]:
    """Duplicate texts (same text after trimming and lowercasing); conflicts first."""
    groups: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        groups[" ".join(row.text.lower().split())].append(row)
    conflicts, duplicates = [], []
    for group in groups.values():
        if len(group) < 2:
            continue
        labels = sorted({r.label for r in group})
        places = ", ".join(r.where for r in group[1:])
        short = group[0].text if len(group[0].text) <= 60 else group[0].text[:57] + "..."
        if len(labels) > 1:
            detail = f"{short!r} labelled {' and '.join(labels)}, also at {places}"
            conflicts.append(TextProblem("conflict", group[0].where, detail))
        else:
            duplicates.append(
                TextProblem("duplicate", group[0].where, f"{short!r} also at {places}")
            )
    return conflicts + duplicates


__all__ = ["TextDoctorReport", "TextProblem", "is_text_data", "scan_text"]
