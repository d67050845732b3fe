"""Where user code runs: async callables as tasks on the loop, sync ones
through Quart's ``run_sync`` on the app's bounded thread pool.

Flet 1.0 calls sync handlers inline on the event loop, so one ``time.sleep``
stalls every user of the worker. We run sync ones (plain and generator) in a
thread instead. That means re-doing ``BaseControl._trigger_event`` (building
the event object, before_event, the auto-update), which we also make cheaper by
caching what flet recomputes per event. It relies on flet internals pinned in
pyproject (flet 1.0.x) and covered by tests/test_handlers.py and
tests/test_protocol.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import traceback
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from flet.controls.base_control import BaseControl
from flet.controls.context import _context_page, context
from flet.controls.control_event import ControlEvent, get_event_field_type
from flet.controls.exceptions import FletPageDisconnectedException
from flet.messaging.session import Session
from flet.utils.from_dict import from_dict
from flet.utils.object_model import get_param_count
from quart.utils import run_sync

logger = logging.getLogger("quart_flet")

AppCallable = Callable[..., Any]


class BadEventData(Exception):
    """An event whose data cannot make its event object: the client's fault."""


class SyncState:
    """How one session's sync handlers share its control tree with the loop.

    Flet's tree is not safe to change from two threads at once: its diff
    walks the tree and snapshots it for the next diff. Flet runs sync handlers
    on the loop, so they never overlap anything. We run them in threads, so:

    - ``lock``: a session's sync handlers (events, pubsub) run one at a time.
      ``main`` does not take it, so a ``main`` that never returns does not
      freeze its page.
    - ``running``: while one runs in a thread, a diff the *loop* wants for
      this session (an async handler's ``page.update()``) is ``deferred`` and
      made when the thread is done, so it never reads the tree mid-change.
      (A thread's own diffs run on the loop while it waits:
      quart_flet.loopsafe.)
    """

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.running = 0
        self.deferred: list[Callable[[], Any]] = []

    @contextlib.contextmanager
    def thread_running(self) -> Iterator[None]:
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            if not self.running:
                self.flush()

    def flush(self) -> None:
        deferred, self.deferred = self.deferred, []
        for call in deferred:
            try:
                call()
            except FletPageDisconnectedException:
                pass
            except Exception:
                logger.error("a deferred page update failed", exc_info=True)


_sync_states: weakref.WeakKeyDictionary[Session, SyncState] = weakref.WeakKeyDictionary()


def sync_state_if_any(session: Session) -> SyncState | None:
    return _sync_states.get(session)


def sync_state(session: Session) -> SyncState:
    state = _sync_states.get(session)
    if state is None:
        state = _sync_states[session] = SyncState()
    return state


def flets_own(handler: Any) -> bool:
    """A handler flet's controls set on themselves (RawImage's data channel,
    say): flet runs it on the loop and it needs the loop, so we do too."""
    function = getattr(handler, "__func__", None)
    return bool(getattr(function, "__module__", "").startswith("flet."))


def runs_in_thread(func: Any) -> bool:
    """True for a sync callable (plain or generator), which must leave the loop."""
    return (
        callable(func)
        and not inspect.iscoroutinefunction(func)
        and not inspect.isasyncgenfunction(func)
        and not inspect.iscoroutinefunction(type(func).__call__)
    )


_CREATE_TASK_HINT = (
    "\nquart-flet runs sync handlers in worker threads, where asyncio.create_task() "
    "has no event loop: use page.run_task(coroutine_function, *args), or make the "
    "handler async."
)


def crash_report(error: BaseException) -> str:
    """What SESSION_CRASHED shows for ``error`` (being handled now)."""
    hint = ""
    if isinstance(error, RuntimeError) and "no running event loop" in str(error):
        hint = _CREATE_TASK_HINT
        logger.error(hint.strip())
    return f"{error}{hint}\n{traceback.format_exc()}"


async def call_user(func: AppCallable, session: Session, *args: Any) -> None:
    """Call ``func(*args)`` in whatever way it needs, pushing an update to the
    client after each ``yield`` of a generator and after it returns."""
    if inspect.isasyncgenfunction(func):
        async for _ in func(*args):
            await session.after_event(session.page)
    elif runs_in_thread(func):
        result = await run_sync(func)(*args)
        if inspect.isasyncgen(result):  # a sync generator, stepped in threads
            async for _ in result:
                await session.after_event(session.page)
    else:
        await func(*args)


async def run_before_main(before_main: AppCallable, session: Session) -> str:
    """Run ``before_main``; return an error text for the client, or ''."""
    _context_page.set(session.page)
    context.reset_auto_update()
    try:
        await call_user(before_main, session, session.page)
    except Exception as error:
        logger.error("Unhandled error in before_main()", exc_info=True)
        return crash_report(error)
    return ""


async def run_main(main: AppCallable, session: Session) -> None:
    """Run ``main(page)`` for a new session; a crash goes to that session only."""
    _context_page.set(session.page)
    context.reset_auto_update()
    try:
        await call_user(main, session, session.page)
        await session.after_event(session.page)
    except FletPageDisconnectedException:
        logger.debug("main() updated a disconnected page: %s", session.id)
    except Exception as error:
        logger.error("Unhandled error in main() of session %s", session.id, exc_info=True)
        session.error(crash_report(error))


def find_control(session: Session, control_id: int) -> BaseControl | None:
    """The control ``control_id`` of ``session``, also when flet has not indexed
    it yet: flet's Session.patch_control sends a patch before it indexes the
    controls the patch adds, so a fast client can answer a control that a
    worker thread is still adding. Then look for it in the page tree, and
    index it."""
    control = session.index.get(control_id)
    if control is not None:
        return control
    seen: set[int] = set()
    stack: list[Any] = [session.page]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, BaseControl):
            if node._i == control_id:
                session.index[control_id] = node
                return node
            stack.extend(
                getattr(node, f.name, None)
                for f in dataclasses.fields(node)
                if f.name != "_parent" and not f.metadata.get("skip", False)
            )
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
    return None


def _live_control(session: Session, control_id: int) -> BaseControl | None:
    control = find_control(session, control_id)
    try:
        return control if control is not None and control.page is session.page else None
    except RuntimeError:  # detached control: let flet find the live one
        return None


async def dispatch_event(session: Session, target: int, name: str, data: Any) -> None:
    """Deliver one control event: async handlers run here, on the loop; sync
    ones (plain or generator) on the thread pool."""
    control = _live_control(session, target)
    handler = getattr(control, f"on_{name}", None) if control is not None else None
    if control is None or handler is None:
        # unknown, stale or handler-less: flet's own path (it finds moved
        # controls and still runs the auto-update)
        await session.dispatch_event(target, name, data)
        return
    await _guarded_trigger(session, control, name, data, handler)


async def trigger_event(
    session: Session, control: BaseControl, event_name: str, event_data: Any, e: Any = None
) -> None:
    """``control._trigger_event`` done our way, for events flet fires itself
    (quart_flet.loopsafe routes the page's to here): same signature."""
    handler = getattr(control, f"on_{event_name}", None)
    if handler is not None:
        await _guarded_trigger(session, control, event_name, event_data, handler, e)


async def _guarded_trigger(
    session: Session,
    control: BaseControl,
    name: str,
    data: Any,
    handler: AppCallable,
    event: Any = None,
) -> None:
    _context_page.set(session.page)
    try:
        await _trigger(session, control, name, data, handler, event)
    except BadEventData as error:
        logger.info("closing a Flet connection: %s", error)
        abort = getattr(session.connection, "abort", None)
        if abort is not None:
            abort(1007, str(error)[:120])  # invalid payload, like a bad props update
    except FletPageDisconnectedException:
        logger.debug("on_%s updated a disconnected page: %s", name, session.id)
    except Exception as error:
        logger.error("Unhandled error in 'on_%s' handler", name, exc_info=True)
        session.error(crash_report(error))


# Mirrors BaseControl._trigger_event (flet 1.0) with two differences: sync
# handlers run on the pool, and the two lookups flet repeats on every event
# (the event type from the class annotations, ~40% of a click's CPU in flet
# 1.0.5, and the handler's parameter count) are computed once and cached.
_event_types: dict[tuple[type, str], Any] = {}
_param_counts: weakref.WeakKeyDictionary[Any, int | None] = weakref.WeakKeyDictionary()


def _event_type(control: BaseControl, field_name: str) -> Any:
    key = (type(control), field_name)
    try:
        return _event_types[key]
    except KeyError:
        event_type = _event_types[key] = get_event_field_type(control, field_name)
        return event_type


def _param_count(handler: Any) -> int | None:
    # a bound method's function is shared by every instance: key on it
    function = getattr(handler, "__func__", handler)
    try:
        return _param_counts[function]
    except (KeyError, TypeError):
        count: int | None = get_param_count(handler)
        with contextlib.suppress(TypeError):  # not weak-referenceable: no cache
            _param_counts[function] = count
        return count


async def _trigger(
    session: Session,
    control: BaseControl,
    name: str,
    data: Any,
    handler: AppCallable,
    event: Any = None,
) -> None:
    event_type = _event_type(control, f"on_{name}")
    if event_type is None:
        return
    if event is not None:
        pass  # built by flet (a LoginEvent, say)
    elif event_type == ControlEvent or not isinstance(data, dict):
        event = ControlEvent(control=control, name=name, data=data)
    else:
        try:
            event = from_dict(event_type, {"control": control, "name": name, **data})
        except Exception as error:  # the client's data, not the app's code
            raise BadEventData(f"bad data for on_{name} of control {control._i}: {error}") from None
    proceed = control.before_event(event)
    if proceed is not None and not proceed:
        return
    _context_page.set(control.page)
    context.reset_auto_update()
    args = () if _param_count(handler) == 0 else (event,)
    if inspect.iscoroutinefunction(handler):
        await handler(*args)
    elif inspect.isasyncgenfunction(handler):
        async for _ in handler(*args):
            await session.after_event(session.index.get(control._i))
            await asyncio.sleep(0)  # let the send loop flush this step's patch
    elif flets_own(handler):
        handler(*args)
    elif runs_in_thread(handler):
        state = sync_state(session)
        async with state.lock:
            with state.thread_running():
                result = await run_sync(handler)(*args)
            if inspect.isasyncgen(result):  # a sync generator, stepped in threads
                while True:
                    with state.thread_running():
                        try:
                            await anext(result)
                        except StopAsyncIteration:
                            break
                    await session.after_event(session.index.get(control._i))
    elif callable(handler):  # an object with an async __call__
        await handler(*args)
    await session.after_event(session.index.get(control._i))
