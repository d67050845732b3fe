"""Sessions across reconnects (quart_flet.session.registry), through the
public options and hooks: a resumed session is no longer on its way out (its
old expiry never fires), ``max_held_sessions`` is a budget per Flet app, and
a session is never shared by two tabs.

Expiry is waited for through ``on_session_end``, never slept for: asyncio's
timers fire in deadline order, so once a session that left later has
expired, the earlier deadline has passed too.

(Also about the registry: the longest-disconnected held sessions are
evicted first, tests/session/test_held_sessions.py; a held session expires
after session_timeout_seconds, tests/session/test_lifecycle.py and
tests/app/test_building_blocks.py; a duplicated tab gets a session of its
own, tests/session/test_protocol.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import flet as ft
from conftest import PATCH_CONTROL, FletTestClient, browser, find_controls
from quart import Quart

from quart_flet import SessionEndReason, flet_blueprint


class Ends:
    """What on_session_end heard: (app, session id, reason)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, SessionEndReason]] = []
        self.changed = asyncio.Event()

    def hook(self, app_name: str) -> Any:
        async def on_session_end(page: ft.Page, reason: SessionEndReason) -> None:
            self.heard.append((app_name, page.session.id, reason))
            self.changed.set()

        return on_session_end

    async def until(self, count: int) -> None:
        while len(self.heard) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


async def main(page: ft.Page) -> None:
    count = ft.Text("0", key="count")

    async def increment(e: ft.Event[ft.Button]) -> None:
        count.value = str(int(count.value or "0") + 1)
        count.update()

    page.add(count, ft.Button("increment", key="increment", on_click=increment))


@asynccontextmanager
async def tab(
    client: Any, path: str = "/ws", session_id: str | None = None
) -> AsyncIterator[FletTestClient]:
    """A tab of ``client``'s browser with its page shown (resuming ``session_id``)."""
    async with client.websocket(path) as ws:
        flet = FletTestClient(ws)
        reply = await flet.register(session_id)
        if not find_controls(reply, key="increment"):
            await flet.receive_until(
                lambda m: m[0] == PATCH_CONTROL and bool(find_controls(m[1], key="increment"))
            )
        yield flet


async def increment(flet: FletTestClient, expected: str) -> None:
    await flet.click(int(find_controls(flet.messages, key="increment")[0]["_i"]))
    await flet.patch_with(expected)


async def test_a_resumed_session_outlives_the_expiry_it_had_while_held() -> None:
    """A leaves and comes back at once; B leaves after A left. When B has
    expired, A's old deadline has passed too: A still lives, and works."""
    ends = Ends()
    app = Quart(__name__)
    app.register_blueprint(
        flet_blueprint(main, on_session_end=ends.hook("flet"), session_timeout_seconds=0.3)
    )
    async with app.test_app() as test_app:
        a_browser, b_browser = browser(test_app), browser(test_app)
        async with tab(a_browser) as a:
            await increment(a, "1")
        async with tab(a_browser, session_id=a.session_id) as a_again:
            assert a_again.session_id == a.session_id
            async with tab(b_browser) as b:
                pass
            await ends.until(1)
            assert ends.heard == [("flet", b.session_id, SessionEndReason.EXPIRED)]
            await increment(a_again, "2")  # A's session, alive and live
        # A is held again now, with a deadline of its own from this leave
        await ends.until(2)
        assert ends.heard[1] == ("flet", a.session_id, SessionEndReason.EXPIRED)


async def test_max_held_sessions_is_a_budget_per_flet_app() -> None:
    """Two Flet apps with max_held_sessions=1: two sessions leaving the first
    evict its older one only; the second app's held session stays, and its
    browser resumes it."""
    ends = Ends()
    app = Quart(__name__)
    for name in ("one", "two"):
        app.register_blueprint(
            flet_blueprint(main, name=name, on_session_end=ends.hook(name), max_held_sessions=1),
            url_prefix=f"/{name}",
        )
    async with app.test_app() as test_app:
        keeper = browser(test_app)
        async with tab(keeper, "/two/ws") as kept:
            await increment(kept, "1")
        gone = []
        for _ in range(2):
            async with tab(browser(test_app), "/one/ws") as flet:
                gone.append(flet.session_id)
        await ends.until(1)
        assert ends.heard == [("one", gone[0], SessionEndReason.EVICTED)]
        async with tab(keeper, "/two/ws", kept.session_id) as again:
            assert again.session_id == kept.session_id
            await increment(again, "2")
    assert ("two", kept.session_id, SessionEndReason.EVICTED) not in ends.heard


async def test_two_tabs_resuming_one_session_at_once_never_share_it() -> None:
    release = asyncio.Event()

    def slow_disconnect_main(page: ft.Page) -> None:
        async def on_disconnect(e: Any) -> None:
            await release.wait()

        page.on_disconnect = on_disconnect
        page.add(ft.Text("hello"))

    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(slow_disconnect_main))
    async with app.test_app() as test_app:
        client = browser(test_app)  # one browser, its id with it
        async with client.websocket("/ws") as ws:
            first = FletTestClient(ws)
            await first.register()
            await first.patch_with("hello")
        async with client.websocket("/ws") as one, client.websocket("/ws") as two:
            tabs = [FletTestClient(one), FletTestClient(two)]
            registers = [asyncio.ensure_future(t.register(first.session_id)) for t in tabs]
            await asyncio.sleep(0)  # let both send their register (a yield, not a wait)
            release.set()
            await asyncio.gather(*registers)
        ids = [tab.session_id for tab in tabs]
        assert ids.count(first.session_id) == 1, ids
