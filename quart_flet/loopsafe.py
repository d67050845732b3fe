"""Flet entry points that only work on the event loop, made safe to call from
the threads where quart-flet runs sync handlers.

Flet 1.0 runs sync handlers inline on the loop, so some of its sync APIs
assume the loop's thread: ``page.navigate()`` (documented "for synchronous
callbacks") and ``page.logout()`` call ``asyncio.create_task``, and the
components runtime's ``session.schedule_update()`` / ``schedule_effect()``
set an ``asyncio.Event``. From a worker thread the first two raise "no
running event loop" and the other two may wake flet's scheduler late. For
each session we create, these are replaced *on that instance* by wrappers
that, called from another thread, run them on the loop (in the caller's
context, in order with the caller's page updates, which reach the loop the
same way). Flet's classes are untouched: other Flet hosts in the process see
no change.

Page events flet fires itself (``on_login``, ``on_logout``, ``on_close``,
``on_views_pop_until``) go through the page's ``_trigger_event``, which would
call a sync handler inline on the loop; that page's ``_trigger_event`` is
routed through quart_flet.dispatch, so they run on the pool like every other
sync handler.

Flet's control tree is not thread-safe either: its diff (``patch_control``)
walks the tree and snapshots it for the next diff, so a diff in one thread
while another thread changes the tree crashes or loses updates. So a
``patch_control`` called from a thread runs on the loop while that thread
waits (its own changes pause, and no loop code runs mid-diff); a session's
sync handlers run one at a time, as in flet, where they run on the loop; and
while one runs, the loop's own diffs for that session wait for it
(quart_flet.dispatch.SyncState). ``did_mount``/``will_unmount`` run on the
loop as a result, as in flet.

A sync handler's ``asyncio.run(ft.Clipboard().get())`` (or any service call)
starts a second event loop in the worker thread; the session's method calls
are answered on the server's loop, so ``invoke_method`` from another loop is
forwarded to the session's loop. ``page.run_thread(fn)`` runs ``fn`` with the
caller's context variables (Quart's websocket context: ``get_upload_url``
works there). A dialog's ``on_dismiss``, fired by flet itself, goes through
our dispatch like the page's events.

Relies on flet internals pinned in pyproject (flet 1.0.x), covered by
tests/test_loopsafe.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from flet.controls.exceptions import FletPageDisconnectedException
from flet.messaging.session import Session

from quart_flet import dispatch

_SESSION_METHODS = ("schedule_update", "schedule_effect", "start_updates_scheduler")
_PAGE_METHODS = ("navigate", "logout")


def bind(session: Session, loop: asyncio.AbstractEventLoop) -> None:
    """Make ``session`` (just created, on the loop's thread) safe to drive
    from worker threads."""
    loop_thread = threading.get_ident()
    page = session.page
    for owner, names in ((session, _SESSION_METHODS), (page, _PAGE_METHODS)):
        for name in names:
            setattr(owner, name, _on_loop(loop, loop_thread, getattr(owner, name)))
    session.patch_control = _diffing_on_loop(
        loop, loop_thread, dispatch.sync_state(session), session.patch_control
    )
    session.invoke_method = _forwarded_to(loop, session.invoke_method)
    page.run_thread = _with_context(page.run_thread)
    page._trigger_event = functools.partial(dispatch.trigger_event, session, page)
    prepare_dialog = page._prepare_dialog

    def _prepare_dialog(dialog: Any) -> None:
        prepare_dialog(dialog)
        dialog._trigger_event = functools.partial(dispatch.trigger_event, session, dialog)

    page._prepare_dialog = _prepare_dialog


def _on_loop(
    loop: asyncio.AbstractEventLoop, loop_thread: int, method: Callable[..., None]
) -> Callable[..., None]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> None:
        if threading.get_ident() == loop_thread:
            method(*args, **kwargs)
        else:
            loop.call_soon_threadsafe(
                functools.partial(method, *args, **kwargs), context=contextvars.copy_context()
            )

    return call


def _diffing_on_loop(
    loop: asyncio.AbstractEventLoop,
    loop_thread: int,
    state: dispatch.SyncState,
    method: Callable[..., Any],
) -> Callable[..., Any]:
    """``patch_control`` for one session: from a thread, run on the loop while
    the thread waits; on the loop while a sync handler of the session runs in
    a thread, deferred until it is done (see dispatch.SyncState)."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == loop_thread:
            if state.running:
                state.deferred.append(functools.partial(method, *args, **kwargs))
                return None
            return method(*args, **kwargs)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(method(*args, **kwargs))
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

    return call


def _forwarded_to(
    loop: asyncio.AbstractEventLoop, method: Callable[..., Coroutine[Any, Any, Any]]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        if asyncio.get_running_loop() is loop:
            return await method(*args, **kwargs)
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
            method(*args, **kwargs), loop
        )
        return await asyncio.wrap_future(future)

    return call


def _with_context(run_thread: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(run_thread)
    def call(handler: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        run_thread(functools.partial(contextvars.copy_context().run, handler), *args, **kwargs)

    return call
