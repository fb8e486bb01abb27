"""Layer 4a: what the CLI's commands do, as plain functions over the recipe contract.

- :mod:`~torchdojo.services.predict`: top-k classes of images for a finished run's model.
- :mod:`~torchdojo.services.export`: export a finished run for serving, with a parity check.
- :mod:`~torchdojo.services.diagnose`: per-layer statistics and one-batch overfitting.
- :mod:`~torchdojo.services.lr_find`: the learning-rate range test on a recipe's setup.
- :mod:`~torchdojo.services.show_batch`: a grid of training images as a recipe feeds them.
- :mod:`~torchdojo.services.tools`: what those three tools share: a recipe's ``setup`` built
  from a recipe name or a run folder, and the tool's own folder in the run tree.
- :mod:`~torchdojo.services.finished`: whether a run folder holds a finished run.
- :mod:`~torchdojo.services.docs_site`: the documentation site (`torchdojo docs`), with
  :mod:`~torchdojo.services.docs_recipes` (recipe pages) and
  :mod:`~torchdojo.services.docs_lessons` (executed lessons, their cache, their pages).

Services import :mod:`torchdojo.recipes` (``get_recipe``), :mod:`torchdojo.runs` and the
layers below; the CLI imports them, never the other way round.
"""
