"""The memory budget of held sessions: past ``max_held_sessions`` an app's
longest-disconnected sessions end first, as ``evicted``, counted in the
metrics; a live session is never evicted, a resumed one is no longer held,
and an evicted session's page and controls are freed."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import flet as ft
import pytest
from conftest import PATCH_CONTROL, FletTestClient, browser, find_controls
from quart import Quart

from quart_flet import OptionError, SessionEndReason, flet_blueprint
from quart_flet.app.metrics import exposition
from quart_flet.options import resolve_options
from quart_flet.session.registry import FletRegistry
from quart_flet.stats import STATS


class Ends:
    """What on_session_end heard, and the pages main saw (weakly)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, SessionEndReason]] = []
        self.pages: dict[str, weakref.ref[Any]] = {}
        self.changed = asyncio.Event()

    def main(self, page: ft.Page) -> None:
        self.pages[page.session.id] = weakref.ref(page)
        rows = [ft.Row([ft.Text(f"row {i}"), ft.TextField(value=f"{i}")]) for i in range(50)]
        page.add(ft.Text("ready", key="ready"), ft.Column(rows))

    async def end(self, page: ft.Page, reason: SessionEndReason) -> None:
        self.heard.append((page.session.id, reason))
        self.changed.set()

    async def until(self, count: int) -> None:
        while len(self.heard) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


def make_app(ends: Ends, **opts: Any) -> Quart:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(ends.main, on_session_end=ends.end, **opts))
    return app


def registry_of(app: Quart) -> FletRegistry:
    registry = app.extensions["quart_flet"]
    assert isinstance(registry, FletRegistry)
    return registry


@asynccontextmanager
async def tab(client: Any, session_id: str | None = None) -> AsyncIterator[FletTestClient]:
    """A tab of ``client``'s browser with its page shown (resuming ``session_id``)."""
    async with client.websocket("/ws") as ws:
        flet = FletTestClient(ws)
        reply = await flet.register(session_id)
        if not find_controls(reply, key="ready"):
            await flet.receive_until(lambda m: m[0] == PATCH_CONTROL and "ready" in str(m))
        yield flet


async def visit(client: Any, session_id: str | None = None) -> str:
    """Open a tab, then leave: the session is held."""
    async with tab(client, session_id) as flet:
        assert flet.session_id is not None
        return flet.session_id


def held(app: Quart) -> list[str]:
    """The app's held sessions, longest-disconnected first."""
    return list(registry_of(app).held.get("flet", {}))


async def test_the_longest_disconnected_are_evicted_first() -> None:
    ends = Ends()
    app = make_app(ends, max_held_sessions=2)
    before = STATS.session_ends["evicted"]
    async with app.test_app() as test_app:
        browsers = [browser(test_app) for _ in range(4)]
        a, b, c = [await visit(client) for client in browsers[:3]]
        await ends.until(1)
        assert ends.heard == [(a, SessionEndReason.EVICTED)]  # a left first
        assert held(app) == [b, c]

        # b comes back and leaves again: now c has been gone the longest
        assert await visit(browsers[1], b) == b
        assert held(app) == [c, b]
        d = await visit(browsers[3])
        await ends.until(2)
        assert ends.heard[1] == (c, SessionEndReason.EVICTED)
        assert held(app) == [b, d]
        assert set(registry_of(app).sessions) == {("flet", b), ("flet", d)}

        # an evicted session is gone: its browser gets a new one
        assert await visit(browsers[0], a) != a
        assert STATS.session_ends["evicted"] - before == 3  # a's replacement pushed b out
        assert (
            'quart_flet_session_ends_total{reason="evicted"'
            in exposition(registry_of(app)).decode()
        )


async def test_a_live_session_is_never_evicted() -> None:
    ends = Ends()
    app = make_app(ends, max_held_sessions=1)
    async with app.test_app() as test_app:
        async with tab(browser(test_app)) as one, tab(browser(test_app)) as two:
            live = {one.session_id, two.session_id}
            gone = [await visit(browser(test_app)) for _ in range(3)]
            await ends.until(2)
            assert [session_id for session_id, _ in ends.heard] == gone[:2]
            assert held(app) == gone[2:]
            registry = registry_of(app)
            for session_id in live:
                assert registry.sessions[("flet", session_id)].connection is not None
            assert not live & {session_id for session_id, _ in ends.heard}


async def test_an_evicted_session_frees_its_page_and_controls() -> None:
    ends = Ends()
    app = make_app(ends, max_held_sessions=1)
    async with app.test_app() as test_app:
        first = await visit(browser(test_app))
        page = ends.pages[first]
        assert page() is not None
        session = weakref.ref(page().session)  # type: ignore[union-attr]
        await visit(browser(test_app))
        await ends.until(1)
        assert ends.heard == [(first, SessionEndReason.EVICTED)]
        for _ in range(3):  # the end hook's task finishes
            await asyncio.sleep(0)
        gc.collect()
        assert page() is None and session() is None


def test_max_held_sessions_comes_from_its_variable_and_is_checked() -> None:
    assert resolve_options().max_held_sessions == 500
    assert resolve_options({"FLET_MAX_HELD_SESSIONS": "20"}).max_held_sessions == 20
    with pytest.raises(OptionError, match="max_held_sessions.*below the minimum of 1"):
        resolve_options(max_held_sessions=0)
