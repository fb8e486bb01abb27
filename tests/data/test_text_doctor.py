"""The text doctor finds empty rows, duplicates, conflicts, imbalance and non-UTF-8 lines."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.data.text_doctor import scan_text

_register_commands()

BAD_CSV = (
    b"id,review,sentiment\n"
    b"1,Good movie,pos\n"
    b"2,bad movie,neg\n"
    b"3,,pos\n"
    b"4,good  MOVIE,neg\n"
    b"5,fine,pos\n"
    b"6,caf\xe9 au lait,pos\n"
    b"7,fine,pos\n"
    b'8,"two\nlines",\n'
    b"9,short\n"
)


def test_scan_csv_finds_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_bytes(BAD_CSV)
    report = scan_text(path)
    assert (report.text_column, report.label_column) == ("review", "sentiment")
    assert report.label_counts == {"neg": 2, "pos": 4} and report.imbalance == 2.0
    where = {p.kind: p.where for p in report.problems}
    assert where == {
        "not-utf8": f"{path}:7",
        "empty-text": f"{path}:4",
        "empty-label": f"{path}:10",  # a quoted text over lines 9-10: the row ends on 10
        "short-row": f"{path}:11",
        "conflict": f"{path}:2",  # "Good movie" and "good  MOVIE" disagree
        "duplicate": f"{path}:6",
    }
    conflict = next(p for p in report.problems if p.kind == "conflict")
    assert "neg and pos" in conflict.detail and f"{path}:5" in conflict.detail


def test_scan_folder_and_clean_tsv(tmp_path: Path) -> None:
    for name, n in (("ham", 6), ("spam", 2)):
        (tmp_path / "mail" / name).mkdir(parents=True)
        for i in range(n):
            (tmp_path / "mail" / name / f"{i}.txt").write_text(f"{name} {i}", encoding="utf-8")
    (tmp_path / "mail" / "spam" / "bad.txt").write_bytes(b"ok\n\xff\xfe oops\n")
    report = scan_text(tmp_path / "mail")
    assert report.label_counts == {"ham": 6, "spam": 3} and report.imbalance == 2.0
    assert [(p.kind, p.where) for p in report.problems] == [
        ("not-utf8", f"{tmp_path / 'mail' / 'spam' / 'bad.txt'}:2")
    ]
    clean = tmp_path / "clean.tsv"
    clean.write_text("text\tlabel\n" + "".join(f"t {i}\t{i % 2}\n" for i in range(10)))
    assert scan_text(clean).problems == []


def test_doctor_command_on_text(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_bytes(BAD_CSV)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["doctor", str(path), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for word in ("not-utf8", "empty-text", "conflict", "duplicate", "imbalance"):
        assert word in result.output
    assert json.loads(out.read_text())["num_rows"] == 6
    path.write_text("words,y\nhello,1\n")
    result = CliRunner().invoke(app, ["doctor", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cannot tell which column" in result.output
    result = CliRunner().invoke(
        app, ["doctor", str(path), "--text-column", "words", "--label-column", "y"]
    )
    assert result.exit_code == 0 and "no problems found" in result.output
