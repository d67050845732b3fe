"""Where user code runs, and in what order: async callables as tasks on the
loop, sync ones (plain and generator) on the app's bounded thread pool
(quart_flet.runtime.threads), each event of a session in its turn.

Running sync handlers off the loop means re-doing flet's
``BaseControl._trigger_event`` (the event object, before_event, the
auto-update), so this relies on flet internals pinned in pyproject (flet
1.0.x), covered by tests/runtime/test_handlers.py and
tests/session/test_protocol.py.

Why and how: docs/discussion/handlers.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
import traceback
import weakref
from typing import Any

from flet.controls.base_control import BaseControl
from flet.controls.context import context
from flet.controls.control_event import ControlEvent, get_event_field_type
from flet.controls.exceptions import FletPageDisconnectedException
from flet.utils.from_dict import from_dict
from flet.utils.object_model import get_param_count

from quart_flet.compat.flet import CONTROL_PARENT_FIELD, id_of_control, set_context_page
from quart_flet.runtime import threads
from quart_flet.runtime.session import RuntimeSession, Turn
from quart_flet.stats import STATS
from quart_flet.types import AppCallable

logger = logging.getLogger("quart_flet")


class BadEventData(Exception):
    """An event whose data cannot make its event object: the client's fault."""


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


_RUN_TASK_HINT = (
    "\nasyncio.run() cannot run inside a Flet handler (flet's own integration "
    "refuses it too: its handlers run on the event loop): use "
    "page.run_task(coroutine_function, *args), or make the handler async."
)


def crash_report(error: BaseException) -> str:
    """What SESSION_CRASHED shows for ``error`` (being handled now)."""
    hint = ""
    if isinstance(error, RuntimeError) and "cannot be called from a running event loop" in str(
        error
    ):
        hint = _RUN_TASK_HINT
    return f"{error}{hint}\n{traceback.format_exc()}"


_warned: set[str] = set()


def _on_loop_instead(func: AppCallable) -> bool:
    """Whether the sync ``func`` must run on the loop (see
    threads.loop_bound_reason); warns once per callable."""
    reason = threads.loop_bound_reason(func)
    if reason is None:
        return False
    name = getattr(func, "__qualname__", repr(func))
    if name not in _warned:
        _warned.add(name)
        logger.warning(
            "running sync handler %s on the event loop, not in a thread: %s "
            "(while it runs, other users wait; make it async to avoid that)",
            name,
            reason,
        )
    return True


async def _run_sync(
    session: RuntimeSession,
    func: AppCallable,
    args: tuple[Any, ...],
    control_id: int | None = None,
    turn: asyncio.Future[None] | None = None,
) -> None:
    """Run the sync ``func(*args)`` (a plain function or a generator) in the
    pool, pushing an update of ``control_id`` after each ``yield``; end
    ``turn`` once it has returned or first yielded, as flet lets the next
    event start then. ``control_id`` None is ``main``/``before_main``: the
    page is updated, and the loop's own diffs are not held back meanwhile."""
    state = session.sync
    if _on_loop_instead(func):
        result = func(*args)
        if inspect.isgenerator(result):
            for _ in result:
                await session.after_event(_updated(session, control_id))
                _end(session, turn)
                await asyncio.sleep(0)
        return
    # main does not hold back the loop's own diffs (see runtime.session.SyncState.running)
    running = state.thread_running if control_id is not None else contextlib.nullcontext
    with running():
        result = await threads.run_sync(state.executor, state.loop, func, *args)
    if inspect.isgenerator(result):
        while True:
            with running():
                if not await threads.step_generator(state.executor, state.loop, result):
                    break
            await session.after_event(_updated(session, control_id))
            _end(session, turn)


def _updated(session: RuntimeSession, control_id: int | None) -> Any:
    return session.page if control_id is None else session.index.get(control_id)


async def call_user(func: AppCallable, session: RuntimeSession, *args: Any) -> None:
    """Call ``main`` or ``before_main`` in whatever way it needs, pushing an
    update to the client after each ``yield`` of a generator."""
    if inspect.isasyncgenfunction(func):
        async for _ in func(*args):
            await session.after_event(session.page)
    elif runs_in_thread(func):
        await _run_sync(session, func, args)
    else:
        await func(*args)


async def run_before_main(before_main: AppCallable, session: RuntimeSession) -> str:
    """Run ``before_main``; return an error text for the client, or ''."""
    set_context_page(session.page)
    context.reset_auto_update()
    try:
        await call_user(before_main, session, session.page)
    except Exception as error:
        logger.error("Unhandled error in before_main()", exc_info=True)
        return crash_report(error)
    return ""


async def run_main(main: AppCallable, session: RuntimeSession) -> None:
    """Run ``main(page)`` for a new session; a crash goes to that session only."""
    set_context_page(session.page)
    context.reset_auto_update()
    try:
        await call_user(main, session, session.page)
        await session.after_event(session.page)
    except FletPageDisconnectedException:
        logger.debug("main() updated a disconnected page: %s", session.id)
    except Exception as error:
        if session.connection is None:
            # its browser left while main ran (a socket that registers and
            # drops at once): flet's calls that need the connection fail with
            # any error; one line, not a traceback per such socket
            logger.info("main() of session %s stopped, its browser left: %r", session.id, error)
        else:
            logger.error("Unhandled error in main() of session %s", session.id, exc_info=True)
        session.error(crash_report(error))


async def run_session_start(hook: AppCallable, session: RuntimeSession) -> bool:
    """Run ``on_session_start(page)`` before main; a crash shows on the page
    and main does not run (False)."""
    set_context_page(session.page)
    try:
        await call_user(hook, session, session.page)
    except Exception as error:
        logger.error(
            "Unhandled error in on_session_start() of session %s", session.id, exc_info=True
        )
        session.error(crash_report(error))
        return False
    return True


async def run_session_end(hook: AppCallable, session: RuntimeSession, reason: Any) -> None:
    """Run ``on_session_end(page, reason)``; an error is logged (the page is gone)."""
    set_context_page(session.page)
    try:
        await call_user(hook, session, session.page, reason)
    except Exception:
        logger.error("Unhandled error in on_session_end() of session %s", session.id, exc_info=True)


async def run_drain(hook: AppCallable, session: RuntimeSession, seconds_left: float) -> None:
    """Run ``on_drain(page, seconds_left)``; an error is logged, the drain goes on."""
    set_context_page(session.page)
    try:
        await call_user(hook, session, session.page, seconds_left)
    except Exception:
        logger.error("Unhandled error in on_drain() of session %s", session.id, exc_info=True)


async def run_session_save(hook: AppCallable, session: RuntimeSession) -> Any:
    """What ``on_session_save(page)`` returns; None (logged) when it raises."""
    set_context_page(session.page)
    try:
        if runs_in_thread(hook):
            return await threads.run_sync(
                session.sync.executor, session.sync.loop, hook, session.page
            )
        result = hook(session.page)
        return await result if inspect.isawaitable(result) else result
    except Exception:
        logger.error(
            "Unhandled error in on_session_save() of session %s: nothing saved",
            session.id,
            exc_info=True,
        )
        return None


def find_control(session: RuntimeSession, control_id: int) -> BaseControl | None:
    """The control ``control_id`` of ``session``, also when flet has not indexed
    it yet: flet's Session.patch_control sends a patch before it indexes the
    controls the patch adds, so a fast client can answer a control that a
    worker thread is still adding. Then look for it in the page tree, and
    index it."""
    control: BaseControl | None = session.index.get(control_id)
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
            if id_of_control(node) == control_id:
                session.index[control_id] = node
                return node
            stack.extend(
                getattr(node, f.name, None)
                for f in dataclasses.fields(node)
                if f.name != CONTROL_PARENT_FIELD and not f.metadata.get("skip", False)
            )
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
    return None


def _live_control(session: RuntimeSession, control_id: int) -> BaseControl | None:
    control = find_control(session, control_id)
    try:
        return control if control is not None and control.page is session.page else None
    except RuntimeError:  # detached control: let flet find the live one
        return None


async def dispatch_event(
    session: RuntimeSession, target: int, name: str, data: Any, turn: Turn | None = None
) -> None:
    """Deliver one control event in its ``turn`` (from :meth:`SyncState.take_turn`):
    async handlers run here, on the loop; sync ones on the thread pool."""
    previous, mine = turn if turn is not None else (None, None)
    try:
        if previous is not None:
            await previous
        control = _live_control(session, target)
        handler = getattr(control, f"on_{name}", None) if control is not None else None
        if control is None or handler is None:
            # unknown, stale or handler-less: flet's own path (it finds moved
            # controls and still runs the auto-update)
            await session.dispatch_event(target, name, data)
            return
        await _guarded_trigger(session, control, name, data, handler, None, mine)
    finally:
        if mine is not None:
            session.sync.end_turn(mine)


async def apply_props(
    session: RuntimeSession, control_id: int, props: dict[str, Any], turn: Turn
) -> None:
    """A prop update that arrived while an earlier event still waits or runs:
    applied in its turn, so a handler sees what the client sent before its
    event and nothing a thread is reading changes under it."""
    previous, mine = turn
    try:
        if previous is not None:
            await previous
        if find_control(session, control_id) is not None:
            session.apply_patch(control_id, props)
    except Exception as error:
        session.abort_connection(1007, f"bad props for control {control_id}: {error}"[:120])
    finally:
        session.sync.end_turn(mine)


async def trigger_event(
    session: RuntimeSession, control: BaseControl, event_name: str, event_data: Any, e: Any = None
) -> None:
    """``control._trigger_event`` done our way, for events flet fires itself
    (quart_flet.runtime.loopsafe routes the page's to here): same signature."""
    handler = getattr(control, f"on_{event_name}", None)
    if handler is not None:
        await _guarded_trigger(session, control, event_name, event_data, handler, e)


async def _guarded_trigger(
    session: RuntimeSession,
    control: BaseControl,
    name: str,
    data: Any,
    handler: AppCallable,
    event: Any = None,
    turn: asyncio.Future[None] | None = None,
) -> None:
    set_context_page(session.page)
    try:
        await _trigger(session, control, name, data, handler, event, turn)
    except BadEventData as error:
        logger.info("closing a Flet connection: %s", error)
        # invalid payload, like a bad props update
        session.abort_connection(1007, str(error)[:120])
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
    session: RuntimeSession,
    control: BaseControl,
    name: str,
    data: Any,
    handler: AppCallable,
    event: Any = None,
    turn: asyncio.Future[None] | None = None,
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
            raise BadEventData(
                f"bad data for on_{name} of control {id_of_control(control)}: {error}"
            ) from None
    proceed = control.before_event(event)
    if proceed is not None and not proceed:
        return
    set_context_page(control.page)
    context.reset_auto_update()
    args = () if _param_count(handler) == 0 else (event,)
    started = time.perf_counter()
    is_sync = False  # for the latency histogram: sync handlers or async ones
    # ``turn`` ends where flet would start the next event's task: when an
    # async handler first waits, when a sync one returns or first yields
    if inspect.iscoroutinefunction(handler):
        running = handler(*args)
        _end(session, turn)
        await running
    elif inspect.isasyncgenfunction(handler):
        steps = handler(*args)
        _end(session, turn)
        async for _ in steps:
            await session.after_event(session.index.get(id_of_control(control)))
            await asyncio.sleep(0)  # let the send loop flush this step's patch
    elif flets_own(handler):
        is_sync = True
        handler(*args)
    elif runs_in_thread(handler):
        is_sync = True
        async with session.sync.lock:
            await _run_sync(session, handler, args, id_of_control(control), turn)
    elif callable(handler):  # an object with an async __call__
        running = handler(*args)
        _end(session, turn)
        await running
    STATS.handler_latency["sync" if is_sync else "async"].observe(time.perf_counter() - started)
    _end(session, turn)
    await session.after_event(session.index.get(id_of_control(control)))


def _end(session: RuntimeSession, turn: asyncio.Future[None] | None) -> None:
    if turn is not None:
        session.sync.end_turn(turn)
