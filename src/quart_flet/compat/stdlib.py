"""The standard library's private names: asyncio's loop hooks, a coroutine's
frame, a thread pool's size, argparse's subcommands action. Imports the
standard library only."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import CodeType
from typing import Any

__all__ = [
    "SubParsersAction",
    "await_chain",
    "coroutine_code",
    "coroutine_locals",
    "executor_max_workers",
    "get_running_loop_or_none",
    "set_running_loop",
]

#: asyncio's own hooks behind get_running_loop(), public in all but name
#: (asyncio.events exports both)
get_running_loop_or_none: Callable[[], asyncio.AbstractEventLoop | None] = asyncio._get_running_loop
set_running_loop: Callable[[asyncio.AbstractEventLoop | None], None] = asyncio._set_running_loop

#: what ``ArgumentParser.add_subparsers()`` returns
SubParsersAction = argparse._SubParsersAction


def executor_max_workers(executor: ThreadPoolExecutor) -> int:
    """The most threads ``executor`` runs at once."""
    return executor._max_workers


def await_chain(coro: Any) -> Iterator[Any]:
    """``coro``, the coroutine it awaits, the one that one awaits..."""
    while coro is not None:
        yield coro
        coro = getattr(coro, "cr_await", None)


def coroutine_code(coro: Any) -> CodeType | None:
    """The code a coroutine runs (None for another awaitable)."""
    return getattr(coro, "cr_code", None)


def coroutine_locals(coro: Any) -> dict[str, Any]:
    """A suspended coroutine's local variables ({} once it has ended)."""
    frame = getattr(coro, "cr_frame", None)
    return {} if frame is None else frame.f_locals
