"""Run lesson scripts in forks of one warm interpreter, so each lesson skips the imports.

A lesson in a fresh interpreter spends most of its smoke run importing torch, torchvision,
torchmetrics and matplotlib (about 10 of its 15 s). This process imports them once, then reads
one JSON request per line on stdin (``{"path": ..., "out": ..., "timeout": ...}``), forks,
and runs the lesson in the child as ``python lesson.py`` would (``__main__``, its folder on
``sys.path``, the working directory ``out``, stdout and stderr into ``out/.lesson.stdout`` and
``.stderr``). It answers one JSON line: ``{"rc": exit status}`` (-9 when it was killed on
timeout). The child gets a private copy of the warm interpreter: nothing a lesson does leaks
into the next one. Started by tests/lessons/test_lessons.py with the lesson environment
(``TORCHDOJO_SMOKE=1``, ``MPLBACKEND=Agg``, ``OMP_NUM_THREADS=1``) already set.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import time
import traceback

WARM = ("numpy", "torch", "torchvision", "torchmetrics", "matplotlib.pyplot", "torchdojo.viz")


def run_child(path: str, out: str) -> int:
    """The lesson, in this (forked) process; its exit status."""
    os.chdir(out)
    os.environ["TORCHDOJO_LESSON_OUT"] = out
    for fd, name in ((1, ".lesson.stdout"), (2, ".lesson.stderr")):
        os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    sys.argv = [path]
    sys.path[0] = os.path.dirname(path)  # as `python lesson.py` sets it
    try:
        runpy.run_path(path, run_name="__main__")
        return 0
    except SystemExit as stop:
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:  # the lesson's own failure, reported as python would
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def wait(pid: int, timeout: float) -> int:
    """The child's exit status, killing it after ``timeout`` seconds (then -9)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9
        time.sleep(0.05)


def main() -> None:
    for module in WARM:
        __import__(module)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os._exit(run_child(request["path"], request["out"]))
        rc = wait(pid, float(request.get("timeout", 300)))
        print(json.dumps({"rc": rc}), flush=True)


if __name__ == "__main__":
    main()
