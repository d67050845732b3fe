"""Type aliases more than one folder shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["AppCallable", "ViewT"]

#: main, before_main, a hook or a handler: sync (run in the pool) or async
AppCallable = Callable[..., Any]

#: a Quart view function, kept as its own type by a decorator
ViewT = TypeVar("ViewT", bound=Callable[..., Any])
