"""The event turns of one session (quart_flet.runtime.dispatch): its events,
and the prop updates between them, are handled in arrival order, as in flet,
though sync handlers run in pool threads; a sync handler's change is never
sent half made while an async handler of the same session updates the page;
and the line of waiting events is bounded per connection.

Driven over Quart's test websocket against the real flet Session; the
gates are threading events the handlers wait on, and a data-channel echo (a
frame the server answers at once, outside the turns) proves the server has
read every frame sent before it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import flet as ft
import pytest
from conftest import (
    PATCH_CONTROL,
    UPDATE_CONTROL_PROPS,
    FletTestClient,
    decode,
    encode,
    find_controls,
)
from test_flet_semantics import button, make_app, not_crashed
from test_malformed import expect_close

BUSY = threading.Event()  # released at the end of tests that block the pool
CHANNEL = 7
LOG: list[str] = []
SLOW_STARTED = threading.Event()


def ids_of(client: FletTestClient, *texts: str) -> list[int]:
    """The ids of the buttons labelled ``texts``, from what ``client`` received."""
    return [int(find_controls(client.messages, content=text)[0]["_i"]) for text in texts]


async def open_channel(client: FletTestClient, target: int) -> None:
    """Click the button that opens the echo channel, wait until it is open."""
    await client.click(target, data=CHANNEL)
    await client.patch_with(f"channel {CHANNEL} open")


async def echo(client: FletTestClient, payload: bytes) -> None:
    """Send ``payload`` on the echo channel and wait for it back (reversed):
    the server has read every frame sent before it. Other frames received
    meanwhile are kept in ``client.messages``."""
    header = b"\x01" + CHANNEL.to_bytes(4, "little")
    await client.ws.send(header + payload)
    while True:
        frame = await asyncio.wait_for(client.ws.receive(), 10)
        if frame[:1] == b"\x01":
            assert frame == header + payload[::-1]
            return
        client.messages.append(decode(frame))


def channel_button(page: ft.Page) -> ft.Button:
    """A button whose async handler opens an echo data channel (its id in
    the event's data)."""
    status = ft.Text("")

    async def opened(e: ft.Event[ft.Button]) -> None:
        channel = e.control.get_data_channel(int(e.data))
        channel.on_bytes(lambda data: channel.send(data[::-1]))
        status.value = f"channel {e.data} open"
        status.update()

    page.add(status)
    return ft.Button("channel", on_click=opened)


# ---- arrival order -----------------------------------------------------------


def slow_then_async_main(page: ft.Page) -> None:
    after = ft.Text("")

    def slow(e: ft.Event[ft.Button]) -> None:  # sync: in a pool thread
        LOG.append("slow started")
        SLOW_STARTED.set()
        BUSY.wait(30)
        LOG.append("slow returned")

    async def quick(e: ft.Event[ft.Button]) -> None:
        LOG.append("async ran")
        after.value = "async done"
        after.update()

    page.add(
        after,
        channel_button(page),
        ft.Button("slow", on_click=slow),
        ft.Button("quick", on_click=quick),
    )


async def test_an_async_handler_waits_for_a_slow_sync_handler_sent_before_it() -> None:
    """A blocked sync handler holds its session's line: the async handler of
    the next event has not started once the server has read it (the echo
    after it is back), and it runs as soon as the sync one returns."""
    LOG.clear()
    BUSY.clear()
    SLOW_STARTED.clear()
    app = make_app(slow_then_async_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        channel = await button(client, "channel")
        slow, quick = ids_of(client, "slow", "quick")
        await open_channel(client, channel)
        try:
            await client.click(slow)
            assert await asyncio.to_thread(SLOW_STARTED.wait, 10)
            await client.click(quick)
            await echo(client, b"after both clicks")
            assert LOG == ["slow started"]  # the async one waits its turn
        finally:
            BUSY.set()
        await client.patch_with("async done")
    assert LOG == ["slow started", "slow returned", "async ran"]


def typing_main(page: ft.Page) -> None:
    changes: list[str] = []
    result = ft.Text("")

    def on_change(e: ft.Event[ft.TextField]) -> None:  # sync: runs in a thread
        time.sleep(0.005)  # a slow handler (not a synchronisation)
        changes.append(field.value)

    async def on_submit(e: ft.Event[ft.TextField]) -> None:
        result.value = f"submitted {field.value} after {len(changes)}: {','.join(changes)}"
        page.update()

    field = ft.TextField(on_change=on_change, on_submit=on_submit)
    page.add(field, result)


@pytest.mark.parametrize("round_", range(3))
async def test_events_run_in_arrival_order(round_: int) -> None:
    """8 changes then a submit, sent at once: the async on_submit starts only
    after every sync on_change returned, and each change saw its own value."""
    app = make_app(typing_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await client.register()
        patch = await client.receive_until(
            lambda m: (
                not_crashed(m) or (m[0] == PATCH_CONTROL and find_controls(m[1], _c="TextField"))
            )
        )
        field = int(find_controls(patch, _c="TextField")[0]["_i"])
        typed = ""
        for letter in "abcdefgh":
            typed += letter
            await ws.send(encode(UPDATE_CONTROL_PROPS, {"id": field, "props": {"value": typed}}))
            await client.click(field, "change", typed)
        await client.click(field, "submit")
        done = await client.receive_until(lambda m: not_crashed(m) or "submitted" in str(m))
    expected = "submitted abcdefgh after 8: a,ab,abc,abcd,abcde,abcdef,abcdefg,abcdefgh"
    assert expected in str(done)


# ---- a sync handler's change is never sent half made -------------------------


GATES: list[Any] = []


def half_made_main(page: ft.Page) -> None:
    shared = ft.Text("start")
    note = ft.Text("idle")
    go_on = asyncio.Event()  # the async handler's gate, set by the test on the loop
    updated = asyncio.Event()  # the async handler's page.update() has returned
    started = threading.Event()  # the sync handler is mid-change

    async def async_update(e: ft.Event[ft.Button]) -> None:
        note.value = "async waiting"
        note.update()
        await go_on.wait()
        note.value = "async done"
        page.update()  # while the sync handler's thread is mid-change
        updated.set()

    def sync_change(e: ft.Event[ft.Button]) -> None:  # sync: in a pool thread
        shared.value = "half"
        started.set()
        BUSY.wait(30)
        shared.value = "whole"

    GATES[:] = [go_on, updated, started]  # before the page shows
    page.add(
        shared,
        note,
        ft.Button("async", on_click=async_update),
        ft.Button("sync", on_click=sync_change),
    )


async def test_an_async_handlers_update_never_sends_a_sync_handlers_half_made_change() -> None:
    """While a sync handler of a session runs in a thread, a page.update() of
    an async handler of that session is made once the thread is done, so the
    client never sees the tree mid-change ("half"), and loses nothing."""
    BUSY.clear()
    app = make_app(half_made_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        first = await button(client, "async")
        (second,) = ids_of(client, "sync")
        go_on, updated, started = GATES
        try:
            await client.click(first)
            await client.patch_with("async waiting")
            await client.click(second)
            assert await asyncio.to_thread(started.wait, 10)  # the thread holds "half"
            go_on.set()
            await asyncio.wait_for(updated.wait(), 10)  # its update() has returned
        finally:
            BUSY.set()
        await client.receive_until(
            lambda m: not_crashed(m) or {"async done", "whole"} <= texts(client.messages)
        )
    assert "half" not in texts(client.messages)


def texts(messages: list[Any]) -> set[str]:
    """Every string value in ``messages``."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.add(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(messages)
    return found


# ---- the line of waiting events is bounded -----------------------------------


def stuck_main(page: ft.Page) -> None:
    page.add(ft.Button("stuck", on_click=lambda e: BUSY.wait(30)))


async def test_a_flood_of_events_behind_a_stuck_handler_closes_that_connection() -> None:
    from quart_flet.runtime.session import MAX_EVENTS_IN_LINE

    BUSY.clear()
    app = make_app(stuck_main)
    async with app.test_app() as test_app:
        try:
            async with test_app.test_client().websocket("/ws") as ws:
                client = FletTestClient(ws)
                target = await button(client, "stuck")
                for _ in range(MAX_EVENTS_IN_LINE + 1):
                    await client.click(target)
                assert await expect_close(client) == 1008
            async with test_app.test_client().websocket("/ws") as ws:
                await button(FletTestClient(ws), "stuck")  # the server goes on
        finally:
            BUSY.set()


def counting_main(page: ft.Page) -> None:
    count = ft.Text("0")

    def counted(e: ft.Event[ft.Button]) -> None:  # sync: holds the line until BUSY
        BUSY.wait(30)
        count.value = str(int(count.value or "0") + 1)

    page.add(count, channel_button(page), ft.Button("count", on_click=counted))


async def test_events_up_to_the_bound_wait_and_are_all_handled() -> None:
    """Exactly MAX_EVENTS_IN_LINE events in line (the first one blocked) keep
    the connection: once the server has read them all (the echo is back) it
    is still open, and when the handler is released every one is handled."""
    from quart_flet.runtime.session import MAX_EVENTS_IN_LINE

    BUSY.clear()
    app = make_app(counting_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        channel = await button(client, "channel")
        (target,) = ids_of(client, "count")
        await open_channel(client, channel)
        try:
            for _ in range(MAX_EVENTS_IN_LINE):
                await client.click(target)
            await echo(client, b"all read")  # read, and the connection is open
        finally:
            BUSY.set()
        await client.patch_with(str(MAX_EVENTS_IN_LINE), timeout=60)
        await client.click(target)
        await client.patch_with(str(MAX_EVENTS_IN_LINE + 1))
