"""Turn nested training state (optimizer, scheduler, RNG) into safetensors + JSON, and back.

No pickle anywhere: tensors go to a flat ``{key: tensor}`` dict, everything else to JSON with
``{"__tensor__": key}`` placeholders.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

_JSON_SCALARS = (str, int, float, bool, type(None))


def flatten_state(obj: Any, prefix: str, tensors: dict[str, Tensor]) -> Any:
    """Return a JSON-able tree for ``obj``; its tensors are added to ``tensors``."""
    if isinstance(obj, Tensor):
        tensors[prefix] = obj.detach().cpu().clone().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        items = [[k, flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]
        return {"__dict__": items}
    if isinstance(obj, tuple):
        return {
            "__tuple__": [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
        }
    if isinstance(obj, list):
        return [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, _JSON_SCALARS):
        return obj
    if isinstance(obj, torch.dtype | torch.device):
        return {"__str__": str(obj)}
    raise TypeError(
        f"cannot store {type(obj).__name__} at {prefix!r} in a checkpoint without pickle"
    )


def unflatten_state(tree: Any, tensors: dict[str, Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(tree, list):
        return [unflatten_state(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if "__dict__" in tree:
        return {k: unflatten_state(v, tensors) for k, v in tree["__dict__"]}
    if "__tuple__" in tree:
        return tuple(unflatten_state(v, tensors) for v in tree["__tuple__"])
    if "__str__" in tree:
        return tree["__str__"]
    return {k: unflatten_state(v, tensors) for k, v in tree.items()}
