"""Whether a run folder holds a finished run, and the one-line refusal when it does not.

``runs.runner`` writes ``summary.json`` with ``"status": "finished"`` at the end of a run and
``"failed"`` / ``"interrupted"`` when it stops early; a run killed outright (or still going)
has no ``summary.json`` at all. A failed run's folder can hold an untrained
``model.safetensors``, so ``predict``, ``export`` and ``serve`` ask :func:`require_finished`
first. Imports no torch: ``serve`` and ``show`` stay quick.
"""

from __future__ import annotations

import json
from pathlib import Path

from torchdojo.runs.contract import ConfigError

FINISHED = "finished"


def run_status(run_dir: Path) -> str:
    """``"finished"``, ``"failed"``, ``"interrupted"`` or ``"unfinished"`` (no summary.json).

    Run folders written before summaries had a status count as finished.
    """
    summary = read_summary(run_dir)
    if summary is None:
        return "unfinished"
    return str(summary.get("status", FINISHED))


def read_summary(run_dir: Path) -> dict[str, object] | None:
    """``run_dir/summary.json`` as a dict, or None when there is none."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{path} is not readable JSON ({err}); the run folder is damaged"
        ) from None
    if not isinstance(summary, dict):
        raise ConfigError(f"{path} holds no summary object; the run folder is damaged")
    return summary


def has_checkpoint(run_dir: Path) -> bool:
    """True when ``run_dir/checkpoints`` (or a model's subfolder of it, as cifar10-zoo writes)
    holds a step checkpoint ``torchdojo resume`` can use."""
    return any((run_dir / "checkpoints").rglob("step-*.safetensors"))


def next_step(run_dir: Path, recipe: str | None = None) -> str:
    """What to do with an unfinished run: resume it when it can be, else run it again."""
    if has_checkpoint(run_dir):
        return f"resume it with `torchdojo resume {run_dir}`"
    name = recipe or _recipe_of(run_dir)
    return f"it has no checkpoint to resume from; train again with `torchdojo run {name}`"


def require_finished(run_dir: Path, action: str) -> None:
    """Raise :class:`ConfigError` unless ``run_dir`` is a finished run (or a bare model folder).

    A folder with ``config.yaml`` is a run folder: it must have finished. A folder with only
    ``model.json`` + ``model.safetensors`` (``save_bundle`` output) passes as it is.

    Args:
        run_dir: The folder to check.
        action: What the caller is about to do (``"predict"``), for the message.
    """
    if not (run_dir / "config.yaml").is_file():
        return
    status = run_status(run_dir)
    if status == FINISHED:
        return
    summary = read_summary(run_dir) or {}
    recipe = str(summary.get("recipe") or _recipe_of(run_dir))
    why = "has no summary.json (still running, or killed)"
    if status != "unfinished":
        error = str(summary.get("error", "")).strip().splitlines()
        why = f"is a {status} run" + (f" ({error[0][:200]})" if error else "")
    raise ConfigError(
        f"cannot {action} with {run_dir}: it {why}, so its model is not the trained one; "
        f"{next_step(run_dir, recipe)}"
    )


def _recipe_of(run_dir: Path) -> str:
    """The recipe a run folder ran, from its ``config.yaml`` (else "RECIPE")."""
    import yaml

    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return "RECIPE"
    return str(saved.get("recipe", "RECIPE")) if isinstance(saved, dict) else "RECIPE"


__all__ = ["has_checkpoint", "next_step", "read_summary", "require_finished", "run_status"]
