"""Background work shared by every viewer, kept by key: one pattern for the maps that refine
(:mod:`dashboard.work.refine`) and the tour's slow pictures (:mod:`dashboard.work.story`).

A :class:`Shelf` holds the newest ``kept`` items (each with its ``thread``), under one lock that
the owner also takes to decide whether to start work; :meth:`Shelf.stopping` is what the work
polls to end early; :meth:`Shelf.clear` stops it all (tests between runs, and at exit: torch
must not be running in a thread while the interpreter shuts down).
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Shelf(Generic[T]):
    """The newest ``kept`` items by key, each possibly with a background ``thread``."""

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self.lock = threading.Lock()
        self._shutdown = threading.Event()
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        atexit.register(self.clear)

    def get(self, key: Hashable) -> T | None:
        """The item under ``key`` (call with :attr:`lock` held), marked as the newest."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Hashable, item: T) -> T:
        """Keep ``item`` under ``key`` (call with :attr:`lock` held); the oldest go past ``kept``."""
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.kept:
            self._items.popitem(last=False)
        return item

    def start(self, item: Any, target: Callable[..., None], *args: Any, name: str) -> None:
        """Run ``target(*args)`` in a daemon thread kept as ``item.thread`` (not while stopping)."""
        if self._shutdown.is_set():
            return
        item.thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        item.thread.start()

    def stopping(self) -> bool:
        """Whether :meth:`clear` is stopping the work (the work polls it between steps)."""
        return self._shutdown.is_set()

    def clear(self, timeout: float = 120.0) -> None:
        """Stop the work in progress (waiting for it up to ``timeout`` s) and forget every item."""
        self._shutdown.set()
        with self.lock:
            threads = [t for item in self._items.values() if (t := getattr(item, "thread", None)) is not None]
            self._items.clear()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._shutdown.clear()
