"""flet's private names: its page context, data channel, and the page's and
controls' private attributes and methods. Imports flet only."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Awaitable, Callable
from typing import Any

from flet.controls.context import _context_page
from flet.controls.id_counter import ControlId
from flet.controls.page import Page
from flet.data_channel import _ProtocolMuxedDataChannel

__all__ = [
    "CONTROL_PARENT_FIELD",
    "MIRRORED",
    "PageHooks",
    "ProtocolMuxedDataChannel",
    "authorize_callback",
    "context_page",
    "id_of_control",
    "deliver_to_channel",
    "page_services",
    "recast",
    "set_context_page",
    "set_registry_lock",
    "set_trigger_event",
    "start_control_ids_at",
    "trigger_page_event",
]

#: the context variable behind ``ft.context.page``
context_page = _context_page

#: the data channel flet's Connection hands out (flet.data_channel)
ProtocolMuxedDataChannel = _ProtocolMuxedDataChannel

#: flet functions whose behaviour quart_flet re-does, by the sha256 of their
#: source (first 16 hex digits) in the release we follow: when one changes,
#: read the new source and update the copy named beside it
MIRRORED: dict[str, tuple[str, str]] = {
    # how a control event reaches its handler (Page inherits it): re-done in
    # quart_flet.runtime.dispatch._trigger, overridden by loopsafe.LoopSafePage
    "flet.controls.base_control.BaseControl._trigger_event": (
        "afe9ec009b324ff7",
        "quart_flet.runtime.dispatch._trigger",
    ),
}


def start_control_ids_at(first: int) -> None:
    """Number the process's next controls from ``first``: flet counts every
    control's id (``_i``) in one counter per process from 3, under a lock."""
    with ControlId._lock:
        ControlId._counter = itertools.count(first)


def set_context_page(page: Any) -> None:
    """``ft.context.page`` is ``page`` from now on in this context."""
    _context_page.set(page)  # flet's ContextVar is inferred as ContextVar[None]


def deliver_to_channel(channel: Any, payload: bytes) -> None:
    """Hand a data-channel frame's payload to flet's channel."""
    channel._deliver(payload)


def authorize_callback(page: Any, data: dict[str, Any]) -> Awaitable[None]:
    """The OAuth completion flet's own web server calls on the page."""
    result: Awaitable[None] = page._authorize_callback(data)
    return result


def trigger_page_event(page: Any, name: str, data: Any) -> Awaitable[None]:
    """Fire a page event (on_route_change...) as flet's server does."""
    result: Awaitable[None] = page._trigger_event(name, data)
    return result


def page_services(page: Any) -> Any:
    """The page's ServiceRegistry (flet.controls.page)."""
    return page._services


def set_registry_lock(services: Any, lock: Any) -> None:
    """Replace the lock a ServiceRegistry holds while it changes."""
    services._lock = lock


def set_trigger_event(control: Any, trigger: Callable[..., Awaitable[None]]) -> None:
    """Route the events flet fires on ``control`` itself (a dialog's dismiss)
    through ``trigger``."""
    control._trigger_event = trigger


#: a control's id (its ``_i`` field), as the client names it in events
id_of_control: Callable[[Any], int] = operator.attrgetter("_i")

#: the attribute of a control that points up to its parent (a weakref): a
#: walk down the tree skips it should a control make it a field
CONTROL_PARENT_FIELD = "_parent"


def recast(obj: Any, cls: type) -> None:
    """Make ``obj``, which flet created, an instance of ``cls``: a subclass of
    its class that adds methods only (no fields, no slots)."""
    assert type(obj) in cls.__mro__ and "__slots__" not in vars(cls), (obj, cls)
    obj.__class__ = cls


class PageHooks(Page):
    """flet's Page, with the private methods quart-flet overrides routed to
    public ones a subclass may override. Adds no fields."""

    async def _trigger_event(self, event_name: str, event_data: Any, e: Any = None) -> None:
        await self.route_event(event_name, event_data, e)

    async def route_event(self, event_name: str, event_data: Any, e: Any = None) -> None:
        """How flet fires an event on the page itself (on_login, on_close...)."""
        await super()._trigger_event(event_name, event_data, e)

    def _prepare_dialog(self, dialog: Any) -> None:
        super()._prepare_dialog(dialog)
        self.dialog_prepared(dialog)

    def dialog_prepared(self, dialog: Any) -> None:
        """Called once flet has readied ``dialog`` to be shown (its parent set,
        its dismiss wrapped)."""
