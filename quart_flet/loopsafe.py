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

Relies on flet internals pinned in pyproject (flet 1.0.x), covered by
tests/test_loopsafe.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

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
    page._trigger_event = functools.partial(dispatch.trigger_event, session, page)


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
