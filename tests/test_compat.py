"""quart_flet.compat holds every private flet, Hypercorn, Quart and asyncio
name the package touches. These tests fail when an upgrade changes one: a
name gone, or a flet function we re-do whose source changed."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import hashlib
import importlib
import inspect
from pathlib import Path

import pytest
from flet.controls.base_control import BaseControl
from flet.controls.page import Page, ServiceRegistry
from hypercorn.protocol.ws_stream import WSStream
from quart.asgi import ASGIHTTPConnection, ASGIWebsocketConnection
from quart.wrappers import Websocket

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


def test_the_private_names_we_use_still_exist() -> None:
    assert "_context_page" in vars(importlib.import_module("flet.controls.context"))
    assert hasattr(compat_flet.ProtocolMuxedDataChannel, "_deliver")
    assert inspect.iscoroutinefunction(Page._authorize_callback)
    assert inspect.iscoroutinefunction(BaseControl._trigger_event)
    assert "_services" in {field.name for field in dataclasses.fields(Page)}
    assert "self._lock" in inspect.getsource(ServiceRegistry)
    assert "self._receive" in inspect.getsource(Websocket.__init__)
    assert "self._send" in inspect.getsource(Websocket.__init__)
    assert "self.queue: asyncio.Queue = " in inspect.getsource(ASGIWebsocketConnection.__init__)
    assert "self.queue.put(" in inspect.getsource(ASGIWebsocketConnection.handle_messages)
    scope_source = inspect.getsource(ASGIWebsocketConnection._create_websocket_from_scope)
    assert "self.queue.get," in scope_source
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
    cls, method = compat_hypercorn.HYPERCORN_SEND_PINGS.split(".")
    assert cls == WSStream.__name__ and inspect.iscoroutinefunction(getattr(WSStream, method))
    assert callable(vars(importlib.import_module("hypercorn.__main__"))["_load_config"])
    from hypercorn.protocol.h2 import H2Protocol

    cls, method = compat_hypercorn.HYPERCORN_H2_HANDLE_EVENTS.split(".")
    handle_events = getattr(H2Protocol, method)
    handle_events = getattr(handle_events, "__wrapped__", handle_events)  # h2streams.install
    assert cls == H2Protocol.__name__ and inspect.iscoroutinefunction(handle_events)
    assert list(inspect.signature(handle_events).parameters) == ["self", "events"]
    h2_source = inspect.getsource(H2Protocol)
    assert "self.streams: dict[int, " in h2_source
    assert "self.stream_buffers: dict[int, StreamBuffer] = {}" in h2_source
    assert "async def _flush(self) -> None:" in h2_source
    # quart_flet.http.uploadbody's connection: the methods it overrides and how
    # Quart's __call__ runs them (two tasks), sends the response, ends it
    call = inspect.getsource(ASGIHTTPConnection.__call__)
    assert "request = self._create_request_from_scope(send)" in call
    assert "asyncio.ensure_future(self.handle_messages(request, receive))" in call
    assert "asyncio.ensure_future(self.handle_request(request, send))" in call
    assert "self._send_response(send, response)" in inspect.getsource(
        ASGIHTTPConnection.handle_request
    )
    assert '"more_body": False' in inspect.getsource(ASGIHTTPConnection._send_response)
    from quart_flet.http.uploadbody import StreamingUploadConnection

    overridden = {
        name
        for name in vars(StreamingUploadConnection)
        if name.startswith("_") and not name.startswith("__") and name in vars(ASGIHTTPConnection)
    }
    assert overridden == set(compat_quart.QUART_HTTP_CONNECTION_HOOKS)
    assert compat_stdlib.get_running_loop_or_none() is None  # no loop runs in this test
    assert compat_stdlib.set_running_loop is asyncio.events._set_running_loop


def _private_uses(path: Path) -> list[str]:
    """Private names of flet, Hypercorn or Quart that ``path`` imports or
    reads as an attribute of something it imported from them."""
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
            "flet",
            "flet_web",
            "hypercorn",
            "quart",
        ):
            found += [
                f"{node.module}.{alias.name}" for alias in node.names if alias.name.startswith("_")
            ]
        elif isinstance(node, ast.Attribute) and node.attr in {
            "_context_page",
            "_deliver",
            "_authorize_callback",
            "_services",
            "_get_current_object",
            "_set_running_loop",
            "_get_running_loop",
        }:
            found.append(node.attr)
    return found


def test_no_other_module_touches_those_names() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "compat" not in path.relative_to(PACKAGE).parts:
            assert not _private_uses(path), (path.name, _private_uses(path))
