"""The app-wide registry: one per Quart app, started and stopped by the
serving hooks; sessions evicted after their timeout; sockets that close
before registering leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import flet as ft
import pytest
from conftest import FletTestClient
from quart import Quart

from quart_flet import flet_blueprint, quart_app
from quart_flet.session.registry import FletRegistry


async def main(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


async def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    """Bounded polling on a condition we cannot await directly."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture(name="app")
def _app() -> Quart:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main, name="home"))
    app.register_blueprint(flet_blueprint(main, name="one"), url_prefix="/one")
    app.register_blueprint(flet_blueprint(main, name="two"), url_prefix="/two")
    return app


async def test_one_registry_per_app_started_and_stopped_by_serving_hooks(
    app: Quart, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp writes
    registry = app.extensions["quart_flet"]
    assert isinstance(registry, FletRegistry)
    assert set(registry.mounts) == {"home", "one", "two"}
    assert not registry.started and registry.temp_dir is None

    async with app.test_app():
        assert registry.started
        # started once for three blueprints: one temporary directory
        assert [p.name.startswith("quart_flet_") for p in tmp_path.iterdir()] == [True]
        temp_dir = registry.temp_dir
        assert temp_dir is not None and os.path.isdir(temp_dir)
        assert set(registry.webclients) == {"home", "one", "two"}
        for webclient in registry.webclients.values():
            assert webclient.patched_dir is not None
            assert webclient.patched_dir.is_dir()
            assert str(webclient.patched_dir).startswith(temp_dir)
        executor = registry.executor
        assert executor is not None

    assert not registry.started
    assert registry.temp_dir is None
    assert not os.path.exists(temp_dir)
    assert list(tmp_path.iterdir()) == []
    assert executor._shutdown


async def test_separate_apps_get_separate_registries() -> None:
    first, second = quart_app(main), quart_app(main)
    assert first.extensions["quart_flet"] is not second.extensions["quart_flet"]
    async with first.test_app(), second.test_app():
        first_dir = first.extensions["quart_flet"].temp_dir
        second_dir = second.extensions["quart_flet"].temp_dir
        assert first_dir != second_dir


async def test_stop_closes_live_sessions(app: Quart) -> None:
    registry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/one/ws") as ws:
            client = FletTestClient(ws)
            await client.register()
            assert ("one", client.session_id) in registry.sessions
    assert registry.sessions == {}
    assert registry.connections == set()


async def test_disconnected_session_is_evicted_after_timeout() -> None:
    events: list[str] = []
    closed = asyncio.Event()

    async def tracked_main(page: ft.Page) -> None:
        async def on_disconnect(e: ft.Event[ft.Page]) -> None:
            events.append("disconnect")

        async def on_close(e: ft.Event[ft.Page]) -> None:
            events.append("close")
            closed.set()

        page.on_disconnect = on_disconnect
        page.on_close = on_close
        page.add(ft.Text("hello"))

    app = quart_app(tracked_main, session_timeout_seconds=0.5)
    registry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            client = FletTestClient(ws)
            await client.register()
            await client.patch_with("hello")
            key = ("flet", client.session_id)
            assert registry.sessions[key].connection is not None
        # the client left: the session waits for it, without a connection
        await wait_for(lambda: key not in registry.sessions or not registry.connections)
        assert key in registry.sessions
        assert registry.sessions[key].connection is None
        await asyncio.wait_for(closed.wait(), timeout=5)
        assert key not in registry.sessions
        assert events == ["disconnect", "close"]


@pytest.mark.parametrize("before_close", ["client leaves", "garbage frame"])
async def test_socket_closed_before_register_leaves_nothing(app: Quart, before_close: str) -> None:
    registry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        client = test_app.test_client()
        # warm up: the first request starts lazily created tasks of its own
        assert (await client.get("/")).status_code == 200
        tasks_before = asyncio.all_tasks()
        for _ in range(3):
            async with client.websocket("/one/ws") as ws:
                await wait_for(lambda: len(registry.connections) == 1)
                if before_close == "garbage frame":
                    await ws.send(b"\x00\xc1")  # 0xc1 is never valid msgpack
                    await wait_for(lambda: not registry.connections)
        await wait_for(lambda: asyncio.all_tasks() <= tasks_before)
        assert registry.connections == set()
        assert registry.sessions == {}
        assert registry.tasks == set()
        # the next client is served as usual
        async with client.websocket("/one/ws") as ws:
            reply = await FletTestClient(ws).register()
            assert reply[1]["error"] == ""


async def test_the_same_app_serves_again_after_a_restart() -> None:
    """Start, stop, start one app object in one process (tests, reloaders):
    the second run must not serve files of the first run's temp dir."""
    app = quart_app(main)
    for _ in range(2):
        async with app.test_app() as test_app:
            response = await test_app.test_client().get("/")
            assert response.status_code == 200
            assert b"<base href=" in await response.get_data()
