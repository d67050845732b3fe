"""Issue 25: state a session carries across a restart (on_session_save).

Against a real Hypercorn, stopped with SIGTERM and started again: the
browser's next session finds what its last one saved in page.session.store
before main runs, on the route it was on; once only, and only for that
browser. Without Redis it is kept in a private directory of the user."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PATCH_CONTROL,
    UPDATE_CONTROL_PROPS,
    FletTestClient,
    WebsocketsSocket,
    browser,
    encode,
    find_controls,
    start_counter,
    start_hypercorn,
)
from test_redis import RedisServer, _redis_server  # noqa: F401  (the fixture)
from test_sticky import LOG_CONFIG
from test_worker_relay import new_tab
from websockets.asyncio.client import connect

from examples.counter import main as counter_main
from quart_flet import quart_app
from quart_flet.mount import FletMount
from quart_flet.options import resolve_options
from quart_flet.session.filestore import FileStore
from quart_flet.session.handshake import Owner
from quart_flet.session.registry import get_registry
from quart_flet.session.saved import MAX_SAVED_BYTES, SavedStates

APP = "tests.apps.saved:app"


async def open_form(
    url: str, cookies: dict[str, str], route: str, session_id: str | None = None
) -> tuple[Any, FletTestClient]:
    """A session of the form at ``route`` with the browser's cookies; its
    client, once the page (route and draft) is shown."""
    ws = await connect(
        url.replace("http", "ws") + "/ws",
        additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
    )
    client = FletTestClient(WebsocketsSocket(ws))
    await client.register(session_id, route=route)
    if not find_controls(client.messages, key="draft"):
        await client.receive_until(
            lambda m: m[0] == PATCH_CONTROL and find_controls(m, key="draft")
        )
    return ws, client


def shown(client: FletTestClient) -> tuple[str, str]:
    """(route text, draft) the page shows."""
    (route,) = find_controls(client.messages, key="route")
    (draft,) = find_controls(client.messages, key="draft")
    return route["value"], draft.get("value", "")


async def restart_with_a_draft(
    tmp_path: Path, before: dict[str, str], after: dict[str, str]
) -> None:
    """Type a draft on a server with env ``before``, stop it with SIGTERM,
    start one with env ``after``: the draft comes back to that browser only,
    once, on its route."""
    log_config = tmp_path / "log.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    args = ("--workers", "0", "--log-config", f"json:{log_config}")
    server = start_hypercorn(APP, tmp_path, *args, env=before)
    try:
        browser = (await new_tab(server.url)).cookies
        stranger = (await new_tab(server.url)).cookies
        ws, client = await open_form(server.url, browser, "/form")
        assert shown(client) == ("route:/form", "")
        draft = find_controls(client.messages, key="draft")[0]["_i"]
        await ws.send(encode(UPDATE_CONTROL_PROPS, {"id": draft, "props": {"value": "hello"}}))
        await client.click(draft, "change", "hello")
        await client.patch_with("typed:hello")  # the handler kept it
        old_session = client.session_id
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0, server.log()
        await ws.close()
        saved = "saved the state of 1 of 1 session(s) for the next start in"
        assert saved in server.log(), server.log()
    finally:
        server.stop()

    server = start_hypercorn(APP, tmp_path, *args, env=after)
    try:
        # another browser finds nothing of it
        ws, other = await open_form(server.url, stranger, "/form")
        assert shown(other) == ("route:/form", "")
        await ws.close()
        # the page reconnects with its old session id, which this server does
        # not know: a new session, with the draft, on the saved route
        ws, client = await open_form(server.url, browser, "/", old_session)
        assert client.session_id != old_session
        assert shown(client) == ("route:/form", "hello")
        await ws.close()
        # once only
        ws, again = await open_form(server.url, browser, "/form")
        assert shown(again) == ("route:/form", "")
        await ws.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.server
async def test_a_draft_typed_before_a_restart_is_back_after_it(tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}  # the saved states' directory, this test's own
    await restart_with_a_draft(tmp_path, env, env)
    assert list(tmp_path.glob("quart-flet-*/saved-*")), "kept in this user's directory"


@pytest.mark.redis
@pytest.mark.server
async def test_with_redis_the_draft_reaches_another_server(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Saved in Redis (signed with the app's key): a server on another host,
    here one with another temporary directory, finds it."""
    shared = {"FLET_REDIS_URL": redis_server.url, "FLET_SECRET_KEY": "saved-test-key"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    await restart_with_a_draft(
        tmp_path,
        {**shared, "TMPDIR": str(tmp_path / "a")},
        {**shared, "TMPDIR": str(tmp_path / "b")},
    )
    assert not any(tmp_path.glob("*/quart-flet-*/saved-*"))


def mount_of(timeout: float = 60) -> Any:

    return FletMount(
        "flet", lambda page: None, None, resolve_options(session_timeout_seconds=timeout), None
    )  # type: ignore[arg-type]


async def test_only_json_within_the_limit_is_kept_and_a_forged_entry_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "quart_flet")
    store = FileStore(tmp_path / "saved")
    saved, other_key = SavedStates(store, "key"), SavedStates(store, "another key")
    mount, owner = mount_of(), Owner("browser-digest", "")
    assert saved.encode(mount, "/", ["not", "a", "dict"]) is None
    assert saved.encode(mount, "/", {"when": object()}) is None
    assert saved.encode(mount, "/", {"big": "x" * MAX_SAVED_BYTES}) is None
    assert "nothing saved" in caplog.text
    text = saved.encode(mount, "/form", {"draft": "hello"})
    assert text is not None and "hello" not in text.split(".")[-1]  # signed
    assert await saved.put(mount, Owner("", ""), text) is False  # no browser id: no next session
    assert await saved.put(mount, owner, text)
    assert await other_key.take(mount, owner) is None  # another key: dropped
    assert "saved with another secret key" in caplog.text
    assert await saved.put(mount, owner, text)
    assert await saved.take(mount, owner) == ("/form", {"draft": "hello"})
    assert await saved.take(mount, owner) is None
    assert os.listdir(tmp_path / "saved") == []  # taken: nothing left behind


async def test_a_stop_during_the_saves_waits_for_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hypercorn runs the app's shutdown as soon as the last socket closed, and
    a held session (its browser gone) may still be waiting for its save then:
    the stop waits for the saves instead of shutting the pool under them."""
    caplog.set_level(logging.INFO, "quart_flet")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where saved_dir() is
    began, release = threading.Event(), threading.Event()  # nobody sets release

    def save(page: Any) -> dict[str, Any]:
        if not began.is_set():
            began.set()
            release.wait(2)  # the first save holds the one thread a while
        return {"saved": page.session.id}

    app = quart_app(counter_main, on_session_save=save, max_threads=1)
    registry = get_registry(app)
    async with app.test_app() as test_app:
        async with browser(test_app).websocket("/ws") as ws:  # its browser left: held
            await start_counter(FletTestClient(ws))
        deadline = time.monotonic() + 5
        while any(entry.connection is not None for entry in registry.sessions.values()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        async with browser(test_app).websocket("/ws") as ws:  # live
            await start_counter(FletTestClient(ws))
            registry.server_stopping()  # no drain: the saves begin at once
            assert await asyncio.to_thread(began.wait, 5)
            # the held session's save holds the one thread; the live one's waits
            await registry.stop()  # what the app's shutdown runs
    assert "Unhandled error in on_session_save" not in caplog.text
    assert "saved the state of 2 of 2 session(s)" in caplog.text
