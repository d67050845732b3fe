"""quart_flet.compat holds every private flet, Hypercorn, Quart and asyncio
name the package touches. These tests fail when an upgrade changes one: a
name gone, or a flet function we re-do whose source changed. That no other
module touches one is tests/test_private_names.py's job."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import importlib
import inspect
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import flet as ft
import pytest
from flet.controls.base_control import BaseControl
from flet.controls.page import Page, ServiceRegistry
from hypercorn.protocol.ws_stream import WSStream
from quart.asgi import ASGIHTTPConnection, ASGIWebsocketConnection
from quart.wrappers import Websocket
from quart.wrappers.request import Body

import quart_flet
from quart_flet.compat import flet as compat_flet
from quart_flet.compat import hypercorn as compat_hypercorn
from quart_flet.compat import quart as compat_quart
from quart_flet.compat import stdlib as compat_stdlib

PACKAGE = Path(quart_flet.__file__).parent
MIRRORED = {**compat_flet.MIRRORED, **compat_quart.MIRRORED}


def _resolve(qualified: str) -> object:
    parts = qualified.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise LookupError(qualified)


@pytest.mark.parametrize("qualified", sorted(MIRRORED))
def test_the_flet_functions_we_re_do_have_not_changed(qualified: str) -> None:
    digest, ours = MIRRORED[qualified]
    source = inspect.getsource(_resolve(qualified))  # type: ignore[arg-type]
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, (
        f"flet changed {qualified}: compare it with {ours} and update both"
    )


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_flet_names() -> None:
    assert "_context_page" in vars(importlib.import_module("flet.controls.context"))
    assert hasattr(compat_flet.ProtocolMuxedDataChannel, "_deliver")
    assert inspect.iscoroutinefunction(Page._authorize_callback)
    assert inspect.iscoroutinefunction(BaseControl._trigger_event)
    assert "_services" in {field.name for field in dataclasses.fields(Page)}
    assert "self._lock" in inspect.getsource(ServiceRegistry)
    # a control's id, and the field up to its parent (quart_flet.runtime.dispatch)
    assert "_i" in {field.name for field in dataclasses.fields(BaseControl)}
    parent = inspect.getsource(BaseControl.parent.fget)  # type: ignore[attr-defined]
    assert f'getattr(self, "{compat_flet.CONTROL_PARENT_FIELD}", None)' in parent
    text = ft.Text("x")
    assert compat_flet.id_of_control(text) == text._i != 0
    # one counter of control ids per process (quart_flet.session.registry)
    counter = importlib.import_module("flet.controls.id_counter").ControlId
    assert {"_counter", "_lock"} <= set(vars(counter))
    compat_flet.start_control_ids_at(text._i + 1000)
    assert ft.Text("y")._i == text._i + 1000
    # PageHooks overrides flet's private methods with their parameters, and
    # its public ones are new names
    hooks = compat_flet.PageHooks
    for name in ("_trigger_event", "_prepare_dialog"):
        assert name in vars(hooks) and callable(getattr(Page, name)), name
        assert _parameters(getattr(hooks, name)) == _parameters(getattr(Page, name)), name
    assert _parameters(hooks.route_event) == _parameters(Page._trigger_event)
    assert not hasattr(Page, "route_event") and not hasattr(Page, "dialog_prepared")
    assert "_wrap_dialog_on_dismiss(dialog)" in inspect.getsource(Page._prepare_dialog)
    assert "._trigger_event(" in inspect.getsource(Page._wrap_dialog_on_dismiss)
    # recast: the page and its registry get a class that adds no fields
    from quart_flet.runtime.loopsafe import LoopSafePage, LoopSafeServiceRegistry

    assert dataclasses.fields(LoopSafePage) == dataclasses.fields(Page)
    assert "__slots__" not in vars(Page) and "__slots__" not in vars(ServiceRegistry)
    assert LoopSafeServiceRegistry.__init__ is ServiceRegistry.__init__


def test_quart_names() -> None:
    assert "self._receive" in inspect.getsource(Websocket.__init__)
    assert "self._send" in inspect.getsource(Websocket.__init__)
    assert "self.queue: asyncio.Queue = " in inspect.getsource(ASGIWebsocketConnection.__init__)
    assert "self.queue.put(" in inspect.getsource(ASGIWebsocketConnection.handle_messages)
    scope_source = inspect.getsource(ASGIWebsocketConnection._create_websocket_from_scope)
    assert "self.queue.get," in scope_source
    assert "self._data = bytearray()" in inspect.getsource(Body.__init__)
    # HTTPConnectionHooks (quart_flet.http.uploadbody's base): the methods it
    # overrides and how Quart's __call__ runs them (two tasks), sends the
    # response, ends it
    call = inspect.getsource(ASGIHTTPConnection.__call__)
    assert "request = self._create_request_from_scope(send)" in call
    assert "asyncio.ensure_future(self.handle_messages(request, receive))" in call
    assert "asyncio.ensure_future(self.handle_request(request, send))" in call
    assert "self._send_response(send, response)" in inspect.getsource(
        ASGIHTTPConnection.handle_request
    )
    assert '"more_body": False' in inspect.getsource(ASGIHTTPConnection._send_response)
    hooks = compat_quart.HTTPConnectionHooks
    overridden = {name for name in vars(hooks) if name.startswith("_") and name[1] != "_"}
    assert overridden == set(compat_quart.QUART_HTTP_CONNECTION_HOOKS)
    for name in overridden:
        assert _parameters(getattr(hooks, name)) == _parameters(getattr(ASGIHTTPConnection, name))
    assert _parameters(hooks.request_from_scope) == ["self", "send"]
    assert _parameters(hooks.send_response) == ["self", "send", "response"]
    assert not hasattr(ASGIHTTPConnection, "request_from_scope")
    assert not hasattr(ASGIHTTPConnection, "send_response")


def test_hypercorn_names() -> None:
    hypercorn_run = importlib.import_module("hypercorn.asyncio.run")
    worker_serve = getattr(hypercorn_run, compat_hypercorn.HYPERCORN_WORKER_SERVE)
    assert inspect.iscoroutinefunction(worker_serve)
    source = inspect.getsource(worker_serve)
    assert f"{compat_hypercorn.HYPERCORN_WORKER_CONTEXT} = WorkerContext(" in source
    assert f"await {compat_hypercorn.HYPERCORN_WORKER_CONTEXT}.terminated.set()" in source
    config = inspect.signature(worker_serve).parameters[compat_hypercorn.HYPERCORN_WORKER_CONFIG]
    assert config.annotation == "Config"
    assert f"{compat_hypercorn.HYPERCORN_WORKER_CONFIG}.graceful_timeout)" in source
    lifespan_task = compat_hypercorn.HYPERCORN_WORKER_LIFESPAN_TASK
    assert f"{lifespan_task} = loop.create_task(lifespan.handle_lifespan())" in source
    from hypercorn.asyncio.udp_server import UDPServer

    cls, method = compat_hypercorn.HYPERCORN_UDP_RUN.split(".")
    assert cls == UDPServer.__name__ and inspect.iscoroutinefunction(getattr(UDPServer, method))
    udp_source = inspect.getsource(UDPServer)
    assert "self.context = " in udp_source and "self.transport = " in udp_source
    assert "def datagram_received(" in udp_source
    cls, method = compat_hypercorn.HYPERCORN_SEND_PINGS.split(".")
    assert cls == WSStream.__name__ and inspect.iscoroutinefunction(getattr(WSStream, method))
    assert callable(vars(importlib.import_module("hypercorn.__main__"))["_load_config"])
    from hypercorn.protocol.h2 import H2Protocol

    cls, method = compat_hypercorn.HYPERCORN_H2_HANDLE_EVENTS.split(".")
    handle_events = getattr(H2Protocol, method)
    handle_events = getattr(handle_events, "__wrapped__", handle_events)  # h2streams.install
    assert cls == H2Protocol.__name__ and inspect.iscoroutinefunction(handle_events)
    assert _parameters(handle_events) == ["self", "events"]
    h2_source = inspect.getsource(H2Protocol)
    assert "self.streams: dict[int, " in h2_source
    assert "self.stream_buffers: dict[int, StreamBuffer] = {}" in h2_source
    assert "async def _flush(self) -> None:" in h2_source


def test_stdlib_names() -> None:
    assert compat_stdlib.get_running_loop_or_none() is None  # no loop runs in this test
    assert compat_stdlib.set_running_loop is asyncio.events._set_running_loop
    with ThreadPoolExecutor(3) as executor:
        assert compat_stdlib.executor_max_workers(executor) == 3
    subparsers = argparse.ArgumentParser().add_subparsers()
    assert type(subparsers) is compat_stdlib.SubParsersAction

    async def inner(delay: float) -> None:
        await asyncio.sleep(delay)

    async def outer() -> None:
        await inner(60)

    async def look() -> None:
        task = asyncio.create_task(outer())
        await asyncio.sleep(0)
        chain = list(compat_stdlib.await_chain(task.get_coro()))
        codes = [compat_stdlib.coroutine_code(coro) for coro in chain]
        assert codes[:3] == [outer.__code__, inner.__code__, asyncio.sleep.__code__]
        assert compat_stdlib.coroutine_locals(chain[1]) == {"delay": 60}
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert compat_stdlib.coroutine_locals(chain[0]) == {}

    asyncio.run(look())
