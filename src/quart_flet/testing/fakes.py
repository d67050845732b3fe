"""What the browser answers when the app calls a client-side method (the
clipboard, the URL launcher, shared preferences, a file picker): in-memory
fakes a test can read, preset or replace."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


def _cleared(prefs: dict[str, Any]) -> bool:
    prefs.clear()
    return True


@dataclass
class PickedFile:
    """A file the fake file picker hands the app when it calls ``pick_files``."""

    name: str
    content: bytes


@dataclass
class MethodCall:
    """One client-side method the app called: on which control, with what."""

    control_type: str
    control_id: int
    name: str
    args: dict[str, Any]


MethodHandler = Callable[[MethodCall], Any | Awaitable[Any]]


@dataclass
class ClientFakes:
    """The browser side of the app's method calls.

    Every call is recorded in ``calls``. Preset ``clipboard``,
    ``shared_preferences`` or ``files_to_pick``; read ``launched_urls``;
    or answer any method yourself::

        user.fakes.on("Battery", "get_battery_level", lambda call: 42)

    A handler may return a value, raise (the app's call then fails with
    that message, as when the browser reports an error) or be async.
    A method with no fake answers None.
    """

    clipboard: str | None = None
    shared_preferences: dict[str, Any] = field(default_factory=dict)
    launched_urls: list[str] = field(default_factory=list)
    files_to_pick: list[PickedFile] = field(default_factory=list)
    calls: list[MethodCall] = field(default_factory=list)
    _handlers: dict[tuple[str, str], MethodHandler] = field(default_factory=dict)

    def __post_init__(self) -> None:
        prefs = self.shared_preferences
        defaults: dict[tuple[str, str], MethodHandler] = {
            ("Clipboard", "set"): lambda c: setattr(self, "clipboard", c.args.get("data")),
            ("Clipboard", "get"): lambda c: self.clipboard,
            ("SharedPreferences", "set"): lambda c: (
                prefs.update({c.args["key"]: c.args["value"]}) or True
            ),
            ("SharedPreferences", "get"): lambda c: prefs.get(c.args["key"]),
            ("SharedPreferences", "contains_key"): lambda c: c.args["key"] in prefs,
            ("SharedPreferences", "remove"): lambda c: prefs.pop(c.args["key"], None) is not None,
            ("SharedPreferences", "get_keys"): lambda c: [
                k for k in prefs if k.startswith(c.args.get("key_prefix") or "")
            ],
            ("SharedPreferences", "clear"): lambda c: _cleared(prefs),
            ("UrlLauncher", "launch_url"): lambda c: self.launched_urls.append(c.args["url"]),
            ("UrlLauncher", "can_launch_url"): lambda c: True,
            ("UrlLauncher", "open_window"): lambda c: self.launched_urls.append(c.args["url"]),
        }
        for key, handler in defaults.items():
            self._handlers.setdefault(key, handler)

    def on(self, control_type: str, method: str, handler: MethodHandler) -> None:
        """Answer ``method`` of controls of ``control_type`` with ``handler``."""
        self._handlers[(control_type, method)] = handler

    def handler_for(self, call: MethodCall) -> MethodHandler | None:
        return self._handlers.get((call.control_type, call.name))

    async def answer(self, call: MethodCall) -> Any:
        """(result, error) the browser sends back for ``call``."""
        self.calls.append(call)
        handler = self.handler_for(call)
        if handler is None:
            return None
        result = handler(call)
        if inspect.isawaitable(result):
            result = await result
        return result
