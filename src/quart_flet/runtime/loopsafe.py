"""Flet entry points that only work on the event loop, made safe to call from
the threads where quart-flet runs sync handlers. Our sessions are
:class:`LoopSafeSession` (their pages :class:`LoopSafePage`), subclasses of
flet's whose ``schedule_update`` / ``schedule_effect``, ``patch_control`` and
``invoke_method``, called from another thread or loop, run on the session's
loop, and whose page events go through quart_flet.runtime.dispatch. Flet's
own classes are untouched: other Flet hosts in the process see no change.

Relies on flet internals pinned in pyproject (flet 1.0.x), covered by
tests/runtime/test_loopsafe.py.

Why and how: docs/discussion/handlers.md, "Flet entry points that need the
loop" and "The control tree is not thread-safe".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from flet.controls.base_control import BaseControl
from flet.controls.page import ServiceRegistry

from quart_flet.compat.flet import (
    PageHooks,
    page_services,
    recast,
    set_registry_lock,
    set_trigger_event,
)
from quart_flet.runtime import dispatch, threads
from quart_flet.runtime.session import RuntimeSession


class LoopSafeSession(RuntimeSession):
    """flet's Session, safe to drive from worker threads (see the module
    docstring); what it keeps is :class:`RuntimeSession`'s. Its page is a
    :class:`LoopSafePage`. Methods on the class, not closures per session: a
    session costs no more memory than flet's."""

    def __init__(
        self, connection: Any, executor: Executor, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(connection, executor)
        self.loop = loop
        self.loop_thread = threading.get_ident()  # created on the loop's thread
        recast(self.page, LoopSafePage)  # same fields and _c: only methods differ
        services = page_services(self.page)
        recast(services, LoopSafeServiceRegistry)
        set_registry_lock(services, LoopYieldingLock(self.loop_thread))

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.loop_thread

    def later_on_loop(self, method: Callable[..., Any], *args: Any) -> None:
        """``method(*args)`` now on the loop's thread, or soon from another."""
        if self.on_loop_thread():
            method(*args)
        else:
            context = contextvars.copy_context()
            self.loop.call_soon_threadsafe(functools.partial(method, *args), context=context)

    def schedule_update(self, control: Any) -> None:
        self.later_on_loop(self._when_no_thread_runs, super().schedule_update, control)

    def schedule_effect(self, hook: Any, is_cleanup: bool) -> None:
        self.later_on_loop(self._when_no_thread_runs, super().schedule_effect, hook, is_cleanup)

    def _when_no_thread_runs(self, method: Callable[..., Any], *args: Any) -> None:
        """A components re-render (or effect) asked for while a sync handler
        of this session runs in a thread waits until it has returned, as in
        flet, where the handler runs on the loop and the scheduler after it;
        rendering meanwhile would diff a tree the thread is changing, and
        find its own patches deferred (see patch_control)."""
        if self.sync.running:
            self.sync.deferred.append(functools.partial(method, *args))
        else:
            method(*args)

    def start_updates_scheduler(self) -> None:
        self.later_on_loop(super().start_updates_scheduler)

    def patch_control(self, *args: Any, **kwargs: Any) -> Any:
        """From a thread, run on the loop while the thread waits, except in
        the thread that diffs this session itself (a sync pubsub handler's:
        see runtime.session.SyncState); on the loop while a sync handler of this
        session runs in a thread, deferred until it is done."""
        patch = super().patch_control
        if self.on_loop_thread():
            if self.sync.running:
                self.sync.deferred.append(functools.partial(patch, *args, **kwargs))
                return None
            return patch(*args, **kwargs)
        if self.sync.differ == threading.get_ident():
            return patch(*args, **kwargs)  # nobody else diffs this tree meanwhile
        return threads.wait_on_loop(
            self.loop, functools.partial(self._patch_for_thread, patch, *args, **kwargs)
        )

    def _patch_for_thread(self, patch: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Another thread's diff, on the loop: after the thread diffing this
        session itself is done, if one is."""
        if self.sync.differ is not None:
            self.sync.deferred.append(functools.partial(patch, *args, **kwargs))
            return None
        return patch(*args, **kwargs)

    async def invoke_method(self, *args: Any, **kwargs: Any) -> Any:
        """From another event loop (``asyncio.run(...)`` in a sync handler),
        forwarded to the session's: its answer arrives there."""
        call = super().invoke_method
        if asyncio.get_running_loop() is self.loop:
            return await call(*args, **kwargs)
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
            call(*args, **kwargs), self.loop
        )
        return await asyncio.wrap_future(future)


class LoopSafePage(PageHooks):
    """flet's Page of a :class:`LoopSafeSession` (its class is swapped in
    after flet creates it; no new fields)."""

    # A page equals itself only. flet's diff asks ``parent != doc`` for every
    # control whose parent is the page, and the dataclass ``__eq__`` builds
    # and compares tuples of the page's 64 fields each time: ~10% of the
    # loop's time in a 1,000-session pubsub fan-out. Where flet compares
    # pages at all, it asks whether they are the same page.
    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = BaseControl.__hash__  # defining __eq__ would unset it

    @property
    def _loop_safe_session(self) -> LoopSafeSession:
        session = self.session
        assert isinstance(session, LoopSafeSession)
        return session

    def run_thread(self, handler: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """flet's, with the caller's context variables in the thread."""
        run = functools.partial(contextvars.copy_context().run, handler)
        super().run_thread(run, *args, **kwargs)

    async def route_event(
        self, event_name: str, event_data: Any, e: Any = None
    ) -> None:  # flet fires on_login, on_logout, on_close... through this
        await dispatch.trigger_event(self._loop_safe_session, self, event_name, event_data, e)

    def dialog_prepared(self, dialog: Any) -> None:
        # flet's dismiss wrapper fires the dialog's events itself
        set_trigger_event(
            dialog, functools.partial(dispatch.trigger_event, self._loop_safe_session, dialog)
        )


class RegistryBusy(Exception):
    """The loop found a page's service registry held by a thread."""


class LoopYieldingLock:
    """The lock of a page's service registry, which the loop never waits for.

    On the loop's thread a held lock raises :class:`RegistryBusy` instead, as a
    thread that creates a service holds it while its ``page.update()`` waits for
    the loop (the deadlock: docs/discussion/handlers.md, "Flet entry points that
    need the loop").
    """

    def __init__(self, loop_thread: int) -> None:
        self.lock = threading.Lock()
        self.loop_thread = loop_thread

    def __enter__(self) -> None:
        if threading.get_ident() != self.loop_thread:
            self.lock.acquire()
        elif not self.lock.acquire(blocking=False):
            raise RegistryBusy("a sync handler of this session is registering a service")

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()


class LoopSafeServiceRegistry(ServiceRegistry):
    """flet's ServiceRegistry of a :class:`LoopSafePage` (class swapped in, no
    new fields): dropping unreferenced services waits for the next event when
    a thread holds the registry."""

    def unregister_services(self) -> None:
        try:
            super().unregister_services()  # type: ignore[no-untyped-call]
        except RegistryBusy:
            pass  # housekeeping only: the next after_event does it
