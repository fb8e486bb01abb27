"""Every lesson runs top to bottom in smoke mode, and its assertions hold.

Each lesson is executed as a plain script (as ``python lesson.py`` would run it, in a fork of a
warm interpreter that has imported torch & co. once: tests/lessons/zygote.py) with
``TORCHDOJO_SMOKE=1`` and the Agg backend, so a failed ``assert`` in a lesson fails its test.
One lesson also runs as a real notebook (jupytext -> nbclient) to prove the percent format
works in Jupyter. The selected lessons start together on a pool of one worker per core (each
lesson runs on one thread), so the suite uses every core; each test waits for its own lesson.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))


LESSON_ENV = {
    "TORCHDOJO_SMOKE": "1",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",  # small models: one thread is faster and steadier
}
_zygotes = threading.local()


def run_lesson(path: Path, out: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one lesson file in smoke mode as a script, in a fork of this thread's warm zygote
    (tests/lessons/zygote.py: the imports are paid once), or in a fresh interpreter where
    there is no ``os.fork``."""
    if not hasattr(os, "fork"):
        env = {**os.environ, **LESSON_ENV, "TORCHDOJO_LESSON_OUT": str(out)}
        return subprocess.run(
            [sys.executable, str(path)],
            env=env,
            cwd=out,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    zygote = _zygote()
    request = {"path": str(path.resolve()), "out": str(out.resolve()), "timeout": timeout}
    assert zygote.stdin is not None and zygote.stdout is not None
    zygote.stdin.write(json.dumps(request) + "\n")
    zygote.stdin.flush()
    reply = zygote.stdout.readline()
    assert reply, f"the lesson zygote died running {path.name} (exit {zygote.poll()})"
    read = {s: (out / f".lesson.{s}").read_text(errors="replace") for s in ("stdout", "stderr")}
    rc = json.loads(reply)["rc"]
    return subprocess.CompletedProcess([str(path)], rc, read["stdout"], read["stderr"])


def _zygote() -> subprocess.Popen[str]:
    """This thread's zygote, started (and warmed) on first use, stopped at exit."""
    zygote: subprocess.Popen[str] | None = getattr(_zygotes, "proc", None)
    if zygote is None or zygote.poll() is not None:
        zygote = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))],
            env={**os.environ, **LESSON_ENV},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert zygote.stdout is not None
        assert json.loads(zygote.stdout.readline() or "{}").get("ready"), "zygote failed to start"
        atexit.register(zygote.kill)
        _zygotes.proc = zygote
    return zygote


def test_lessons_are_collected() -> None:
    assert len(LESSONS) >= 9, f"expected the nine fundamentals lessons, found {LESSONS}"


Started = dict[Path, tuple[Path, "Future[subprocess.CompletedProcess[str]]"]]


@pytest.fixture(scope="session")
def started_lessons(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Started]:
    """Every selected lesson, started on a pool of one worker per core (one under xdist)."""
    selected = [
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_lesson_runs_in_smoke_mode"
        and hasattr(item, "callspec")
    ]
    workers = 1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1))
    pool = ThreadPoolExecutor(max_workers=workers)
    started: Started = {}
    if workers > 1:
        for path in selected:
            out = tmp_path_factory.mktemp(path.stem)
            started[path] = (out, pool.submit(run_lesson, path, out))
    yield started
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_in_smoke_mode(path: Path, tmp_path: Path, started_lessons: Started) -> None:
    if path in started_lessons:
        tmp_path, future = started_lessons[path]
        proc = future.result()
    else:
        proc = run_lesson(path, tmp_path)
    assert proc.returncode == 0, (
        f"{path.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    if "save(" in path.read_text(encoding="utf-8"):  # it saves figures: they must be there
        figures = list(tmp_path.rglob("*.png"))
        assert figures, f"{path.name} promised figures but saved none"
        assert all(f.stat().st_size > 1000 for f in figures)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_is_a_percent_notebook(path: Path) -> None:
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(path)
    cells = notebook.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert "You will learn" in cells[0].source
    assert sum(c.cell_type == "code" for c in cells) >= 3
    assert sum(c.cell_type == "markdown" for c in cells) >= 3
    text = path.read_text(encoding="utf-8")
    assert "start_lesson(" in text or 'os.environ.get("TORCHDOJO_SMOKE") == "1"' in text, (
        "a lesson reads TORCHDOJO_SMOKE (torchdojo.viz.start_lesson does)"
    )
    assert "plt.show(" not in text, "never block on plt.show()"


def test_a_failing_assert_fails_the_run(tmp_path: Path) -> None:
    bad = tmp_path / "99_bad.py"
    bad.write_text(
        '# %%\nimport os\nSMOKE = os.environ.get("TORCHDOJO_SMOKE") == "1"\n'
        "assert not SMOKE, 'claim broken'\n"
    )
    proc = run_lesson(bad, tmp_path, timeout=60)
    assert proc.returncode != 0 and "claim broken" in proc.stderr


def test_lesson_executes_as_a_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("TORCHDOJO_SMOKE", "1")
    monkeypatch.setenv("TORCHDOJO_LESSON_OUT", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # let the kernel use its inline backend
    notebook = jupytext.read(ROOT / "lessons" / "06_losses.py")
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("lesson 06 done" in o.get("text", "") for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs), "figures show inline"
