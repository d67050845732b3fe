"""Sync user code in the app's thread pool, with the event loop flet's own
apps expect to find there: while such code runs, its thread's running loop
is the session's :class:`SessionLoop`, the real loop seen from a thread.
:func:`loop_bound_reason` spots the handlers that must run on the loop
instead.

``asyncio._get_running_loop`` / ``_set_running_loop`` are asyncio's own hooks
for event loop implementations (in ``asyncio.events.__all__``).

Why and how: docs/discussion/handlers.md, "Threads that still see the loop"
and "What a thread must not do".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import queue
import threading
import types
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from flet.controls.exceptions import FletPageDisconnectedException

from quart_flet.compat.stdlib import get_running_loop_or_none, set_running_loop

T = TypeVar("T")

# Loop methods that are safe from any thread, or that only read state.
_THREAD_SAFE = frozenset(
    {
        "call_soon_threadsafe",
        "time",
        "is_running",
        "is_closed",
        "get_debug",
        "get_exception_handler",
        "get_task_factory",
    }
)


def call_on_loop(loop: asyncio.AbstractEventLoop, func: Callable[[Any], Any], arg: Any) -> None:
    """``func(arg)`` at once when called on ``loop``'s thread, else soon on it."""
    try:
        on_loop = asyncio.get_running_loop() is loop
    except RuntimeError:
        on_loop = False
    if on_loop:
        func(arg)
    else:
        loop.call_soon_threadsafe(func, arg)


def wait_on_loop(loop: asyncio.AbstractEventLoop, call: Callable[[], T]) -> T:
    """``call()`` on the loop, from another thread, waiting for its result
    (raising what it raised)."""
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if done.set_running_or_notify_cancel():
            try:
                done.set_result(call())
            except BaseException as error:
                done.set_exception(error)

    try:
        loop.call_soon_threadsafe(run, context=contextvars.copy_context())
    except RuntimeError:  # the loop is closed: the server has stopped
        raise FletPageDisconnectedException("the server has stopped") from None
    while True:
        try:
            return done.result(timeout=1)
        except TimeoutError:
            if loop.is_closed() and done.cancel():
                raise FletPageDisconnectedException("the server has stopped") from None


class SessionLoop(asyncio.AbstractEventLoop):
    """One session's event loop as its sync code in pool threads sees it.

    ``owner(task)`` is called on the loop for every task created through it.
    On the loop's own thread every call goes straight to the real loop.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        loop_thread: int,
        owner: Callable[[asyncio.Task[Any]], None],
    ) -> None:
        self.loop = loop
        self.loop_thread = loop_thread
        self.owner = owner

    def __repr__(self) -> str:
        return f"<SessionLoop of {self.loop!r}>"

    def _off_loop(self) -> bool:
        return threading.get_ident() != self.loop_thread

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        def create() -> asyncio.Task[Any]:
            task = self.loop.create_task(coro, **kwargs)
            self.owner(task)
            return task

        return wait_on_loop(self.loop, create) if self._off_loop() else create()

    def call_soon(  # type: ignore[override]  # same parameters, untyped
        self, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.Handle:
        if self._off_loop():
            return self.loop.call_soon_threadsafe(callback, *args, context=context)
        return self.loop.call_soon(callback, *args, context=context)

    def __getattr__(self, name: str) -> Any:  # attributes AbstractEventLoop lacks
        return getattr(self.loop, name)


def _forwarder(name: str) -> Callable[..., Any]:
    def forward(self: SessionLoop, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.loop, name)
        if name in _THREAD_SAFE or not self._off_loop():
            return method(*args, **kwargs)
        return wait_on_loop(self.loop, functools.partial(method, *args, **kwargs))

    forward.__name__ = forward.__qualname__ = name
    return forward


for _name, _value in vars(asyncio.AbstractEventLoop).items():
    if callable(_value) and not _name.startswith("_") and _name not in vars(SessionLoop):
        setattr(SessionLoop, _name, _forwarder(_name))


def session_loop(
    loop: asyncio.AbstractEventLoop,
    loop_thread: int,
    owner: Callable[[asyncio.Task[Any]], None],
) -> SessionLoop:
    """A :class:`SessionLoop` (its methods are made below, where mypy does
    not see them)."""
    return SessionLoop(loop, loop_thread, owner)  # type: ignore[abstract]


def _call_with_loop(session_loop: SessionLoop, func: Callable[..., T], *args: Any) -> T:
    previous = get_running_loop_or_none()
    set_running_loop(session_loop)
    try:
        return func(*args)
    finally:
        set_running_loop(previous)


_DONE = object()


def _step(generator: Any) -> Any:
    try:
        return next(generator)
    except StopIteration:
        return _DONE


async def run_sync(
    executor: Executor | None, session_loop: SessionLoop, func: Callable[..., Any], *args: Any
) -> Any:
    """``func(*args)`` in ``executor`` with ``session_loop`` as the thread's
    running loop and a copy of the caller's context variables."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(
        executor, context.run, _call_with_loop, session_loop, func, *args
    )


async def step_generator(
    executor: Executor | None, session_loop: SessionLoop, generator: Any
) -> bool:
    """Run a sync generator to its next ``yield`` in a thread; False when done."""
    return await run_sync(executor, session_loop, _step, generator) is not _DONE


# Calls that wake up whoever awaits a loop-bound asyncio object, and the
# objects they are made on.
_WAKE_CALLS = frozenset({"put_nowait", "get_nowait", "set_result", "set_exception"})
_LOOP_BOUND = (asyncio.Event, asyncio.Queue, asyncio.Future, asyncio.Condition)
_THREAD_SAFE_TWINS = (queue.Queue, queue.SimpleQueue, concurrent.futures.Future)
_code_names: dict[types.CodeType, frozenset[str]] = {}


def _names(code: types.CodeType) -> frozenset[str]:
    """Attribute and global names used by ``code`` and the functions in it."""
    names = _code_names.get(code)
    if names is None:
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= _names(const)
        names = _code_names[code] = frozenset(found)
    return names


def _reachable(func: Any, names: frozenset[str]) -> list[Any]:
    """Values a function reaches by name: its closure cells, the globals it
    names and, for a bound method, its object's attributes."""
    values: list[Any] = []
    for cell in getattr(func, "__closure__", None) or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    module = getattr(func, "__globals__", {})
    values.extend(module[name] for name in names if name in module)
    owner = getattr(func, "__self__", None)
    if owner is not None:
        values.extend(getattr(owner, "__dict__", {}).values())
    return values


def loop_bound_reason(handler: Any) -> str | None:
    """Why the sync callable ``handler`` must run on the loop rather than in a
    thread, or None: its code wakes up an asyncio object (a ``put_nowait`` or
    ``set_result``, unless what it reaches is a thread-safe queue or future;
    an ``asyncio.Event`` it reaches and sets)."""
    function = getattr(handler, "__func__", handler)
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    names = _names(code)
    wakes = names & _WAKE_CALLS
    if not wakes and "set" not in names:
        return None
    values = _reachable(handler if inspect.ismethod(handler) else function, names)
    if wakes and not any(isinstance(value, _THREAD_SAFE_TWINS) for value in values):
        return f"it calls {min(wakes)}(), which must run on the event loop"
    if "set" in names and any(isinstance(value, asyncio.Event) for value in values):
        return "it sets an asyncio.Event, which must be set on the event loop"
    if wakes and any(isinstance(value, _LOOP_BOUND) for value in values):
        return f"it calls {min(wakes)}() on an asyncio object"
    return None
