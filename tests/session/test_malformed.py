"""Malformed input over the test websocket: each kind is either ignored by rule
(the connection keeps working) or closes that connection with the close code
quart_flet.session.connection names. Either way the next session on the same app works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest
from conftest import (
    CONTROL_EVENT,
    INVOKE_METHOD,
    PATCH_CONTROL,
    REGISTER_CLIENT,
    SESSION_CRASHED,
    UPDATE_CONTROL_PROPS,
    FletTestClient,
    encode,
    find_controls,
    register_frame,
    start_counter,
)
from quart import Quart
from quart.testing.connections import WebsocketDisconnectError

from examples.counter import main
from quart_flet import flet_blueprint
from quart_flet.session.registry import FletRegistry

PROTOCOL_ERROR, UNSUPPORTED_DATA, INVALID_PAYLOAD, MESSAGE_TOO_BIG = 1002, 1003, 1007, 1009
MAX_MESSAGE_SIZE = 4096


@pytest.fixture(name="app")
def _app() -> Quart:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main, max_message_size=MAX_MESSAGE_SIZE))
    return app


@asynccontextmanager
async def connect(test_app: Any) -> AsyncIterator[FletTestClient]:
    async with test_app.test_client().websocket("/ws", headers={"User-Agent": "t"}) as ws:
        yield FletTestClient(ws)


async def expect_close(client: FletTestClient, timeout: float = 5) -> int:
    """Read until the server closes; return its close code. A socket left open
    fails here with a timeout instead of passing."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(client.ws.receive(), max(remaining, 0.001))
        except WebsocketDisconnectError as closed:
            return int(closed.args[0])


async def render_and_click(client: FletTestClient) -> None:
    """A full journey: register, first render, a click seen back."""
    await client.click(await start_counter(client))
    await client.patch_with("1")


def raw(value: Any) -> bytes:
    return b"\x00" + msgpack.packb(value)


EVENT = encode(CONTROL_EVENT, {"target": 1, "name": "click", "data": None})

# (name, frames sent after an optional register, expected close code)
CLOSING: list[tuple[str, bool, list[bytes | str], int]] = [
    ("unknown type byte", False, [b"\x02{}"], UNSUPPORTED_DATA),
    ("type byte 0xff", False, [b"\xff"], UNSUPPORTED_DATA),
    ("text frame", False, ["hello"], UNSUPPORTED_DATA),
    ("text frame after register", True, ['[3, {"target": 1}]'], UNSUPPORTED_DATA),
    ("garbage msgpack", False, [b"\x00\xc1\xc1"], INVALID_PAYLOAD),
    ("truncated msgpack", False, [b"\x00\x92\x01"], INVALID_PAYLOAD),
    ("msgpack with trailing bytes", False, [raw([1, {}]) + b"\x00"], INVALID_PAYLOAD),
    ("type byte only", False, [b"\x00"], INVALID_PAYLOAD),
    ("data-channel frame without its header", False, [b"\x01\x00\x00"], INVALID_PAYLOAD),
    ("not a list", False, [raw({"action": 1})], PROTOCOL_ERROR),
    ("a scalar", False, [raw(7)], PROTOCOL_ERROR),
    ("list of 3", False, [raw([1, {}, {}])], PROTOCOL_ERROR),
    ("list of 1", False, [raw([1])], PROTOCOL_ERROR),
    ("body not a dict", False, [raw([1, [None]])], PROTOCOL_ERROR),
    ("unknown action", False, [encode(99, {})], PROTOCOL_ERROR),
    ("action is a string", False, [encode("1", {})], PROTOCOL_ERROR),  # type: ignore[arg-type]
    ("server-only action", False, [encode(PATCH_CONTROL, {})], PROTOCOL_ERROR),
    ("event before register", False, [EVENT], PROTOCOL_ERROR),
    ("props before register", False, [encode(UPDATE_CONTROL_PROPS, {"id": 1, "props": {}})], 1002),
    ("method result before register", False, [encode(INVOKE_METHOD, {})], PROTOCOL_ERROR),
    ("register twice", True, [register_frame()], PROTOCOL_ERROR),
    ("session_id not a string", False, [encode(REGISTER_CLIENT, {"session_id": 5})], 1002),
    ("page not a dict", False, [encode(REGISTER_CLIENT, {"page": [1]})], PROTOCOL_ERROR),
    (
        "target not an int",
        True,
        [encode(CONTROL_EVENT, {"target": "1", "name": "click"})],
        PROTOCOL_ERROR,
    ),
    (
        "target a bool",
        True,
        [encode(CONTROL_EVENT, {"target": True, "name": "click"})],
        PROTOCOL_ERROR,
    ),
    ("event without a name", True, [encode(CONTROL_EVENT, {"target": 1})], PROTOCOL_ERROR),
    ("props not a dict", True, [encode(UPDATE_CONTROL_PROPS, {"id": 1, "props": 3})], 1002),
    ("call_id not a string", True, [encode(INVOKE_METHOD, {"control_id": 1, "call_id": 2})], 1002),
    ("oversized frame", False, [b"\x00" + b"\x90" * MAX_MESSAGE_SIZE], MESSAGE_TOO_BIG),
]


@pytest.mark.parametrize(
    ("registered", "frames", "code"),
    [case[1:] for case in CLOSING],
    ids=[case[0] for case in CLOSING],
)
async def test_bad_input_closes_with_its_code(
    app: Quart, registered: bool, frames: list[bytes | str], code: int
) -> None:
    registry: FletRegistry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        async with connect(test_app) as client:
            if registered:
                await render_and_click(client)
            for frame in frames:
                await client.ws.send(frame)
            assert await expect_close(client) == code
        assert not registry.connections  # the handler really finished
        async with connect(test_app) as next_client:
            await render_and_click(next_client)


async def send_as_hypercorn(client: FletTestClient, frame: bytes) -> None:
    """Send a binary frame as Hypercorn delivers it: both ASGI keys present.
    Quart's test client leaves "text" out, which Quart cannot read for b""."""
    await client.ws._send_queue.put({"type": "websocket.receive", "bytes": frame, "text": None})


# frames ignored by rule: the same connection then registers and works
IGNORED: list[tuple[str, bytes]] = [
    # Quart hands an empty binary frame to receive() as None (DESIGN pitfall)
    ("empty frame", b""),
    ("data-channel frame before register", b"\x01" + (3).to_bytes(4, "little") + b"x"),
    ("data-channel header only", b"\x01\x00\x00\x00\x00"),
]


@pytest.mark.parametrize("frame", [case[1] for case in IGNORED], ids=[c[0] for c in IGNORED])
async def test_ignored_input_leaves_the_connection_working(app: Quart, frame: bytes) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        await send_as_hypercorn(client, frame)
        await send_as_hypercorn(client, frame)
        await render_and_click(client)
        await send_as_hypercorn(client, frame)
        (fab,) = find_controls(client.messages, _c="FloatingActionButton")
        await client.click(fab["_i"])
        await client.patch_with("2")


async def test_bad_input_on_one_connection_leaves_another_session_alone(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as bystander:
        await render_and_click(bystander)
        (fab,) = find_controls(bystander.messages, _c="FloatingActionButton")
        for frame in (b"\x07", b"\x00\xc1", raw("x"), EVENT):
            async with connect(test_app) as attacker:
                await attacker.ws.send(frame)
                assert await expect_close(attacker) in (1002, 1003, 1007)
        await bystander.click(fab["_i"])
        await bystander.patch_with("2")


@pytest.mark.parametrize(
    "page",
    [
        {"views": [5]},
        {"views": 5},
        {"overlay": []},
        {"platform": 7},
        {"theme_mode": "nope"},
        # flet's patch sets any "_" attribute: its private state (1011 and a
        # session kept for an hour, before)
        {"_frozen": True},
        {"_values": None},
        {"_parent": 5},
        {"_i": "x"},
        {"__dict__": {}},
        {"media": {"_secret": 1}},
    ],
)
async def test_register_with_a_bad_page_closes_and_keeps_no_session(
    app: Quart, page: dict[str, Any]
) -> None:
    registry: FletRegistry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        async with connect(test_app) as client:
            await client.ws.send(encode(REGISTER_CLIENT, {"session_id": None, "page": page}))
            assert await expect_close(client) == INVALID_PAYLOAD
        # a session whose main never ran is not kept for session_timeout_seconds
        assert not registry.sessions
        assert not registry.connections
        async with connect(test_app) as next_client:
            await render_and_click(next_client)
        assert len(registry.sessions) == 1


@pytest.mark.parametrize("data", [{"view_id": "x"}, {1: 2}], ids=["missing field", "not a keyword"])
async def test_event_data_that_cannot_make_its_event_closes_with_1007(
    data: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A typed event (ViewPopEvent) built from the client's data: when that
    fails it is the client's fault (1007), not an app crash with a traceback
    sent to the browser."""
    from examples.routing import main as routing_main

    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(routing_main))
    async with app.test_app() as test_app, connect(test_app) as client:
        await client.register()
        await client.patch_with("Flet app")  # main has set on_view_pop
        await client.ws.send(encode(CONTROL_EVENT, {"target": 1, "name": "view_pop", "data": data}))
        assert await expect_close(client) == INVALID_PAYLOAD
    assert not [m for m in client.messages if m[0] == SESSION_CRASHED]
    assert "Unhandled error" not in caplog.text


async def test_a_browser_that_leaves_before_main_ends_logs_one_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A socket that registers and drops at once (junk, a closed tab): main
    runs on, and flet's calls that need the connection (get_upload_url)
    raise; that is the browser leaving, not a bug in the app."""
    import flet as ft

    left = asyncio.Event()

    async def leaves(page: ft.Page) -> None:
        page.add(ft.Text("started"))
        await left.wait()
        page.add(ft.Text(page.get_upload_url("f.bin", 60)))

    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(leaves, upload_dir="/tmp", secret_key="k" * 32))
    async with app.test_app() as test_app:
        async with connect(test_app) as client:
            await client.register()
            await client.receive_until(lambda m: m[0] == PATCH_CONTROL and "started" in str(m))
        registry: FletRegistry = app.extensions["quart_flet"]
        (entry,) = registry.sessions.values()
        while entry.session.connection is not None:  # bounded by the test's timeout
            await asyncio.sleep(0.01)
        with caplog.at_level("INFO", logger="quart_flet"):
            left.set()
            deadline = asyncio.get_running_loop().time() + 10
            while not any("main() of session" in r.getMessage() for r in caplog.records):
                assert asyncio.get_running_loop().time() < deadline, "main() never ended"
                await asyncio.sleep(0.01)
    errors = [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
    assert any("its browser left" in r.getMessage() for r in caplog.records)
