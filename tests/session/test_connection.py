"""One WebSocket <-> one session (quart_flet.session.connection): a
connection closed by the server, for bad input or for a client that does
not take its frames (more than ``max_send_buffer`` waiting), ends that
connection only. Other users go on, and the session itself is held: its
browser resumes it, with the state the lost frames carried.

(The protocol's journeys, register, first render, resume and its refusals,
are in tests/session/test_protocol.py; each malformed input and its close
code in tests/session/test_malformed.py; what counts against the send
buffer, with a stalled socket, in tests/session/test_slowreader.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import flet as ft
from conftest import PATCH_CONTROL, SESSION_CRASHED, FletTestClient, browser, find_controls
from quart import Quart
from test_malformed import expect_close

from quart_flet import flet_blueprint

KiB = 1024
UNSUPPORTED_DATA, POLICY_VIOLATION = 1003, 1008


async def main(page: ft.Page) -> None:
    count = ft.Text("0", key="count")
    big = ft.Text("", key="big")

    async def increment(e: ft.Event[ft.Button]) -> None:
        count.value = str(int(count.value or "0") + 1)
        count.update()

    async def flood(e: ft.Event[ft.Button]) -> None:
        # three 40 KiB frames queued in one step, before any can be sent
        for step in range(3):
            big.value = f"{step}:" + "x" * 40 * KiB
            big.update()

    page.add(
        count,
        big,
        ft.Button("increment", key="increment", on_click=increment),
        ft.Button("flood", key="flood", on_click=flood),
    )


def make_app() -> Quart:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main, max_send_buffer=64 * KiB))
    return app


@asynccontextmanager
async def tab(client: Any, session_id: str | None = None) -> AsyncIterator[FletTestClient]:
    """A tab of ``client``'s browser with its page shown (resuming ``session_id``)."""
    async with client.websocket("/ws") as ws:
        flet = FletTestClient(ws)
        reply = await flet.register(session_id)
        assert reply[1]["error"] == ""
        if not find_controls(reply, key="increment"):
            await flet.receive_until(
                lambda m: (
                    m[0] != SESSION_CRASHED
                    and m[0] == PATCH_CONTROL
                    and bool(find_controls(m[1], key="increment"))
                )
            )
        yield flet


def control(flet: FletTestClient, key: str) -> int:
    return int(find_controls(flet.messages, key=key)[0]["_i"])


async def increment(flet: FletTestClient, expected: str) -> None:
    await flet.click(control(flet, "increment"))
    await flet.patch_with(expected)


async def test_more_than_max_send_buffer_waiting_closes_that_connection_only() -> None:
    """Three 40 KiB frames against a 64 KiB send buffer: that connection
    closes with 1008 (policy violation); another user's goes on; the session
    is held, and its browser resumes it with the page as it is now, the
    dropped frames' last state included."""
    app = make_app()
    async with app.test_app() as test_app:
        owner, other = browser(test_app), browser(test_app)
        async with tab(other) as bystander:
            async with tab(owner) as flooded:
                session_id = flooded.session_id
                await increment(flooded, "1")
                await flooded.click(control(flooded, "flood"))
                assert await expect_close(flooded) == POLICY_VIOLATION
            await increment(bystander, "1")
            async with tab(owner, session_id) as again:
                assert again.session_id == session_id
                (count,) = find_controls(again.messages[0], key="count")
                (big,) = find_controls(again.messages[0], key="big")
                assert count["value"] == "1"
                assert big["value"].startswith("2:")  # never sent before the close
                await increment(again, "2")
            await increment(bystander, "2")


async def test_a_connection_closed_for_bad_input_leaves_its_session_resumable() -> None:
    """A frame the protocol does not know ends the connection (1003), not the
    session: its browser resumes it where it was; another user saw nothing."""
    app = make_app()
    async with app.test_app() as test_app:
        owner, other = browser(test_app), browser(test_app)
        async with tab(other) as bystander:
            async with tab(owner) as broken:
                session_id = broken.session_id
                await increment(broken, "1")
                await increment(broken, "2")
                await broken.ws.send(b"\x02not a flet frame")
                assert await expect_close(broken) == UNSUPPORTED_DATA
            async with tab(owner, session_id) as again:
                assert again.session_id == session_id
                assert find_controls(again.messages[0], key="count")[0]["value"] == "2"
                await increment(again, "3")
            await increment(bystander, "1")
        assert not [m for m in bystander.messages if m[0] == SESSION_CRASHED]
