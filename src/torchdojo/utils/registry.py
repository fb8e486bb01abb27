"""A tiny typed registry: named builders, duplicates refused, unknown names listed.

Models, datasets and recipes each keep one. Taught in lessons/00_tour.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names to objects (usually builders) with helpful errors.

    Args:
        kind: What is registered ("model", "dataset", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under ``name``; a second registration of the same name raises."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def decorator(self, name: str | None = None) -> Callable[[T], T]:
        """Return a decorator that registers a function under ``name`` (default: its own name,
        with underscores turned into dashes)."""

        def wrap(item: T) -> T:
            key = name or getattr(item, "__name__", "").replace("_", "-")
            if not key:
                raise ValueError(f"cannot infer a {self.kind} name; pass name=...")
            return self.register(key, item)

        return wrap

    def get(self, name: str) -> T:
        """Return the item registered as ``name`` or raise with the valid names."""
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(unknown_name_message(self.kind, name, self.names())) from None

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    """One line naming the bad ``name``, the closest valid one, and all the valid ones."""
    import difflib

    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Available: {', '.join(valid)}"
