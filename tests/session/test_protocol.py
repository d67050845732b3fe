"""The Flet 1.0 protocol over Quart's test websocket, against real flet Sessions:
register, first render, events, prop updates, method calls, data channels,
resume and its refusals, crashes and isolation between sessions."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import flet as ft
import pytest
from conftest import (
    INVOKE_METHOD,
    PATCH_CONTROL,
    REGISTER_CLIENT,
    SESSION_CRASHED,
    UPDATE_CONTROL_PROPS,
    FletTestClient,
    browser,
    contains,
    encode,
    find_controls,
)
from quart import Quart

from quart_flet import flet_blueprint
from quart_flet.session.registry import FletRegistry

UA = "Mozilla/5.0 (X11; Linux x86_64) quart-flet-tests/1"
OTHER_UA = "Mozilla/5.0 (Macintosh) another-browser/2"

main_calls: list[str] = []


async def before_main(page: ft.Page) -> None:
    if page.route == "/before-fails":
        raise RuntimeError("before_main refused this page")
    page.title = "before_main ran"


async def main(page: ft.Page) -> None:
    main_calls.append(page.session.id)
    if page.route == "/main-crashes":
        raise RuntimeError("main blew up")
    counter = ft.Text("0", key="counter")
    out = ft.Text("", key="out")
    field = ft.TextField(key="field")

    async def increment(e: ft.Event[ft.FloatingActionButton]) -> None:
        counter.value = str(int(counter.value or "0") + 1)
        counter.update()

    async def read_field(e: ft.Event[ft.Button]) -> None:
        out.value = f"read:{field.value}"
        out.update()

    async def invoke(e: ft.Event[ft.Button]) -> None:
        # waits for a frame the receive loop must still read
        result = await field._invoke_method("probe", {"x": 1}, timeout=10)
        out.value = f"invoked:{result}"
        out.update()

    async def boom(e: ft.Event[ft.Button]) -> None:
        raise RuntimeError("handler blew up")

    async def open_channel(e: ft.Event[ft.Button]) -> None:
        channel = e.control.get_data_channel(int(e.data))
        channel.on_bytes(lambda data: channel.send(data[::-1]))
        out.value = f"channel:{e.data}"
        out.update()

    page.floating_action_button = ft.FloatingActionButton(icon=ft.Icons.ADD, on_click=increment)
    page.add(
        counter,
        out,
        field,
        ft.Button("read", key="read", on_click=read_field),
        ft.Button("invoke", key="invoke", on_click=invoke),
        ft.Button("boom", key="boom", on_click=boom),
        ft.Button("channel", key="channel", on_click=open_channel),
    )


def make_app(**opts: Any) -> Quart:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main, before_main, **opts))
    return app


@pytest.fixture(name="app")
def _app() -> Quart:
    return make_app()


def registry_of(app: Quart) -> FletRegistry:
    registry = app.extensions["quart_flet"]
    assert isinstance(registry, FletRegistry)
    return registry


#: the one browser of each test (connect()'s default), by its test app
_BROWSERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def connect(
    test_app: Any, user_agent: str = UA, client: Any = None
) -> AsyncIterator[FletTestClient]:
    """A WebSocket of the test's one browser, or of ``client``."""
    if client is None:
        client = _BROWSERS.get(test_app)
        if client is None:
            client = _BROWSERS[test_app] = browser(test_app)
    async with client.websocket("/ws", headers={"User-Agent": user_agent}) as ws:
        yield FletTestClient(ws)


def control_id(tree: Any, key: str) -> int:
    (control,) = find_controls(tree, key=key)
    return int(control["_i"])


def fab_id(tree: Any) -> int:
    (fab,) = find_controls(tree, _c="FloatingActionButton")
    return int(fab["_i"])


async def first_render(client: FletTestClient) -> Any:
    """The PATCH_CONTROL that carries main's controls."""
    return await client.receive_until(
        lambda m: m[0] == PATCH_CONTROL and find_controls(m[1], key="counter")
    )


async def start(client: FletTestClient, **kwargs: Any) -> Any:
    """Register a new session; return the first render."""
    reply = await client.register(**kwargs)
    assert reply[1]["error"] == ""
    return await first_render(client)


async def click_and_see(client: FletTestClient, target: int, value: str) -> None:
    await client.click(target)
    await client.patch_with(value)


async def test_register_then_first_render(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        reply = await client.register()
        body = reply[1]
        assert body["error"] == ""
        assert isinstance(body["session_id"], str) and len(body["session_id"]) >= 16
        page = body["page_patch"]
        assert page["_c"] == "Page" and page["width"] == 800
        assert page["client_user_agent"] == UA
        # before_main ran before the page patch was made
        assert page["title"] == "before_main ran"
        render = await first_render(client)
        assert render[1]["id"] == page["_i"]
        assert find_controls(render, key="counter")[0]["value"] == "0"
        assert len(find_controls(render, _c="FloatingActionButton")) == 1
        assert (registry_of(app).mounts["flet"].name, body["session_id"]) in registry_of(
            app
        ).sessions


async def test_click_increments_the_counter(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        render = await start(client)
        await client.click(fab_id(render))
        patch = await client.patch_with("1")
        assert patch[1]["id"] == control_id(render, "counter")
        await click_and_see(client, fab_id(render), "2")


async def test_resume_keeps_the_session_and_its_state(app: Quart) -> None:
    async with app.test_app() as test_app:
        async with connect(test_app) as client:
            render = await start(client)
            fab = fab_id(render)
            await click_and_see(client, fab, "1")
            session_id = client.session_id
        entry = registry_of(app).sessions[("flet", session_id)]
        assert entry.connection is None  # kept, waiting for its client
        async with connect(test_app) as again:
            reply = await again.register(session_id)
            assert reply[1]["session_id"] == session_id
            assert reply[1]["error"] == ""
            assert find_controls(reply, key="counter")[0]["value"] == "1"
            await click_and_see(again, fab, "2")
            assert registry_of(app).sessions[("flet", session_id)].connection is not None


async def test_resume_survives_a_changed_client_ip(app: Quart) -> None:
    # behind proxies and on mobile networks the IP changes: the session must not
    async with app.test_app() as test_app:
        test = browser(test_app)
        first = {"client": ("10.0.0.1", 40000)}
        async with test.websocket("/ws", headers={"User-Agent": UA}, scope_base=first) as ws:
            client = FletTestClient(ws)
            render = await start(client)
            await click_and_see(client, fab_id(render), "1")
        moved = {"client": ("192.0.2.77", 50000)}
        async with test.websocket("/ws", headers={"User-Agent": UA}, scope_base=moved) as ws:
            again = FletTestClient(ws)
            reply = await again.register(client.session_id)
            assert reply[1]["session_id"] == client.session_id
            await click_and_see(again, fab_id(render), "2")


async def test_resume_refused_while_the_old_connection_is_open(app: Quart) -> None:
    # a duplicated browser tab must not take over a live session (flet #6512)
    async with app.test_app() as test_app, connect(test_app) as first:
        render = await start(first)
        await click_and_see(first, fab_id(render), "1")
        async with connect(test_app) as duplicate:
            reply = await duplicate.register(first.session_id)
            assert reply[1]["session_id"] != first.session_id
            copy_render = await first_render(duplicate)
            assert find_controls(copy_render, key="counter")[0]["value"] == "0"
        # the original keeps its session and its state
        await click_and_see(first, fab_id(render), "2")


async def test_resume_survives_a_changed_user_agent(app: Quart) -> None:
    # a browser update changes the user agent under a live page: its browser
    # id, not its user agent, says whose the session is
    async with app.test_app() as test_app:
        async with connect(test_app) as client:
            render = await start(client)
            await click_and_see(client, fab_id(render), "1")
        async with connect(test_app, OTHER_UA) as again:
            reply = await again.register(client.session_id)
            assert reply[1]["session_id"] == client.session_id
            await click_and_see(again, fab_id(render), "2")


@pytest.mark.parametrize("cookie", ["none", "another browser's"])
async def test_a_stranger_with_the_session_id_gets_a_new_session(app: Quart, cookie: str) -> None:
    """A session id seen in a log or over a shoulder, with the same user agent:
    without its browser's cookie it gives a session of one's own, and the
    owner's is left as it was, held for its browser."""
    async with app.test_app() as test_app:
        async with connect(test_app) as client:
            render = await start(client)
            await click_and_see(client, fab_id(render), "1")
            session_id = client.session_id
        entry = registry_of(app).sessions[("flet", session_id)]
        stranger_client = test_app.test_client() if cookie == "none" else browser(test_app)
        async with connect(test_app, client=stranger_client) as stranger:
            reply = await stranger.register(session_id)
            assert reply[1]["session_id"] != session_id
            stranger_render = await first_render(stranger)
            assert find_controls(stranger_render, key="counter")[0]["value"] == "0"
            assert registry_of(app).sessions[("flet", session_id)] is entry
            assert entry.connection is None and entry.expiry is not None  # untouched
        # the refusal did not spoil it for its own browser
        async with connect(test_app) as owner:
            reply = await owner.register(session_id)
            assert reply[1]["session_id"] == session_id
            assert find_controls(reply, key="counter")[0]["value"] == "1"


async def test_resume_after_the_session_timeout_gives_a_new_session() -> None:
    app = make_app(session_timeout_seconds=0.2)
    async with app.test_app() as test_app:
        async with connect(test_app) as client:
            await start(client)
            session_id = client.session_id
        key = ("flet", session_id)
        assert key in registry_of(app).sessions
        for _ in range(500):  # evicted after 0.2 s; give up after 5 s
            if key not in registry_of(app).sessions:
                break
            await asyncio.sleep(0.01)
        assert key not in registry_of(app).sessions
        async with connect(test_app) as again:
            reply = await again.register(session_id)
            assert reply[1]["session_id"] != session_id
            render = await first_render(again)
            assert find_controls(render, key="counter")[0]["value"] == "0"


async def test_sessions_are_isolated(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as one, connect(test_app) as two:
        render_one = await start(one)
        render_two = await start(two)
        assert one.session_id != two.session_id
        for value in ("1", "2", "3"):
            await click_and_see(one, fab_id(render_one), value)
        await click_and_see(two, fab_id(render_two), "1")
        # two saw nothing of one's clicks, one nothing of two's
        assert not any(contains(m, "2") or contains(m, "3") for m in two.messages)
        assert sum(contains(m, "1") for m in one.messages) == 1
        await click_and_see(one, fab_id(render_one), "4")


async def test_before_main_failure_is_returned_in_the_register_reply(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        reply = await client.register(route="/before-fails")
        assert "before_main refused this page" in reply[1]["error"]
        crashed = await client.receive_until(lambda m: m[0] == SESSION_CRASHED)
        assert "before_main refused this page" in crashed[1]["message"]
        # main never ran for it; a session registered afterwards gets its render
        async with connect(test_app) as other:
            await start(other)
        assert reply[1]["session_id"] not in main_calls
        assert other.session_id in main_calls


async def test_session_crashed_when_main_raises(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as healthy:
        healthy_render = await start(healthy)
        async with connect(test_app) as client:
            reply = await client.register(route="/main-crashes")
            assert reply[1]["error"] == ""
            crashed = await client.receive_until(lambda m: m[0] == SESSION_CRASHED)
            assert "main blew up" in crashed[1]["message"]
        await click_and_see(healthy, fab_id(healthy_render), "1")
        assert not [m for m in healthy.messages if m[0] == SESSION_CRASHED]


async def test_session_crashed_when_a_handler_raises_reaches_that_session_only(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as one, connect(test_app) as two:
        render_one = await start(one)
        render_two = await start(two)
        await one.click(control_id(render_one, "boom"))
        crashed = await one.receive_until(lambda m: m[0] == SESSION_CRASHED)
        assert "handler blew up" in crashed[1]["message"]
        await click_and_see(two, fab_id(render_two), "1")
        assert not [m for m in two.messages if m[0] == SESSION_CRASHED]
        # the crashed session still serves its own events
        await click_and_see(one, fab_id(render_one), "1")


async def test_update_control_props_reaches_the_control(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        render = await start(client)
        field = control_id(render, "field")
        await client.ws.send(encode(UPDATE_CONTROL_PROPS, {"id": field, "props": {"value": "hi"}}))
        await client.click(control_id(render, "read"))
        await client.patch_with("read:hi")


async def test_props_for_a_control_flet_has_not_indexed_yet_still_apply(app: Quart) -> None:
    # flet sends a patch before it indexes the controls it adds; a client
    # answering such a control first must not lose its prop update
    async with app.test_app() as test_app, connect(test_app) as client:
        render = await start(client)
        field = control_id(render, "field")
        session = registry_of(app).sessions[("flet", client.session_id)].session
        del session.index[field]  # the moment between flet's send and its index
        await client.ws.send(encode(UPDATE_CONTROL_PROPS, {"id": field, "props": {"value": "hi"}}))
        await client.click(control_id(render, "read"))
        await client.patch_with("read:hi")
        assert field in session.index


async def test_invoke_method_round_trip_from_an_async_handler(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        render = await start(client)
        field = control_id(render, "field")
        await client.click(control_id(render, "invoke"))
        call = await client.receive_until(lambda m: m[0] == INVOKE_METHOD)
        assert call[1]["control_id"] == field
        assert call[1]["name"] == "probe" and call[1]["args"] == {"x": 1}
        # the handler is still waiting: the receive loop must read this answer
        await client.ws.send(
            encode(
                INVOKE_METHOD,
                {
                    "control_id": field,
                    "call_id": call[1]["call_id"],
                    "result": "pong",
                    "error": None,
                },
            )
        )
        await client.patch_with("invoked:pong")
        # while a handler waits, other events of the session keep flowing
        await client.click(control_id(render, "invoke"))
        call = await client.receive_until(lambda m: m[0] == INVOKE_METHOD)
        await click_and_see(client, fab_id(render), "1")
        await client.ws.send(
            encode(
                INVOKE_METHOD,
                {"control_id": field, "call_id": call[1]["call_id"], "result": None, "error": "no"},
            )
        )
        crashed = await client.receive_until(lambda m: m[0] == SESSION_CRASHED)
        assert "no" in crashed[1]["message"]


async def test_data_channel_frames(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        render = await start(client)
        # a frame for a channel nobody opened is dropped
        await client.ws.send(b"\x01" + (77).to_bytes(4, "little") + b"lost")
        await click_and_see(client, fab_id(render), "1")
        await client.click(control_id(render, "channel"), data=9)
        await client.patch_with("channel:9")
        await client.ws.send(b"\x01" + (9).to_bytes(4, "little") + b"abc")
        echo = await asyncio.wait_for(client.ws.receive(), 10)
        assert echo == b"\x01" + (9).to_bytes(4, "little") + b"cba"
        await click_and_see(client, fab_id(render), "2")


async def test_control_event_for_an_unknown_control_is_ignored(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        render = await start(client)
        await client.click(987654)
        await client.click(fab_id(render), name="no_such_event")
        await client.ws.send(encode(UPDATE_CONTROL_PROPS, {"id": 987654, "props": {"value": 1}}))
        await click_and_see(client, fab_id(render), "1")
        assert not [m for m in client.messages if m[0] == SESSION_CRASHED]


async def test_register_reply_carries_the_session_id_the_client_keeps(app: Quart) -> None:
    async with app.test_app() as test_app, connect(test_app) as client:
        await client.ws.send(
            encode(REGISTER_CLIENT, {"session_id": "", "page_name": "", "page": {"route": "/x"}})
        )
        reply = await client.receive_until(lambda m: m[0] == REGISTER_CLIENT)
        assert reply[1]["session_id"] and reply[1]["page_patch"]["route"] == "/x"
        assert await first_render(client)
