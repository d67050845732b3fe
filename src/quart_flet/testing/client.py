"""One simulated browser tab: a WebSocket through Quart's test client that
registers, keeps the control tree from the server's patches, answers the
app's method calls, and waits on what arrives (never on the clock)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from quart.testing import QuartClient
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError

from quart_flet.client import browserid
from quart_flet.compat.stdlib import await_chain, coroutine_code, coroutine_locals
from quart_flet.runtime import dispatch
from quart_flet.runtime.loopsafe import LoopSafeSession
from quart_flet.session.registry import EXTENSION_KEY, FletRegistry
from quart_flet.testing import _wire
from quart_flet.testing.fakes import ClientFakes, MethodCall
from quart_flet.testing.finders import Finder, describe_screen
from quart_flet.testing.tree import DIALOGS, Control, ControlTree

logger = logging.getLogger("quart_flet.testing")

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
# Turns of the event loop with nothing arriving and nothing queued that make
# the app "quiet": enough for flet's update scheduler to wake, run a mount
# effect, diff and send, and for the frame to reach this tab.
QUIET_TURNS = 10

_SLEEP = asyncio.sleep.__code__

# Coroutines that mean "the app is handling something" while a task is in them.
_HANDLING = frozenset(
    {
        dispatch.dispatch_event.__code__,
        dispatch.apply_props.__code__,
        dispatch.run_main.__code__,
        dispatch.run_session_start.__code__,
    }
)
DEFAULT_HEADERS = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) quart-flet-testing"}


def _coro_name(task: asyncio.Task[Any]) -> str:
    return str(getattr(task.get_coro(), "__qualname__", task.get_name()))


class SessionCrashed(AssertionError):
    """The app's session crashed; the message carries the app's traceback."""


class Disconnected(AssertionError):
    """The server closed the WebSocket, or refused the handshake."""


class FletClient:
    """The connection, the tree and the waits of one browser tab; the
    finders and actions are :class:`quart_flet.testing.FletUser`'s."""

    def __init__(
        self,
        client: QuartClient,
        ws_path: str,
        *,
        route: str = "/",
        headers: dict[str, str] | None = None,
        fakes: ClientFakes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        width: int = 1280,
        height: int = 720,
    ) -> None:
        self.client = client
        if client.cookie_jar is not None and browserid.COOKIE not in {
            c.name for c in client.cookie_jar
        }:
            # the id a browser gets with the page: reconnect() resumes its session
            client.set_cookie("localhost", browserid.COOKIE, browserid.new_id())
        self.ws_path = ws_path
        self.route = route
        self.headers = {**DEFAULT_HEADERS, **(headers or {})}
        self.headers.setdefault("Origin", "http://localhost")
        self.fakes = fakes if fakes is not None else ClientFakes()
        self.timeout = timeout
        self.size = (width, height)
        self.tree = ControlTree()
        self.session_id: str | None = None
        self.history: list[str] = [route]
        self.crash: str | None = None
        self.close_code: int | None = None
        self.register_error = ""
        self.open_drawers: set[int] = set()
        self.open_menus: set[int] = set()
        self.frames = 0  # server frames read so far
        self.focused: int | None = None
        self._crash_expected = False
        self.registered_once = False
        self._open_dialogs: set[int] = set()
        self._picked: dict[int, list[Any]] = {}
        self._ws_context: Any = None
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ---- connecting --------------------------------------------------------

    async def connect(self, session_id: str | None = None) -> None:
        """Open the WebSocket and register (resuming ``session_id`` if given)."""
        self.close_code = None
        self._ws_context = self.client.websocket(self.ws_path, headers=self.headers)
        self._ws = await self._ws_context.__aenter__()
        page = {
            "route": self.route,
            "web": True,
            "pwa": False,
            "debug": False,
            "wasm": False,
            "test": False,
            "multi_view": False,
            "pyodide": False,
            "platform_brightness": "light",
            "width": self.size[0],
            "height": self.size[1],
            "platform": "linux",
        }
        await self._send(_wire.REGISTER, {"session_id": session_id, "page_name": "", "page": page})
        self._reader = asyncio.create_task(self._read())
        await self.wait_until(
            lambda: self.session_id is not None and self.registered_once or None,
            self.timeout,
            lambda: "the server did not answer the register message",
        )
        if self.register_error:
            raise SessionCrashed(f"the app refused to start:\n{self.register_error}")

    async def reconnect(self) -> None:
        """Drop the connection and come back on the same session, as a
        browser tab does after a network blip."""
        await self._disconnect()
        self.registered_once = False
        await self.connect(self.session_id)

    async def close(self) -> None:
        """Leave (close the tab). Raises SessionCrashed if the app crashed and
        the test did not expect it."""
        await self._disconnect()
        if self.crash is not None and not self._crash_expected:
            raise SessionCrashed(f"the app crashed during the test:\n{self.crash}")

    async def _disconnect(self) -> None:
        for task in [*self._tasks, *([self._reader] if self._reader else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._reader] if self._reader else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._reader = None
        if self._ws_context is not None:
            context, self._ws_context = self._ws_context, None
            with contextlib.suppress(WebsocketDisconnectError, WebsocketResponseError):
                await context.__aexit__(None, None, None)

    # ---- the wire ------------------------------------------------------------

    async def _send(self, action: int, body: dict[str, Any]) -> None:
        if self._ws is None or self.close_code is not None:
            raise Disconnected(f"the WebSocket is closed (code {self.close_code})")
        await self._ws.send(_wire.encode(action, body))

    async def send_event(self, control: Control, name: str, data: Any = None) -> None:
        """Send a control event as the client does (no handler, no event)."""
        if control.handles(name):
            await self.send_event_always(control, name, data)

    async def send_event_always(self, control: Control, name: str, data: Any = None) -> None:
        await self._send(_wire.EVENT, {"target": control.id, "name": name, "data": data})

    async def update_props(self, control: Control, props: dict[str, Any]) -> None:
        """Set props locally, then tell the server (the client's ``updateProperties``)."""
        self.tree.apply_props(control.id, props)
        await self._send(_wire.PROPS, {"id": control.id, "props": props})
        self._notify()

    async def _read(self) -> None:
        assert self._ws is not None
        while True:
            try:
                frame = await self._ws.receive()
            except WebsocketDisconnectError as closed:
                self.close_code = closed.args[0] if closed.args else 1000
                self._notify()
                return
            except WebsocketResponseError as refused:
                response = refused.response
                body = await response.get_data(as_text=True)
                self.close_code = response.status_code
                self.register_error = self.register_error or (
                    f"the WebSocket handshake was refused with HTTP {response.status_code}: {body}"
                )
                self._notify()
                return
            self.frames += 1
            action, body = _wire.decode(frame)
            try:
                await self._on_message(action, body)
            finally:
                self._notify()

    async def _on_message(self, action: int, body: Any) -> None:
        if action == _wire.REGISTER:
            self.session_id = body.get("session_id")
            self.register_error = body.get("error") or ""
            patch = body.get("page_patch")
            if isinstance(patch, dict):
                self.tree.merge_page(patch)
            self.registered_once = True
        elif action == _wire.PATCH:
            self.tree.apply_patch(int(body["id"]), body["patch"])
            await self._dialogs_after_patch()
        elif action == _wire.INVOKE:
            task = asyncio.create_task(self._answer(body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif action == _wire.CRASHED:
            self.crash = str(body.get("message"))

    async def _dialogs_after_patch(self) -> None:
        """What the client does once a dialog opens or the app closes one:
        a SnackBar replaces the one showing; a closed dialog reports its
        dismissal (flet's ``show_dialog`` waits for it to let go of it)."""
        now_open = [c for c in self.tree.index.values() if c.type in DIALOGS and c.get("open")]
        new = [c for c in now_open if c.id not in self._open_dialogs]
        for snack in [c for c in new if c.type == "SnackBar"]:
            for old_id in list(self._open_dialogs):
                old = self.tree.index.get(old_id)
                if old is not None and old.type == "SnackBar" and old.id != snack.id:
                    await self.close_dialog(old)
        open_ids = {c.id for c in now_open}
        for closed_id in self._open_dialogs - open_ids:
            closed = self.tree.index.get(closed_id)
            self._open_dialogs.discard(closed_id)
            if closed is not None:
                await self.update_props(closed, {"open": False})
                await self.send_event(closed, "dismiss")
        self._open_dialogs |= open_ids

    async def close_dialog(self, dialog: Control) -> None:
        self._open_dialogs.discard(dialog.id)
        await self.update_props(dialog, {"open": False})
        await self.send_event(dialog, "dismiss")

    async def _answer(self, body: dict[str, Any]) -> None:
        control = self.tree.index.get(int(body["control_id"]))
        call = MethodCall(
            control.type if control is not None else "",
            int(body["control_id"]),
            str(body["name"]),
            body.get("args") or {},
        )
        result: Any = None
        error: str | None = None
        try:
            result = await self._client_method(call, control)
        except Exception as failure:  # the browser reports it to the app
            error = str(failure) or type(failure).__name__
        reply = {
            "control_id": call.control_id,
            "call_id": body["call_id"],
            "result": result,
            "error": error,
        }
        with contextlib.suppress(Disconnected):
            await self._send(_wire.INVOKE, reply)

    async def _client_method(self, call: MethodCall, control: Control | None) -> Any:
        if self.fakes.handler_for(call) is not None or control is None:
            return await self.fakes.answer(call)
        if call.control_type == "Page" and call.name == "push_route":
            self.fakes.calls.append(call)
            await self.change_route(str(call.args["route"]), push=True)
            return None
        if call.control_type == "FilePicker" and call.name == "pick_files":
            self.fakes.calls.append(call)
            with_data = bool(call.args.get("with_data"))
            files = [
                {
                    "id": i,
                    "name": f.name,
                    "size": len(f.content),
                    "path": None,
                    "bytes": f.content if with_data else None,
                }
                for i, f in enumerate(self.fakes.files_to_pick)
            ]
            self._picked[control.id] = list(self.fakes.files_to_pick)
            return files
        if call.control_type == "FilePicker" and call.name == "upload":
            self.fakes.calls.append(call)
            task = asyncio.create_task(self._upload(control, call.args.get("files") or []))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        if call.control_type == "View" and call.name.endswith("_drawer"):
            self.fakes.calls.append(call)
            drawer = control.props.get("end_drawer" if "end" in call.name else "drawer")
            if isinstance(drawer, Control):
                if call.name.startswith("show"):
                    self.open_drawers.add(drawer.id)
                else:
                    self.open_drawers.discard(drawer.id)
            return None
        return await self.fakes.answer(call)

    async def _upload(self, picker: Control, files: list[dict[str, Any]]) -> None:
        """The client's ``uploadFiles``: each picked file PUT to its URL, with
        progress events (0, then 1 or an error)."""
        picked = self._picked.get(picker.id, [])
        for spec in files:
            index = spec.get("id")
            file = picked[index] if isinstance(index, int) and 0 <= index < len(picked) else None
            file = file or next((f for f in picked if f.name == spec.get("name")), None)
            if file is None:
                continue
            progress = {"file_name": file.name, "progress": 0.0, "error": None}
            await self.send_event(picker, "upload", progress)
            method = str(spec.get("method") or "PUT")
            response = await self.client.open(
                str(spec["upload_url"]), method=method, data=file.content, headers=self.headers
            )
            if 200 <= response.status_code <= 204:
                progress = {"file_name": file.name, "progress": 1.0, "error": None}
            else:
                text = await response.get_data(as_text=True)
                error = f"Upload endpoint returned code {response.status_code}: {text}"
                progress = {"file_name": file.name, "progress": None, "error": error}
            await self.send_event(picker, "upload", progress)

    async def change_route(self, route: str, push: bool) -> None:
        """The browser's URL changed (``_sendRouteChangeEvent``)."""
        if route == self.route:
            return
        self.route = route
        if push:
            self.history.append(route)
        await self.update_props(self.tree.page, {"route": route})
        await self.send_event_always(self.tree.page, "route_change", {"route": route})

    # ---- waiting ---------------------------------------------------------------

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.get_running_loop().create_future()
        if not changed.done():
            changed.set_result(None)

    def _raise_if_broken(self) -> None:
        if self.crash is not None and not self._crash_expected:
            raise SessionCrashed(f"the app crashed:\n{self.crash}")
        if self.register_error and self.close_code is not None:
            raise Disconnected(self.register_error)
        if self.close_code is not None:
            raise Disconnected(f"the server closed the WebSocket with code {self.close_code}")

    async def wait_until(
        self, check: Callable[[], T | None], timeout: float | None, failure: Callable[[], str]
    ) -> T:
        """Wait for ``check()`` to return something other than None (or False),
        re-checking whenever a message arrives; on timeout, fail with ``failure()``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        while True:
            result = check()
            if result is not None and result is not False:
                return result
            self._raise_if_broken()
            remaining = deadline - loop.time()
            if remaining <= 0:
                first, newline, rest = failure().partition("\n")
                waited = self.timeout if timeout is None else timeout
                raise AssertionError(f"{first.rstrip('.')} (waited {waited} s){newline}{rest}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._changed), remaining)

    async def should_crash(self, containing: str = "", timeout: float | None = None) -> str:
        """Wait for the app to crash (a handler raised); return its report."""
        self._crash_expected = True
        await self.wait_until(
            lambda: self.crash is not None and containing in self.crash or None,
            timeout,
            lambda: f"the app did not crash with {containing!r} (crash: {self.crash!r})",
        )
        assert self.crash is not None
        return self.crash

    # ---- settling ---------------------------------------------------------------

    def _session(self) -> LoopSafeSession | None:
        """This tab's flet Session, from the app's registry (same process)."""
        registry = getattr(self.client, "app", None)
        registry = registry.extensions.get(EXTENSION_KEY) if registry is not None else None
        if not isinstance(registry, FletRegistry) or self.session_id is None:
            return None
        for entry in list(registry.sessions.values()):
            if entry.session.id == self.session_id:
                return entry.session
        return None

    def busy(self) -> list[str]:
        """What keeps the app from being idle now, in words (empty: idle):
        events of this tab waiting for or running their handler, handlers
        and ``main`` still running (not those waiting on a timer, such as a
        clock's ``await asyncio.sleep(1)``), this tab's answers to the app's
        method calls."""
        found = [f"answering {len(self._tasks)} client method call(s)"] if self._tasks else []
        session = self._session()
        if session is None:
            return found
        if session.sync.in_turn():
            found.append("an event is waiting for, or running, its handler")
        found += [f"{_coro_name(task)} is running" for task in self._handling(session)]
        return found

    def _waitables(self, session: LoopSafeSession | None) -> list[Any]:
        waits: list[Any] = list(self._tasks)
        if session is not None:
            tail = session.sync.tail
            if tail is not None and not tail.done():
                waits.append(tail)
            waits += self._handling(session)
        return waits

    @staticmethod
    def _handling(session: LoopSafeSession) -> list[asyncio.Task[Any]]:
        """Tasks in one of the app's handlers or main for ``session``, and
        not waiting on a timer."""
        found = []
        for task in asyncio.all_tasks():
            handling = False
            for coro in await_chain(task.get_coro()):
                code = coroutine_code(coro)
                if code in _HANDLING:
                    owner = coroutine_locals(coro).get("session")
                    handling = owner is None or owner is session
                elif code is _SLEEP and coroutine_locals(coro).get("delay", 0) > 0:
                    handling = False  # a timer: the app is idle until it fires
                    break
            if handling:
                found.append(task)
        return found

    async def settle(self, timeout: float | None = None) -> None:
        """Wait until the app is idle: no event of this tab waiting for or
        running its handler, no handler or ``main`` running (one waiting on
        a timer counts as idle), no update, effect or frame on its way
        (flet's update scheduler, a component's mount effect, the send
        queue). Actions, ``find`` and ``should_see``/``should_not_see``
        settle first; call it yourself after a custom wait. Fails after
        ``timeout`` naming what is still busy."""
        await self._settle(timeout, strict=True)

    async def _settle(self, timeout: float | None, strict: bool) -> None:
        loop = asyncio.get_running_loop()
        waited = self.timeout if timeout is None else timeout
        deadline = loop.time() + waited
        quiet = 0
        while quiet < QUIET_TURNS:
            self._raise_if_broken()
            waits = self._waitables(self._session())
            if waits:
                quiet = 0
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if not strict:
                        return  # before an action: the browser would queue it
                    raise AssertionError(
                        f"the app did not settle (waited {waited} s): " + "; ".join(self.busy())
                    )
                await asyncio.wait(waits, timeout=remaining)
                continue
            frames = self.frames
            await asyncio.sleep(0)
            quiet = quiet + 1 if self.frames == frames else 0

    # ---- the screen ------------------------------------------------------------

    def controls(self) -> list[Control]:
        """Every control the browser paints now."""
        return list(self.tree.on_screen(frozenset(self.open_drawers), frozenset(self.open_menus)))

    def summary(self) -> str:
        return describe_screen(self.controls())

    def texts(self) -> list[str]:
        """Every text on screen now, in paint order."""
        return [text for control in self.controls() for text in control.texts()]

    def _finder(self, what: Finder | str, exact: bool = True) -> Finder:
        """A Finder as given; a string finds its exact text (for actions) or,
        for ``should_see``/``should_not_see``, any text containing it."""
        if isinstance(what, Finder):
            return what
        if exact:
            return Finder(self, f"text {what!r}", lambda c: what in c.texts())
        return Finder(
            self,
            f"text containing {what!r}",
            lambda c: any(what in text for text in c.texts()),
        )

    async def should_see(self, what: Finder | str, timeout: float | None = None) -> Control:
        """Wait until ``what`` (a Finder, or a piece of any text) is on screen."""
        finder = self._finder(what, exact=False)

        def found() -> Control | None:
            if finder.index is not None:  # .first, .last, .at(i): that one
                return finder.resolve()
            matches = finder.all()
            return matches[0] if matches else None

        await self._settle(timeout, strict=False)
        return await self.wait_until(
            found, timeout, lambda: f"expected to see {finder.description}.\n{self.summary()}"
        )

    async def should_not_see(self, what: Finder | str, timeout: float | None = None) -> None:
        """Wait until ``what`` (a Finder, or a piece of any text) is off screen."""
        finder = self._finder(what, exact=False)
        await self._settle(timeout, strict=False)
        await self.wait_until(
            lambda: finder.resolve() is None if finder.index is not None else not finder.all(),
            timeout,
            lambda: f"expected not to see {finder.description}.\n{self.summary()}",
        )

    async def find(self, what: Finder | str, timeout: float | None = None) -> Control:
        """Wait until ``what`` designates exactly one control; return it."""
        finder = self._finder(what)
        await self._settle(timeout, strict=False)
        return await self.wait_until(
            finder.resolve,
            timeout,
            lambda: f"{finder.description} matches nothing.\n{self.summary()}",
        )
