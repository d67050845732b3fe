"""Flet entry points that only work on the event loop, made safe to call from
the threads where quart-flet runs sync handlers.

Flet 1.0 runs sync handlers inline on the loop, so some of its sync APIs
assume the loop's thread. Calls into asyncio (``page.navigate()`` and
``page.logout()`` call ``asyncio.create_task``) find the session's loop in
our threads (quart_flet.runtime.threads). But the components runtime's
``session.schedule_update()`` / ``schedule_effect()`` set an
``asyncio.Event`` of the loop, which from a thread may wake flet's scheduler
late or not at all. Our
sessions are :class:`LoopSafeSession` (and their pages :class:`LoopSafePage`,
subclasses of flet's), whose versions, called from another thread, run them on
the loop (in the caller's context, in order with the caller's page updates,
which reach the loop the same way). Flet's classes are untouched: other Flet
hosts in the process see no change.

Page events flet fires itself (``on_login``, ``on_logout``, ``on_close``,
``on_views_pop_until``) go through the page's ``_trigger_event``, which would
call a sync handler inline on the loop; that page's ``_trigger_event`` is
routed through quart_flet.runtime.dispatch, so they run on the pool like every other
sync handler.

Flet's control tree is not thread-safe either: its diff (``patch_control``)
walks the tree and snapshots it for the next diff, so a diff in one thread
while another thread changes the tree crashes or loses updates. So a
``patch_control`` called from a thread runs on the loop while that thread
waits (its own changes pause, and no loop code runs mid-diff); a session's
sync handlers run one at a time, as in flet, where they run on the loop; and
while one runs, the loop's own diffs for that session wait for it
(quart_flet.runtime.turns.SyncState). ``did_mount``/``will_unmount`` run on the
loop as a result, as in flet.

A sync handler's ``asyncio.run(ft.Clipboard().get())`` (or any service call)
starts a second event loop in the worker thread; the session's method calls
are answered on the server's loop, so ``invoke_method`` from another loop is
forwarded to the session's loop. ``page.run_thread(fn)`` runs ``fn`` with the
caller's context variables (Quart's websocket context: ``get_upload_url``
works there). A dialog's ``on_dismiss``, fired by flet itself, goes through
our dispatch like the page's events.

Relies on flet internals pinned in pyproject (flet 1.0.x), covered by
tests/runtime/test_loopsafe.py.
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
from quart_flet.runtime.turns import RuntimeSession


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
        """From a thread, run on the loop while the thread waits; on the loop
        while a sync handler of this session runs in a thread, deferred until
        it is done (see turns.SyncState)."""
        patch = super().patch_control
        if self.on_loop_thread():
            if self.sync.running:
                self.sync.deferred.append(functools.partial(patch, *args, **kwargs))
                return None
            return patch(*args, **kwargs)
        return threads.wait_on_loop(self.loop, functools.partial(patch, *args, **kwargs))

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

    A thread that creates a service (``ft.Clipboard()`` in a sync handler)
    holds flet's registry lock while its ``page.update()`` waits for the loop;
    the loop, meanwhile, may want the same lock (after an event it drops
    services nobody references). Waiting there would deadlock both, so on the
    loop's thread a held lock raises :class:`RegistryBusy` instead: that
    housekeeping is put off to the next event, and an async handler that
    creates a service at the very moment a sync handler of the same session
    does gets the error rather than a frozen server.
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
