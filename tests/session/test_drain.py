"""Draining on a graceful stop (the drain_seconds option, issue 25).

Against a real Hypercorn, one process and two workers: on SIGTERM readiness
turns 503 in every worker before any Flet socket closes; open sessions keep
answering clicks for drain_seconds and hear ``on_drain``; then their sockets
close with 1012 (service restart) and the process exits within its graceful
timeout. At the protocol level: during the drain a new browser's WebSocket is
refused with 503 before its handshake completes, a browser whose socket
dropped takes its session back, and a drain longer than the graceful timeout
is cut."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import pytest
from conftest import (
    FletTestClient,
    WebsocketsSocket,
    browser,
    register_frame,
    start_counter,
    wait_for_log,
)
from quart import Quart
from quart.testing import WebsocketResponseError
from quart.testing.connections import WebsocketDisconnectError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from examples.counter import main
from quart_flet import OptionError, QuartFlet, flet_blueprint, quart_app
from quart_flet.app.server import SAFE_SETTINGS
from quart_flet.session.registry import get_registry

DRAIN, GRACEFUL_TIMEOUT = 2.0, 5
assert SAFE_SETTINGS["graceful_timeout"] == GRACEFUL_TIMEOUT  # quart-flet run's


@pytest.mark.server
@pytest.mark.parametrize(
    ("workers", "supervised"), [("0", False), ("2", False), ("2", True)], ids=["1", "2", "run-2"]
)
async def test_sigterm_drains_open_sessions_then_closes_them_with_1012(
    hypercorn: Any, workers: str, supervised: bool
) -> None:
    """Hypercorn with one process and two workers, and ``quart-flet run
    --workers 2`` (its graceful timeout is SAFE_SETTINGS', the same 5 s)."""
    # quart-flet run's own flag shows quart-flet's INFO lines
    timeout = (
        ["--log-level", "info"] if supervised else ["--graceful-timeout", str(GRACEFUL_TIMEOUT)]
    )
    server = hypercorn(
        "tests.apps.drain:app",
        *timeout,
        "--workers",
        workers,
        env={"FLET_DRAIN_SECONDS": str(DRAIN)},
        supervised=supervised,
    )
    processes = max(int(workers), 1)
    wait_for_log(server, "Running on", processes)
    sessions = []
    for _ in range(4):
        ws = await connect(server.url.replace("http", "ws") + "/ws")
        client = FletTestClient(WebsocketsSocket(ws))
        sessions.append((ws, client, await start_counter(client)))
    # an in-flight readiness probe in every worker: the kernel picks the
    # worker, and a worker already holding one answers 409 at once
    probes: list[asyncio.Task[httpx.Response]] = []
    clients: list[httpx.AsyncClient] = []
    deadline = time.monotonic() + 20
    while len(probes) < processes:
        assert time.monotonic() < deadline, server.log()
        http = httpx.AsyncClient(base_url=server.url, timeout=30)
        probe = asyncio.create_task(http.get("/_probe/ready-once-stopping"))
        held = await probe_held(server, probe, len(probes) + 1)
        if held:
            probes.append(probe)
            clients.append(http)
        else:
            assert probe.result().status_code == 409, server.log()
            await http.aclose()
    waiting = {line for line in server.log().splitlines() if "probe waiting" in line}
    assert len(waiting) == processes, server.log()

    sigterm = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    answers = await asyncio.gather(*probes)
    for http in clients:
        await http.aclose()
    assert {answer.status_code for answer in answers} == {503}, server.log()
    assert {answer.json()["status"] for answer in answers} == {"stopping"}
    stopped_at = {
        answer.headers["X-Worker"]: float(answer.headers["X-Stopped-At"]) for answer in answers
    }
    assert len(stopped_at) == processes

    async def drained(ws: Any, client: FletTestClient, fab: int) -> float:
        # the hook ran, and the session still answers a click during the drain
        await client.patch_with(f"Restarting in {DRAIN:g} s")
        await client.click(fab)
        await client.patch_with("1")
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), GRACEFUL_TIMEOUT)
        assert ws.close_code == 1012, server.log()
        return time.time()

    closed_at = await asyncio.gather(*(drained(*session) for session in sessions))
    # readiness was off in every worker before the first socket closed, and
    # the sessions lived through the drain
    assert max(stopped_at.values()) < min(closed_at)
    assert min(closed_at) - max(stopped_at.values()) >= DRAIN - 0.5
    assert await asyncio.to_thread(server.proc.wait, GRACEFUL_TIMEOUT + 2) == 0, server.log()
    assert time.monotonic() - sigterm < GRACEFUL_TIMEOUT + 1
    assert "Traceback" not in server.log()
    if supervised:  # each worker said it drained
        assert server.log().count("[INFO] quart-flet draining: ") == processes, server.log()


async def probe_held(server: Any, probe: asyncio.Task[httpx.Response], count: int) -> bool:
    """Bounded polling until the probe either waits in a worker (its line is
    the ``count``-th in the log) or was answered (a worker already holds one)."""
    deadline = time.monotonic() + 15
    while server.log().count("probe waiting for the stop") < count:
        if probe.done():
            return False
        assert time.monotonic() < deadline, server.log()
        await asyncio.sleep(0.02)
    return True


async def test_during_the_drain_only_a_session_held_here_comes_back() -> None:
    """A new browser is refused with a JSON 503 before its handshake completes
    (a load balancer can retry it elsewhere); a browser whose socket dropped
    during the drain takes its session back and it keeps working; asking for
    a new session instead, it hears 1012."""
    heard: list[float] = []
    app = quart_app(main, drain_seconds=30, on_drain=lambda page, left: heard.append(left))
    registry = get_registry(app)
    async with app.test_app() as test_app:
        client = browser(test_app)
        async with client.websocket("/ws") as ws:
            flet = FletTestClient(ws)
            fab = await start_counter(flet)
            registry.server_stopping()  # what Hypercorn's stop triggers
            await flet.click(fab)
            await flet.patch_with("1")  # the open session keeps working
            assert heard == [30]
            with pytest.raises(WebsocketResponseError) as refused:
                async with browser(test_app).websocket("/ws") as stranger:
                    await stranger.send(register_frame())
            assert refused.value.response.status_code == 503
            assert "stopping" in (await refused.value.response.get_json())["error"]
        session_id = flet.session_id
        key = ("flet", session_id)
        deadline = time.monotonic() + 5
        while registry.sessions[key].connection is not None:  # its socket dropped
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        async with client.websocket("/ws") as tab:  # its browser, but a new session
            with pytest.raises(WebsocketDisconnectError) as restart:
                await tab.send(register_frame())
                await asyncio.wait_for(tab.receive(), 5)
            assert restart.value.args[0] == 1012
        async with client.websocket("/ws") as ws:
            back = FletTestClient(ws)
            reply = await back.register(session_id)
            assert reply[1]["session_id"] == session_id
            await back.click(fab)
            await back.patch_with("2")
        assert registry.draining is not None and not registry.draining.done()
        with pytest.raises(WebsocketResponseError) as refused:
            async with browser(test_app).websocket("/ws") as stranger:
                await stranger.send(register_frame())
        assert refused.value.response.status_code == 503


def test_drain_seconds_is_an_app_wide_checked_option() -> None:
    with pytest.raises(OptionError, match="drain_seconds"):
        QuartFlet(Quart(__name__), drain_seconds=-1)
    with pytest.raises(OptionError, match="drain_seconds is app-wide"):
        flet_blueprint(main, drain_seconds=3)


def test_a_drain_longer_than_the_graceful_timeout_is_cut_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = get_registry(quart_app(main))
    registry.drain_seconds = 10
    registry.server_found(5.0)
    assert registry.drain_time() == 4.0
    assert "drain_seconds (10) is not below Hypercorn's graceful_timeout (5)" in caplog.text
    registry.drain_seconds = 3
    assert registry.drain_time() == 3
