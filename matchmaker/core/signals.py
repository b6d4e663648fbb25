"""Cross-domain reactions: a domain announces what happened to its objects, and the domains built on it
react, without the lower one importing the higher ones (``tests/core/test_import_layers.py``).

Receivers run synchronously, in the sender's transaction (they flush, never commit), and in the order they
were connected — blinker leaves that order undefined, and the order of audit entries and notifications is
part of the behaviour. Connect with ``weak=False``: a receiver must not vanish with a garbage collection.
"""
from __future__ import annotations

from collections.abc import MutableSet

from blinker import NamedSignal, Namespace


class _OrderedSet(MutableSet):
    """A set that iterates in insertion order (blinker's ``Signal.set_class``)."""

    def __init__(self, items=()) -> None:
        self._items = dict.fromkeys(items)

    def __contains__(self, item) -> bool:
        return item in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item) -> None:
        self._items[item] = None

    def discard(self, item) -> None:
        self._items.pop(item, None)

    def copy(self) -> _OrderedSet:
        return _OrderedSet(self._items)


class OrderedSignal(NamedSignal):
    """A named blinker signal whose receivers run in the order they were connected."""

    set_class = _OrderedSet


class OrderedNamespace(Namespace):
    def signal(self, name: str, doc: str | None = None) -> OrderedSignal:
        if name not in self:
            self[name] = OrderedSignal(name, doc)
        return self[name]


#: every signal of the package, by name
signals = OrderedNamespace()
