"""Layer 3a: what every task shares to become a run.

- :mod:`~torchdojo.runs.contract`: the recipe contract (``Recipe``, ``Setup``, ``Expected``,
  ``RunOptions``) and the checks on config values; imported here (no torch, so
  ``torchdojo list`` stays fast).
- :mod:`~torchdojo.runs.context`: ``RunContext``, what a recipe's ``run`` gets.
- :mod:`~torchdojo.runs.runner`: the run folder, its summary and report.
- :mod:`~torchdojo.runs.classify`: the classification pieces (splits, loaders, accuracy, the
  report's confusion matrix, most-confused pairs, top losses and Grad-CAM).

Recipes import it; the CLI's services import recipes and it.
"""

from torchdojo.runs.contract import (
    ConfigError,
    Expected,
    Range,
    Recipe,
    RunOptions,
    Setup,
    apply_overrides,
    config_help,
    parse_overrides,
    validate_config,
)

__all__ = [
    "ConfigError",
    "Expected",
    "Range",
    "Recipe",
    "RunOptions",
    "Setup",
    "apply_overrides",
    "config_help",
    "parse_overrides",
    "validate_config",
]
